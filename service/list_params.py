"""The task list's query parameters, validated into a `ListParams` (or a 422 naming each bad one).

Unknown parameters are ignored. Every sort has the task id as its last key, so each order is
total, and a cursor (the last row's sort key and id, opaque to clients) resumes exactly where
the previous page ended however many tasks were added meanwhile.
"""
import base64
import functools
import json
import re
from dataclasses import dataclass
from datetime import date
from urllib.parse import parse_qsl

from werkzeug.datastructures import MultiDict

from .errors import ValidationError
from .fields import CATEGORY_MAX, MAX_OFFSET, MAX_TAGS_PER_TASK, SEARCH_MAX, TAG_NAME_MAX, camel, parse_instant
from .vocabularies import fold

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
# The sorts a client may ask for (with their older spellings), by the key the store orders by;
# matched like vocabulary values (case folded, `-` and `_` alike), camelCase too (`createdAt`).
SORTS = {"created": "created", "created_at": "created", "updated": "updated", "updated_at": "updated",
         "title": "title", "due_date": "due_date", "priority": "priority"}
STATUSES = ("all", "pending", "completed")


@dataclass(frozen=True)
class ListParams:
    """What a client asked of `GET /tasks`, validated."""

    completed: bool | None
    state: str | None  # a workflow status
    priority: str | None
    category: str | None  # trimmed; matched ignoring case (by the database)
    tags: tuple  # tag names, trimmed and distinct ignoring case: tasks carrying every one
    due_before: tuple | None  # ("instant", datetime) or ("date", "YYYY-MM-DD": that day's start in the user's zone)
    due_after: tuple | None
    overdue: bool | None
    has_due_date: bool | None
    search: str | None
    sort: str  # a key of the store's orders: created, updated, title, due_date, priority
    descending: bool
    limit: int
    offset: int
    after: tuple | None  # (sort value, id) of the last row already seen


class Refused(ValueError):
    """A parameter's value is refused; the message says why."""


def _whole(low, high):
    def parse(raw, _vocabularies):
        try:
            value = int(raw)
        except ValueError:
            raise Refused("must be a whole number") from None
        if not low <= value <= high:
            raise Refused(f"must be between {low} and {high}")
        return value
    return parse


def _boolean(raw, _vocabularies):
    if raw.strip().lower() not in ("true", "false"):
        raise Refused("must be true or false")
    return raw.strip().lower() == "true"


def _status(raw, vocabularies):
    """(completed, state): a filter word (all, pending, completed) or a workflow state."""
    word = raw.strip().lower()
    if word in STATUSES:
        return {"all": None, "pending": False, "completed": True}[word], None
    state = vocabularies["status"].lookup(raw)
    if state is None:
        raise Refused("must be one of " + ", ".join((*STATUSES, *vocabularies["status"].values)))
    return None, state


def _priority(raw, vocabularies):
    found = vocabularies["priority"].lookup(raw)
    if found is None:
        raise Refused("must be one of " + ", ".join(vocabularies["priority"].values))
    return found


def _category(raw, _vocabularies):
    category = raw.strip()  # case is folded by the database, as for the stored categories
    if len(category) > CATEGORY_MAX or "\x00" in category:
        raise Refused(f"must be at most {CATEGORY_MAX} characters")
    return category or None


def _search(raw, _vocabularies):
    if "\x00" in raw or len(raw) > SEARCH_MAX:
        raise Refused(f"must be at most {SEARCH_MAX} characters, without NUL")
    return raw or None


def _sort(raw, _vocabularies):
    key = fold(re.sub(r"(?<=[a-z])(?=[A-Z])", "_", raw.strip()))  # createdAt -> created_At
    if key not in SORTS:
        raise Refused("must be one of " + ", ".join(SORTS))
    return SORTS[key]


def _order(raw, _vocabularies):
    if raw.strip().lower() not in ("asc", "desc"):
        raise Refused("must be asc or desc")
    return raw.strip().lower() == "desc"


def due_bound(raw, _vocabularies=None):
    """("instant", aware datetime) or ("date", ISO date) from a date-time or a date, or None."""
    text = raw.strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            return "date", date.fromisoformat(text).isoformat()
        return "instant", parse_instant(text)
    except ValueError:
        raise Refused("must be an ISO-8601 date-time or a date (a day's start in your time zone)") from None


# The parameters: name -> (other spellings, parser). Each is also accepted in camelCase
# (`sortBy`, `hasDueDate`, ...); two spellings that disagree once parsed are a 422.
PARAMETERS = {
    "status": (("status_filter",), _status),
    "completed": (("is_completed",), _boolean),
    "priority": ((), _priority),
    "category": ((), _category),
    "due_before": ((), due_bound),
    "due_after": ((), due_bound),
    "overdue": (("is_overdue",), _boolean),
    "has_due_date": ((), _boolean),
    "search": (("q",), _search),
    "sort": (("sort_by", "order_by"), _sort),
    "order": (("sort_order", "direction"), _order),
    "limit": (("page_size", "per_page"), _whole(1, MAX_LIMIT)),
    "offset": (("skip",), _whole(0, MAX_OFFSET)),
    "page": ((), _whole(1, MAX_OFFSET)),
    "until": ((), due_bound),  # GET /api/reminders
}


@functools.cache
def spellings(name):
    """Every spelling of the parameter `name`: itself, its aliases, and all in camelCase."""
    aliases, _parse = PARAMETERS[name]
    return tuple(dict.fromkeys((name, *aliases, *(camel(word) for word in (name, *aliases)))))


def read(args, name, vocabularies, errors, default=None):
    """The parsed value of parameter `name` from the MultiDict `args` under any of its spellings,
    or `default`; a refused value or two disagreeing spellings are noted in `errors`."""
    _aliases, parse = PARAMETERS[name]
    found = spelled = None
    for spelling in spellings(name):
        if spelling not in args:
            continue
        try:
            value = parse(args[spelling], vocabularies)
        except Refused as error:
            errors.append({"field": spelling, "message": str(error)})
            return default
        if spelled is not None and value != found:
            errors.append({"field": spelling, "message": f"disagrees with {spelled}"})
            return default
        found, spelled = value, spelling
    return default if spelled is None else found


def _tags(args, errors):
    """The tag names asked for (`tag` repeated, or `tags` comma-separated), trimmed, distinct
    ignoring case."""
    names = [*args.getlist("tag"), *(part for raw in args.getlist("tags") for part in raw.split(","))]
    distinct = {}
    for name in names:
        if name.strip():
            distinct.setdefault(name.strip().lower(), name.strip())
    wanted = tuple(distinct.values())
    if any(len(name) > TAG_NAME_MAX or "\x00" in name for name in wanted) or len(wanted) > MAX_TAGS_PER_TASK:
        errors.append({"field": "tag", "message": f"must be at most {MAX_TAGS_PER_TASK} tag names of at most "
                                                  f"{TAG_NAME_MAX} characters"})
    return wanted


def parse_list_params(args, vocabularies):
    """Validate the list's query parameters (a MultiDict); 422 on a bad value."""
    errors = []

    def value(name, default=None):
        return read(args, name, vocabularies, errors, default)

    completed, state = value("status", (None, None))
    completed = value("completed", completed)  # completed=true|false wins over status
    sort = value("sort", "created")
    descending = value("order", sort != "title")
    limit = value("limit", DEFAULT_LIMIT)
    offset, page = value("offset"), value("page")
    if page is not None:  # 1-based pages of `limit` tasks, for clients that count pages
        if offset is not None and offset != (page - 1) * limit:
            errors.append({"field": "page", "message": "disagrees with offset"})
        offset = (page - 1) * limit
        if offset > MAX_OFFSET:
            errors.append({"field": "page", "message": f"must be at most {MAX_OFFSET // limit + 1} with this limit"})
    params = {"completed": completed, "state": state, "priority": value("priority"), "category": value("category"),
              "tags": _tags(args, errors), "due_before": value("due_before"), "due_after": value("due_after"),
              "overdue": value("overdue"), "has_due_date": value("has_due_date"), "search": value("search"),
              "sort": sort, "descending": descending, "limit": limit, "offset": offset or 0, "after": None}
    if args.get("cursor") and not errors:
        params["after"] = decode_cursor(args["cursor"], sort, descending, errors)
    if errors:
        raise ValidationError(errors, detail="Invalid list parameters.")
    return ListParams(**params)


def list_params(request, vocabularies):
    """parse_list_params for `request`, remembered for repeated query strings: the same few lists
    (first page, limit=N, a filter) are asked for over and over. Cursor pages are unique, so they
    are parsed each time rather than crowding the others out."""
    if b"cursor" in request.query_string:
        return parse_list_params(request.args, vocabularies)
    return _remembered(request.query_string, vocabularies)


@functools.lru_cache(maxsize=1024)
def _remembered(query_string, vocabularies):
    # As werkzeug reads request.args: UTF-8 with replacement, blank values kept.
    pairs = parse_qsl(query_string.decode("utf-8", "replace"), keep_blank_values=True)
    return parse_list_params(MultiDict(pairs), vocabularies)


# Cursors ---------------------------------------------------------------------------------------
def encode_cursor(sort, descending, value, last_id):
    """An opaque cursor pointing just past the row (`value`, `last_id`) in this order."""
    payload = [sort, "d" if descending else "a", value, last_id]
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor, sort, descending, errors):
    """(sort value, id) from a cursor of this order, or None with an error noted."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        cursor_sort, direction, value, last_id = json.loads(base64.urlsafe_b64decode(padded))
        if cursor_sort != sort or direction != ("d" if descending else "a"):
            raise ValueError("cursor belongs to another order")
        if not isinstance(last_id, int) or isinstance(last_id, bool):
            raise ValueError("bad id")
        if sort == "title":
            if not isinstance(value, str):
                raise ValueError("bad title")
        elif sort == "priority":
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError("bad rank")
        elif value is not None:
            value = parse_instant(value)
        elif sort != "due_date":
            raise ValueError("only due dates may be null")
        return value, last_id
    except (ValueError, TypeError, UnicodeDecodeError, KeyError):
        errors.append({"field": "cursor", "message": "is not a cursor from this list and order"})
        return None
