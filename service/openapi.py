"""The OpenAPI 3.1 description of the service, served at /api/openapi.json.

Written by hand from what the code does (validation.py, listing.py, the views, errors.py), so it
can say precisely what is accepted: fuzzers generate requests from it and check every answer
against it. tests/test_openapi.py checks it against the app's registered routes so it cannot
drift. Request schemas never forbid unknown keys, because the service ignores them.
"""
import copy
import functools

from .idempotency import MAX_KEY_LENGTH
from .listing import DEFAULT_LIMIT, MAX_LIMIT, SORTS, STATUSES
from .models import PRIORITIES
from .validation import DESCRIPTION_MAX, NAME_MAX, TITLE_MAX

MAX_TASK_ID = 2**63 - 1
MAX_OFFSET = 10_000_000
JSON = "application/json"
PROBLEM = "application/problem+json"

# Strings are trimmed before their length is checked, and NUL is refused (PostgreSQL cannot store
# it), so the exact rule is a pattern: optional blanks, 1..N characters that neither start nor end
# with a blank, optional blanks. "Blank" is spelled out as Python's str.strip() sees it, because
# `\s` differs between regex engines (ECMA-262's lacks U+0085, U+001C..U+001F; adds U+FEFF).
BLANK = (r"\t-\r\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f"
         r"\u3000")
SOLID = rf"[^{BLANK}\u0000]"  # neither blank nor NUL


def trimmed(max_length, optional=False):
    """The pattern of a string that, trimmed, has 1..max_length characters (0.. if optional)."""
    core = rf"{SOLID}(?:[^\u0000]{{0,{max_length - 2}}}{SOLID})?"
    return rf"^[{BLANK}]*(?:{core})?[{BLANK}]*$" if optional else rf"^[{BLANK}]*{core}[{BLANK}]*$"


TRIMMED_TITLE = trimmed(TITLE_MAX)
TRIMMED_NAME = trimmed(NAME_MAX, optional=True)
NO_NUL = r"^[^\u0000]*$"
# validation.EMAIL_RE (RFC 5321 dot-atom @ hostname) on the trimmed value, kept a little stricter
# and free of look-arounds so generators handle it: local part at most 64, no hyphens in labels.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9]{1,40}"
EMAIL_OR_BLANK = (rf"^[{BLANK}]*(?:{_ATOM}{{1,32}}(?:\.{_ATOM}{{1,31}})?@{_LABEL}(?:\.{_LABEL}){{1,2}})?"
                  rf"[{BLANK}]*$")
# A header value as HTTP clients can send it (no blank at either end, no CR/LF), 1..255 long.
HEADER_KEY = (rf"^{SOLID}(?:[^\u0000\r\n]{{0,{MAX_KEY_LENGTH - 2}}}{SOLID})?$")

TIMESTAMP = {"type": "string", "format": "date-time",
             "description": "ISO-8601 with an explicit UTC offset, e.g. 2026-12-01T09:00:00+00:00."}


def ref(name, kind="schemas"):
    """A `$ref` to a component."""
    return {"$ref": f"#/components/{kind}/{name}"}


def _schemas():
    priority = {"type": "string", "enum": list(PRIORITIES), "default": "medium",
                "description": "Importance; sorting by priority orders low < medium < high."}
    due_date_in = {
        "type": ["string", "null"], "format": "date-time", "examples": ["2026-12-01T09:00:00Z"],
        "description": "ISO-8601. A date alone (2026-12-01) means midnight UTC; a date-time "
                       "without an offset is taken as UTC; null clears it.",
    }
    task_input = {
        "title": {"type": "string", "minLength": 1, "maxLength": TITLE_MAX,
                  "pattern": TRIMMED_TITLE,
                  "description": f"Trimmed, then 1..{TITLE_MAX} characters (no NUL). Blanks "
                                 "around it are not counted (the service accepts them beyond "
                                 "maxLength too).",
                  "examples": ["Buy milk"]},
        "description": {"type": ["string", "null"], "maxLength": DESCRIPTION_MAX,
                        "pattern": NO_NUL, "examples": ["Semi-skimmed, 2 litres"],
                        "description": f"Up to {DESCRIPTION_MAX} characters (no NUL), or null."},
        "completed": {"type": "boolean", "default": False},
        "priority": priority,
        "due_date": due_date_in,
    }
    return {
        "Task": {
            "type": "object",
            "required": ["id", "user_id", "title", "description", "completed", "priority",
                         "due_date", "created_at", "updated_at"],
            "properties": {
                "id": {"type": "integer", "format": "int64", "minimum": 1, "examples": [7]},
                "user_id": {"type": "string", "description": "The owner (the token's `sub`)."},
                "title": {"type": "string", "minLength": 1, "maxLength": TITLE_MAX},
                "description": {"type": ["string", "null"], "maxLength": DESCRIPTION_MAX},
                "completed": {"type": "boolean"},
                "priority": {"type": "string", "enum": list(PRIORITIES)},
                "due_date": {"type": ["string", "null"], "format": "date-time"},
                "created_at": TIMESTAMP,
                "updated_at": TIMESTAMP,
            },
        },
        "TaskCreate": {
            "type": "object", "required": ["title"], "properties": task_input,
            "description": "Other keys (even `id`, `user_id`) are ignored: the owner is always "
                           "the caller.",
        },
        "TaskUpdate": {
            "type": "object", "properties": task_input,
            "anyOf": [{"required": [name]} for name in task_input],
            "description": "A partial update: only the given fields change; at least one is "
                           "required (422 otherwise). Other keys are ignored.",
        },
        "TaskCompletion": {
            "type": "object",
            "properties": {"completed": {"type": "boolean"}},
            "description": "`completed` sets the flag; without it (or with no body at all) the "
                           "flag is toggled.",
        },
        "TaskList": {
            "type": "object", "required": ["tasks", "count", "next_cursor"],
            "properties": {
                "tasks": {"type": "array", "items": ref("Task"), "maxItems": MAX_LIMIT},
                "count": {"type": "integer", "minimum": 0,
                          "description": "All of the caller's tasks matching the filters "
                                         "(not only this page)."},
                "next_cursor": {"type": ["string", "null"],
                                "description": "Pass as `cursor` for the next page; null on "
                                               "the last page."},
            },
        },
        "User": {
            "type": "object", "required": ["id", "email", "name", "created_at", "updated_at"],
            "properties": {
                "id": {"type": "string", "minLength": 1, "maxLength": 255},
                # validation.EMAIL_RE admits only what JSON Schema's `email` format does.
                "email": {"type": ["string", "null"], "format": "email", "maxLength": 254},
                "name": {"type": ["string", "null"], "maxLength": NAME_MAX},
                "created_at": TIMESTAMP,
                "updated_at": TIMESTAMP,
            },
        },
        "UserCreate": {
            "type": "object",
            "properties": {"name": {"type": ["string", "null"], "pattern": TRIMMED_NAME,
                                    "examples": ["Ada Lovelace"],
                                    "description": f"Trimmed, up to {NAME_MAX} characters; "
                                                   "blank or null clears it."}},
            "description": "Optional. The email always comes from the token; other keys are "
                           "ignored.",
        },
        "UserUpdate": {
            "type": "object",
            "properties": {
                "name": {"type": ["string", "null"], "pattern": TRIMMED_NAME,
                         "examples": ["Ada Lovelace"],
                         "description": f"Trimmed, up to {NAME_MAX} characters; blank or null "
                                        "clears it."},
                "email": {"type": ["string", "null"], "pattern": EMAIL_OR_BLANK,
                          "examples": ["ada@example.com"],
                          "description": "A valid address, unique across users "
                                         "(case-insensitively; 409 on a clash); blank or null "
                                         "clears it."},
            },
            "anyOf": [{"required": ["name"]}, {"required": ["email"]}],
            "description": "At least one of `name`, `email` (422 otherwise). Other keys are "
                           "ignored.",
        },
        "UserExport": {
            "type": "object", "required": ["exported_at", "user", "tasks"],
            "properties": {"exported_at": TIMESTAMP, "user": ref("User"),
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
            "type": "object", "required": ["type", "title", "status", "detail"],
            "description": "RFC 9457 problem details.",
            "properties": {
                "type": {"type": "string", "format": "uri-reference", "examples": ["about:blank"]},
                "title": {"type": "string", "description": "The status's name."},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
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
    409: "The change conflicts with existing data (e.g. the email is another user's).",
    412: "`If-Match` names another version: the task changed meanwhile (the ETag header has "
         "the current one).",
    413: "The body is over the size limit (default 1 MiB).",
    415: "The body is not `application/json`.",
    422: "Invalid values; `errors` lists each field and what was wrong.",
    500: "An unexpected error; the detail names the request id (no stack trace).",
    503: "The database is unreachable or the connection pool is exhausted; retry after "
         "Retry-After seconds.",
}


def _responses():
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


def _parameters():
    def query(name, schema, description):
        return {"name": name, "in": "query", "required": False, "schema": schema,
                "description": description}

    status = {"type": "string", "enum": list(STATUSES), "default": "all"}
    sort = {"type": "string", "enum": list(SORTS), "default": "created"}
    search = {"type": "string", "maxLength": 200, "pattern": NO_NUL}
    offset = {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}
    return {
        "task_id": {"name": "task_id", "in": "path", "required": True,
                    "schema": {"type": "integer", "format": "int64", "minimum": 1,
                               "maximum": MAX_TASK_ID}},
        "user_id": {"name": "user_id", "in": "path", "required": True,
                    "description": "Must be the signed-in user's id (the token's `sub`), "
                                   "else 403.",
                    # /api/users/tasks is the users route, not this one.
                    "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$",
                               "not": {"const": "users"}}},
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
        "status": query("status", status, "`all`, `pending` (not completed) or `completed`."),
        "status_filter": query("status_filter", status, "Alias of `status`."),
        "completed": query("completed", {"type": "boolean"},
                           "Filter by completion (overrides `status`)."),
        "priority": query("priority", {"type": "string", "enum": list(PRIORITIES)},
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
        "skip": query("skip", offset, "Alias of `offset`."),
    }


LIST_PARAMS = ["status", "status_filter", "completed", "priority", "search", "q", "sort",
               "sort_by", "order", "limit", "cursor", "offset", "skip"]


def _ok(description, schema=None, headers=(), media=JSON):
    response = {"description": description,
                "headers": {name: ref(name, "headers") for name in ("X-Request-ID", *headers)}}
    if schema is not None:
        response["content"] = {media: {"schema": schema}}
    return response


def _operation(operation_id, summary, tag, ok, errors=(), params=(), body=None,
               body_required=True, public=False, description=None):
    """One operation: its success answers, the listed errors (500 always; 401, 503 on the
    authenticated API) and its parameters."""
    statuses = set(errors) | {500}
    if not public:
        statuses |= {401, 503}
    if body is not None:
        statuses |= {400, 413, 415, 422}
    operation = {
        "operationId": operation_id, "summary": summary, "tags": [tag],
        "parameters": [ref(name, "parameters") for name in (*params, "X-Request-ID")],
        "responses": {**ok, **{str(s): ref(str(s), "responses") for s in sorted(statuses)}},
    }
    if description:
        operation["description"] = description
    if body is not None:
        operation["requestBody"] = {"required": body_required,
                                    "content": {JSON: {"schema": ref(body)}}}
    if public:
        operation["security"] = []
    return operation


def _task_paths(prefix, suffix, phase2):
    """The task routes under `prefix` (`/api/tasks` or `/api/{user_id}/tasks`)."""
    path = ["user_id"] if phase2 else []
    extra = {403} if phase2 else set()
    shadowed = {404} if phase2 else set()  # GET /api/users/tasks is the users route's (404)
    tag = "tasks (Phase II paths)" if phase2 else "tasks"
    task = _ok("The task.", ref("Task"), ["ETag"])
    written = {412, 404} | extra
    return {
        prefix: {
            "get": _operation(f"listTasks{suffix}", "List the caller's tasks", tag,
                              {"200": _ok("A page of tasks and the total count.", ref("TaskList"))},
                              {422} | extra | shadowed, path + LIST_PARAMS),
            "post": _operation(f"createTask{suffix}", "Create a task", tag,
                               {"201": _ok("Created.", ref("Task"), ["ETag", "Location",
                                                                      "Idempotent-Replayed"])},
                               extra | {409}, path + ["Idempotency-Key"], body="TaskCreate"),
        },
        f"{prefix}/{{task_id}}": {
            "get": _operation(f"getTask{suffix}", "Get a task", tag, {"200": task},
                              {404} | extra, path + ["task_id"]),
            "put": _operation(f"replaceTask{suffix}", "Update a task (same as PATCH)", tag,
                              {"200": task}, written, path + ["task_id", "If-Match"],
                              body="TaskUpdate"),
            "patch": _operation(f"updateTask{suffix}", "Update some fields of a task", tag,
                                {"200": task}, written, path + ["task_id", "If-Match"],
                                body="TaskUpdate"),
            "delete": _operation(f"deleteTask{suffix}", "Delete a task", tag,
                                 {"200": _ok("Deleted.", ref("DeleteResult"))}, written,
                                 path + ["task_id", "If-Match"]),
        },
        f"{prefix}/{{task_id}}/complete": {
            "patch": _operation(f"completeTask{suffix}", "Toggle or set completion", tag,
                                {"200": task}, written, path + ["task_id", "If-Match"],
                                body="TaskCompletion", body_required=False),
        },
    }


def _user_paths():
    user = _ok("The caller's profile.", ref("User"))
    return {
        "/api/users": {
            "post": _operation(
                "syncUser", "Provision or sync the caller's profile", "users",
                {"200": _ok("The profile existed; synced from the token.", ref("User"),
                            ["Idempotent-Replayed"]),
                 "201": _ok("The profile was created by this request.", ref("User"),
                            ["Idempotent-Replayed"])},
                {409}, ["Idempotency-Key"], body="UserCreate", body_required=False,
                description="Email and name come from the token's claims; the body may set "
                            "`name`."),
        },
        "/api/users/me": {
            "get": _operation("getMe", "The caller's profile", "users", {"200": user}, {404}),
            "patch": _operation("updateMe", "Change the caller's name or email", "users",
                                {"200": user}, {404, 409}, body="UserUpdate"),
            "delete": _operation("deleteMe", "Delete the caller and all their tasks", "users",
                                 {"200": _ok("Deleted.", ref("DeleteResult"))}, {404}),
        },
        "/api/users/me/export": {
            "get": _operation("exportMe", "Download the caller's profile and tasks", "users",
                              {"200": _ok("A JSON download.", ref("UserExport"),
                                          ["Content-Disposition"])}, {404}),
        },
        "/api/users/{user_id}": {
            "get": _operation("getUser", "A user by id (only the caller's own)", "users",
                              {"200": user}, {404}, ["any_user_id"]),
        },
    }


def _public_paths():
    return {
        "/health": {"get": _operation("health", "Liveness (no database)", "operations",
                                      {"200": _ok("Alive.", ref("Health"))}, public=True)},
        "/readyz": {"get": _operation(
            "ready", "Readiness: the database answers and no migration is pending",
            "operations", {"200": _ok("Ready.", ref("Ready"))}, {503}, public=True)},
        "/api/openapi.json": {"get": _operation(
            "openapi", "This document", "docs",
            {"200": _ok("The OpenAPI 3.1 document.", {"type": "object"})}, public=True)},
        "/api/docs": {"get": _operation(
            "docs", "This documentation as a web page", "docs",
            {"200": _ok("An HTML page (Swagger UI, served by the service: works offline).",
                        {"type": "string"}, media="text/html")}, public=True)},
        "/api/docs/static/{filename}": {"get": _operation(
            "docsAsset", "A file of the documentation page", "docs",
            {"200": _ok("The file (script, stylesheet or image).",
                        {"type": "string", "format": "binary"}, media="*/*"),
             "304": _ok("Not modified since the copy the client has (If-None-Match / "
                        "If-Modified-Since).")},
            {404}, ["filename"], public=True)},
    }


DESCRIPTION = """\
A multi-user todo service. Every `/api` route except this document and its page needs
`Authorization: Bearer <JWT>` (Better Auth's EdDSA tokens via its JWKS, or HS256/384/512 with the
shared secret); the token's `sub` is the user, and every query is scoped to it.

Each task route exists twice: `/api/tasks...` and, for Phase II clients, `/api/{user_id}/tasks...`
(403 when `{user_id}` is not the token's `sub`). Another user's task is always 404.

Errors are RFC 9457 problem documents (`application/problem+json`); 422 lists the wrong fields.
An unknown route is 404 and a wrong method 405. Every response carries `X-Request-ID`.
Task responses carry `ETag: "<version>"`; send it back in `If-Match` to update or delete only if
nobody changed the task meanwhile (412 otherwise). `POST` accepts an `Idempotency-Key`.
"""


@functools.cache
def _build():
    parameters = _parameters()
    parameters["filename"] = {"name": "filename", "in": "path", "required": True,
                              "schema": {"type": "string", "pattern": "^[^/]+$"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Todo service", "version": "1.0.0", "description": DESCRIPTION,
                 "license": {"name": "MIT", "identifier": "MIT"}},
        "tags": [
            {"name": "tasks", "description": "The caller's tasks."},
            {"name": "tasks (Phase II paths)",
             "description": "The same routes with the user in the path, for Phase II clients."},
            {"name": "users", "description": "The caller's profile."},
            {"name": "operations", "description": "Probes for load balancers and orchestrators."},
            {"name": "docs", "description": "This description."},
        ],
        "paths": {**_task_paths("/api/tasks", "", False),
                  **_task_paths("/api/{user_id}/tasks", "ForUser", True),
                  **_user_paths(), **_public_paths()},
        "components": {
            "schemas": _schemas(),
            "parameters": parameters,
            "headers": HEADERS,
            "responses": _responses(),
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "A Better Auth JWT (EdDSA, via the JWKS) or an HS256/384/512 "
                               "token signed with BETTER_AUTH_SECRET.",
            }},
        },
        "security": [{"bearerAuth": []}],
    }


def spec():
    """The OpenAPI document (built once; a copy, so callers cannot change the cached one)."""
    return copy.deepcopy(_build())
