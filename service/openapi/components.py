"""The OpenAPI components written by hand: the list, export, delete and problem bodies, the
headers, the error answers and the parameters (the field schemas are generated: schemas.py)."""
from ..api import ROUTE_WORDS
from ..errors import FALLBACK_CODE
from ..fields import CATEGORY_MAX, MAX_OFFSET, MAX_TAGS_PER_TASK, MAX_TASK_ID, SEARCH_MAX, TAG_NAME_MAX
from ..idempotency import MAX_KEY_LENGTH
from ..list_params import DEFAULT_LIMIT, MAX_LIMIT, SORTS, STATUSES
from .schemas import NO_NUL, SOLID, TIMESTAMP

JSON = "application/json"
PROBLEM = "application/problem+json"
# A header value as HTTP clients can send it (no blank at either end, no CR/LF), 1..255 long.
HEADER_KEY = (rf"^{SOLID}(?:[^\u0000\r\n]{{0,{MAX_KEY_LENGTH - 2}}}{SOLID})?$")


def ref(name, kind="schemas"):
    """A `$ref` to a component."""
    return {"$ref": f"#/components/{kind}/{name}"}


def other_schemas():
    """The components not generated from the field table."""
    return {
        "TaskList": {
            "type": "object",
            "required": ["tasks", "count", "total", "completed_count", "pending_count", "next_cursor"],
            "properties": {
                "tasks": {"type": "array", "items": ref("Task"), "maxItems": MAX_LIMIT},
                "count": {"type": "integer", "minimum": 0,
                          "description": "All of the caller's tasks matching the filters "
                                         "(not only this page)."},
                "total": {"type": "integer", "minimum": 0, "description": "The same as `count`."},
                "completed_count": {"type": "integer", "minimum": 0,
                                    "description": "Completed tasks among those matching every filter "
                                                   "but the status one."},
                "pending_count": {"type": "integer", "minimum": 0,
                                  "description": "Not completed tasks among those matching every "
                                                 "filter but the status one."},
                "next_cursor": {"type": ["string", "null"],
                                "description": "Pass as `cursor` for the next page; null on "
                                               "the last page."},
            },
        },
        "ReminderList": {
            "type": "object", "required": ["tasks", "count"],
            "properties": {"tasks": {"type": "array", "items": ref("Task"), "maxItems": MAX_LIMIT,
                                     "description": "Earliest reminder first."},
                           "count": {"type": "integer", "minimum": 0,
                                     "description": "All due reminders (not only this page)."}},
        },
        "CompletedTask": {
            "allOf": [ref("Task"), {"type": "object", "properties": {"next_occurrence": {
                "anyOf": [ref("Task"), {"type": "null"}],
                "description": "Present when this write completed a recurring task: its next "
                               "occurrence, or null when the rule has ended (or the task was "
                               "completed already)."}}}],
        },
        "Statistics": STATISTICS,
        "TagList": {
            "type": "object", "required": ["tags", "count"],
            "properties": {"tags": {"type": "array", "items": ref("Tag"),
                                    "description": "Ordered by name ignoring case, then id."},
                           "count": {"type": "integer", "minimum": 0}},
        },
        "UserExport": {
            "type": "object", "required": ["exported_at", "user", "tags", "tasks"],
            "properties": {"exported_at": TIMESTAMP, "user": ref("User"),
                           "tags": {"type": "array", "items": ref("Tag")},
                           "tasks": {"type": "array", "items": ref("Task")}},
        },
        "DeleteResult": {
            "type": "object", "required": ["message", "deleted_id"],
            "properties": {
                "message": {"type": "string"},
                "deleted_id": {"type": ["integer", "string"],
                               "description": "The task id (integer) or the user id (string)."},
            },
        },
        "Problem": {
            "type": "object", "required": ["type", "title", "status", "code", "detail"],
            "description": "RFC 9457 problem details, with a stable `code`.",
            "properties": {
                "type": {"type": "string", "format": "uri-reference", "examples": ["about:blank"]},
                "title": {"type": "string", "description": "The status's name."},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "code": {"type": "string", "enum": list(CODE_DESCRIPTIONS),
                         "description": "A stable name of the case, to branch on (`detail` is "
                                        "for people):\n\n" + "\n".join(
                                            f"- `{code}`: {text}"
                                            for code, text in CODE_DESCRIPTIONS.items()),
                         "x-enumDescriptions": CODE_DESCRIPTIONS},
                "detail": {"type": "string", "description": "What went wrong, for a person. "
                                                            "A 500 names the request id."},
                "errors": {
                    "type": "array", "description": "The fields that were wrong (422).",
                    "items": {"type": "object", "required": ["field", "message"],
                              "properties": {"field": {"type": "string"},
                                             "message": {"type": "string"}}},
                },
            },
        },
        "Health": {"type": "object", "required": ["status"],
                   "properties": {"status": {"type": "string", "const": "ok"}}},
        "Ready": {"type": "object", "required": ["status", "migrations"],
                  "properties": {"status": {"type": "string", "const": "ready"},
                                 "migrations": {"type": "integer", "minimum": 0}}},
    }


def _header(description, schema=None, required=False):
    return {"description": description, "required": required,
            "schema": schema or {"type": "string"}}


ETAG = {"type": "string", "pattern": r'^"[0-9]+"$'}


HEADERS = {
    "X-Request-ID": _header("The caller's X-Request-ID when it was 1..128 of "
                            "[A-Za-z0-9._:-], else a new one. On every response.",
                            required=True),
    "ETag": _header('The task\'s version as a strong entity tag, e.g. "3".', ETAG, True),
    "CurrentETag": _header("The task's current version, when it could be read.", ETAG),
    "Location": _header("The new task's URL.", {"type": "string", "format": "uri-reference"},
                        True),
    "RequiredRetryAfter": _header("Seconds to wait before retrying.",
                                  {"type": "string", "pattern": "^[0-9]+$"}, True),
    "WWW-Authenticate": _header('Bearer realm="todo", with error="invalid_token" when a token '
                                "was given."),
    "Idempotent-Replayed": _header("`true` when this is a replay of the first answer to the "
                                   "same Idempotency-Key.", {"type": "string", "const": "true"}),
    "Content-Disposition": _header("attachment; filename=\"todo-export-<UTC stamp>.json\"",
                                   required=True),
}

# Every error status the service answers with, and why.
ERRORS = {
    400: "Malformed JSON, a body that is not UTF-8 or nests deeper than 32 levels, or a "
         "missing body where one is required.",
    401: "No token, or the token was rejected (the detail says why; the token is never echoed).",
    403: "The `{user_id}` in the path is not the signed-in user.",
    404: "No such resource: missing, or owned by someone else (existence is not leaked).",
    409: "The change conflicts with existing data (e.g. the email is another user's, or a tag of "
         "that name exists).",
    412: "`If-Match` names another version: the task changed meanwhile (the ETag header has "
         "the current one).",
    413: "The body is over the size limit (default 1 MiB).",
    415: "The body is not `application/json`.",
    416: "The `Range` asked for lies outside the file.",
    422: "Invalid values; `errors` lists each field and what was wrong.",
    500: "An unexpected error; the detail names the request id (no stack trace).",
    503: "The database is unreachable or the connection pool is exhausted; retry after "
         "Retry-After seconds.",
}


COUNT = {"type": "integer", "minimum": 0}
DAY = {"type": "string", "format": "date"}
STATISTICS = {
    "type": "object", "required": ["statistics", "by_priority", "by_status", "by_category", "streak", "weekly"],
    "properties": {
        "statistics": {"type": "object", "required": ["total_tasks", "completed_tasks", "pending_tasks",
                                                      "overdue_tasks", "completion_rate", "total_completions"],
                       "properties": {"total_tasks": COUNT, "completed_tasks": COUNT, "pending_tasks": COUNT,
                                      "overdue_tasks": COUNT, "total_completions": COUNT,
                                      "completion_rate": {"type": "number", "minimum": 0, "maximum": 100,
                                                          "description": "A percentage, one decimal."}}},
        "by_priority": {"type": "object", "additionalProperties": COUNT,
                        "description": "Every priority of the vocabulary, zeros included."},
        "by_status": {"type": "object", "additionalProperties": COUNT,
                      "description": "Every status of the vocabulary, zeros included."},
        "by_category": {"type": "object", "additionalProperties": COUNT, "required": ["none"],
                        "description": "Each category in use, and `none` (tasks without one)."},
        "streak": {"type": "object", "required": ["current_streak", "longest_streak", "last_completion_date"],
                   "properties": {"current_streak": COUNT, "longest_streak": COUNT,
                                  "last_completion_date": {**DAY, "type": ["string", "null"]}}},
        "weekly": {"type": "object", "required": ["week_start", "days", "total"],
                   "properties": {"week_start": DAY, "total": COUNT,
                                  "days": {"type": "array", "minItems": 7, "maxItems": 7, "items": {
                                      "type": "object", "required": ["date", "completed_count"],
                                      "properties": {"date": DAY, "completed_count": COUNT}}}}},
    },
}


# What each problem `code` means (service/errors.py assigns them; docs/api.md has the table).
CODE_DESCRIPTIONS = {
    "malformed_json": "400: the body is not JSON (syntax, not UTF-8, nested too deep, or "
                      "missing where one is required).",
    "unauthorized": "401: no credentials: the Authorization header is missing.",
    "invalid_token": "401: a token (or another Authorization value) was sent and rejected: "
                     "expired, bad signature, wrong issuer... (`detail` says which).",
    "forbidden": "403: the `{user_id}` in the path is not the signed-in user.",
    "not_found": "404: no such route or resource, or another user's.",
    "method_not_allowed": "405: the route exists but not with this method (see `Allow`).",
    "conflict": "409: the change conflicts with existing data (e.g. an email in use).",
    "precondition_failed": "412: `If-Match` names another version of the task.",
    "payload_too_large": "413: the body is over the size limit.",
    "unsupported_media_type": "415: the body is not `application/json`.",
    "range_not_satisfiable": "416: a `Range` outside a documentation file.",
    "validation_failed": "422: invalid values; `errors` lists each field.",
    "internal_error": "500: an unexpected error; `detail` names the request id.",
    "unavailable": "503: the database is unreachable or busy (or, on /readyz, not ready); "
                   "retry after `Retry-After` seconds.",
    FALLBACK_CODE: "Any other status (the service answers none today).",
}


def responses():
    responses = {}
    for status, description in ERRORS.items():
        headers = {"X-Request-ID": ref("X-Request-ID", "headers")}
        if status == 401:
            headers["WWW-Authenticate"] = ref("WWW-Authenticate", "headers")
        if status == 412:
            headers["ETag"] = ref("CurrentETag", "headers")
        if status == 503:
            headers["Retry-After"] = ref("RequiredRetryAfter", "headers")
        responses[str(status)] = {"description": description, "headers": headers,
                                  "content": {PROBLEM: {"schema": ref("Problem")}}}
    return responses


DUE_BOUND = {"type": "string", "anyOf": [{"format": "date-time"}, {"format": "date"}],
             "examples": ["2026-12-01", "2026-12-01T09:00:00Z"]}


def parameters(vocabularies):
    def query(name, schema, description):
        return {"name": name, "in": "query", "required": False, "schema": schema,
                "description": description}

    status = {"type": "string", "enum": [*STATUSES, *vocabularies["status"].values], "default": "all"}
    sort = {"type": "string", "enum": list(SORTS), "default": "created"}
    search = {"type": "string", "maxLength": SEARCH_MAX, "pattern": NO_NUL}
    offset = {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}
    return {
        "tag_id": {"name": "tag_id", "in": "path", "required": True,
                   "schema": {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_TASK_ID}},
        "task_id": {"name": "task_id", "in": "path", "required": True,
                    "schema": {"type": "integer", "format": "int64", "minimum": 1,
                               "maximum": MAX_TASK_ID}},
        "user_id": {"name": "user_id", "in": "path", "required": True,
                    "description": "Must be the signed-in user's id (the token's `sub`), "
                                   "else 403.",
                    # A route word is never a user id here: /api/users/tasks is the users
                    # route, /api/v1/tasks the v1 family's (docs/api.md, "Route words").
                    "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$",
                               "not": {"enum": sorted(ROUTE_WORDS)}}},
        "any_user_id": {"name": "user_id", "in": "path", "required": True,
                        "description": "Only the caller's own id answers; any other is 404.",
                        "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}},
        "If-Match": {"name": "If-Match", "in": "header", "required": False,
                     "description": 'The ETag last seen, e.g. "3": the change applies only if '
                                    "the task is still at that version, else 412. `*` or "
                                    "absent: unconditional.",
                     "schema": {"type": "string", "examples": ['"1"']}},
        "Idempotency-Key": {"name": "Idempotency-Key", "in": "header", "required": False,
                            "description": "Repeating a request with the same key (same user, "
                                           "within 24 hours) replays the first answer instead "
                                           "of creating again; the same key with another "
                                           "body is 422.",
                            "schema": {"type": "string", "minLength": 1,
                                       "pattern": HEADER_KEY}},
        "X-Request-ID": {"name": "X-Request-ID", "in": "header", "required": False,
                         "description": "Echoed back; a new id is made when absent or not "
                                        "1..128 of [A-Za-z0-9._:-].",
                         "schema": {"type": "string"}},
        "status": query("status", status, "`all`, `pending` (not completed), `completed`, or a workflow "
                                          "state (matched ignoring case, `-`, `_` and space alike)."),
        "category": query("category", {"type": "string", "maxLength": CATEGORY_MAX, "pattern": NO_NUL},
                          "Only tasks of this category (ignoring case)."),
        "tag": {**query("tag", {"type": "array", "items": {"type": "string", "maxLength": TAG_NAME_MAX,
                                                                "pattern": NO_NUL},
                                "maxItems": MAX_TAGS_PER_TASK},
                        "A tag name (ignoring case), repeatable: tasks carrying every one."),
                "style": "form", "explode": True},
        "tags": query("tags", {"type": "string", "pattern": NO_NUL},
                      "Tag names, comma-separated (ignoring case): tasks carrying every one."),
        "due_before": query("due_before", DUE_BOUND, "Due before this instant (exclusive); a date means that "
                                                     "day's start in your time zone."),
        "due_after": query("due_after", DUE_BOUND, "Due at or after this instant (inclusive); a date means "
                                                   "that day's start in your time zone."),
        "overdue": query("overdue", {"type": "boolean"}, "true: due before now and not completed; false: "
                                                         "every other task."),
        "has_due_date": query("has_due_date", {"type": "boolean"}, "Only tasks with (true) or without (false) "
                                                                   "a due date."),
        "until": query("until", DUE_BOUND, "Reminders due at or before this instant (default: now); a date "
                                           "means that day's start in your time zone."),
        "reminder_limit": {**query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                                             "default": 100}, "At most this many reminders.")},
        "tz": query("tz", {"type": "string", "examples": ["Europe/Berlin"]},
                    "An IANA time zone for the days (default: yours); an unknown one is 422."),
        "status_filter": query("status_filter", status, "Alias of `status`."),
        "completed": query("completed", {"type": "boolean"},
                           "Filter by completion (overrides `status`)."),
        "priority": query("priority", {"type": "string", "enum": list(vocabularies["priority"].values)},
                          "Only tasks of this priority."),
        "search": query("search", search, "Case-insensitive substring of title or "
                                          "description."),
        "q": query("q", search, "Alias of `search`."),
        "sort": query("sort", sort, "Sort key; `priority` is by rank (low < medium < high); "
                                    "tasks without a due date come last; ties break by id."),
        "sort_by": query("sort_by", sort, "Alias of `sort`."),
        "order": query("order", {"type": "string", "enum": ["asc", "desc"]},
                       "Default: `desc` (newest first), but `asc` for `title`."),
        "limit": query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                                 "default": DEFAULT_LIMIT}, "Page size."),
        "cursor": query("cursor", {"type": "string"},
                        "Opaque `next_cursor` of the previous page, for the same sort and "
                        "order (422 otherwise). Stable while tasks are added."),
        "offset": query("offset", offset, "Rows to skip (older clients; prefer `cursor`)."),
        "page": query("page", {"type": "integer", "minimum": 1, "maximum": MAX_OFFSET},
                      "1-based page of `limit` tasks (the same as offset = (page - 1) x limit)."),
        "page_size": query("page_size", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                           "Alias of `limit`."),
        "per_page": query("per_page", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                          "Alias of `limit`."),
        "skip": query("skip", offset, "Alias of `offset`."),
    }


LIST_PARAMS = ["status", "status_filter", "completed", "priority", "category", "tag", "tags", "due_before",
               "due_after", "overdue", "has_due_date", "search", "q", "sort", "sort_by", "order", "limit", "cursor",
               "offset", "skip", "page", "page_size", "per_page"]

