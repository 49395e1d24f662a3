"""The task list's query parameters, validated into a `ListParams` (or a 422 naming each bad one).

Unknown parameters are ignored. Every sort has the task id as its last key, so each order is
total, and a cursor (the last row's sort key and id, opaque to clients) resumes exactly where
the previous page ended however many tasks were added meanwhile.
"""
import base64
import functools
import json
from dataclasses import dataclass
from urllib.parse import parse_qsl

from werkzeug.datastructures import MultiDict

from .errors import ValidationError
from .fields import CATEGORY_MAX, MAX_OFFSET, MAX_TAGS_PER_TASK, SEARCH_MAX, TAG_NAME_MAX, parse_instant

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
# The sorts a client may ask for (with their older spellings), by the key the store orders by.
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
    search: str | None
    sort: str  # a key of the store's orders: created, updated, title, due_date, priority
    descending: bool
    limit: int
    offset: int
    after: tuple | None  # (sort value, id) of the last row already seen


def _first(args, *names):
    for name in names:
        if name in args:
            return name, args.get(name)
    return names[0], None


def _bounded_int(errors, name, raw, default, low, high):
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        errors.append({"field": name, "message": "must be a whole number"})
        return default
    if not low <= value <= high:
        errors.append({"field": name, "message": f"must be between {low} and {high}"})
    return value


def _status(args, vocabularies, errors):
    """(completed, state) from `status`: a filter word (all, pending, completed) or a state."""
    name, status = _first(args, "status", "status_filter")
    if status is None or status.strip().lower() == "all":
        return None, None
    word = status.strip().lower()
    if word in ("pending", "completed"):
        return word == "completed", None
    state = vocabularies["status"].lookup(status)
    if state is None:
        errors.append({"field": name, "message": "must be one of "
                       + ", ".join((*STATUSES, *vocabularies["status"].values))})
    return None, state


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
    completed, state = _status(args, vocabularies, errors)
    if "completed" in args:
        raw = args["completed"].lower()
        if raw not in ("true", "false"):
            errors.append({"field": "completed", "message": "must be true or false"})
        else:
            completed = raw == "true"
    priority = args.get("priority")
    if priority is not None:
        known = vocabularies["priority"].lookup(priority)
        if known is None:
            errors.append({"field": "priority", "message": "must be one of "
                           + ", ".join(vocabularies["priority"].values)})
        priority = known
    category = args.get("category")
    if category is not None:
        category = category.strip() or None
        if category and (len(category) > CATEGORY_MAX or "\x00" in category):
            errors.append({"field": "category", "message": f"must be at most {CATEGORY_MAX} characters"})
    tags = _tags(args, errors)
    name, search = _first(args, "search", "q")
    if search is not None and ("\x00" in search or len(search) > SEARCH_MAX):
        errors.append({"field": name, "message": f"must be at most {SEARCH_MAX} characters, without NUL"})
    name, sort = _first(args, "sort", "sort_by")
    sort = sort or "created"
    if sort not in SORTS:
        errors.append({"field": name, "message": "must be one of " + ", ".join(SORTS)})
    order = args.get("order", "asc" if sort == "title" else "desc").lower()
    if order not in ("asc", "desc"):
        errors.append({"field": "order", "message": "must be asc or desc"})
    limit = _bounded_int(errors, "limit", args.get("limit"), DEFAULT_LIMIT, 1, MAX_LIMIT)
    name, raw_offset = _first(args, "offset", "skip")
    offset = _bounded_int(errors, name, raw_offset, 0, 0, MAX_OFFSET)
    after = None
    if args.get("cursor") and not errors:
        after = decode_cursor(args["cursor"], SORTS[sort], order == "desc", errors)
    if errors:
        raise ValidationError(errors, detail="Invalid list parameters.")
    return ListParams(completed, state, priority, category, tags, search or None, SORTS[sort], order == "desc",
                      limit, offset, after)


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
