"""Listing a user's tasks: query parameters, filters, sorts and keyset cursors.

Every sort is an index order led by user_id (see migrations/001_initial.py) with the task id as
the last key, so each order is total and a cursor (the last row's sort key and id) resumes
exactly where the previous page ended, however many tasks were added meanwhile.
"""
import base64
import dataclasses
import json
from dataclasses import dataclass

from peewee import Tuple, fn

from .compiled import queries
from .errors import ValidationError
from .models import PRIORITIES, TASK_FIELDS, Task, task_json
from .validation import parse_datetime

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
SORTS = {
    "created": Task.created_at, "created_at": Task.created_at,
    "updated": Task.updated_at, "updated_at": Task.updated_at,
    "title": Task.title, "due_date": Task.due_date, "priority": Task.priority_rank,
}
STATUSES = ("all", "pending", "completed")


@dataclass(frozen=True)
class ListParams:
    """What a client asked of `GET /tasks`, validated."""

    completed: bool | None
    priority: str | None
    search: str | None
    sort: str
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


def parse_list_params(args):
    """Validate the list's query parameters (unknown ones are ignored); 422 on a bad value."""
    errors = []
    completed = None
    name, status = _first(args, "status", "status_filter")
    if status is not None:
        if status not in STATUSES:
            errors.append({"field": name, "message": "must be one of all, pending, completed"})
        completed = {"pending": False, "completed": True}.get(status)
    if "completed" in args:
        raw = args["completed"].lower()
        if raw not in ("true", "false"):
            errors.append({"field": "completed", "message": "must be true or false"})
        else:
            completed = raw == "true"
    priority = args.get("priority")
    if priority is not None and priority not in PRIORITIES:
        errors.append({"field": "priority", "message": "must be one of low, medium, high"})
    name, search = _first(args, "search", "q")
    if search is not None and ("\x00" in search or len(search) > 200):
        errors.append({"field": name, "message": "must be at most 200 characters, without NUL"})
    name, sort = _first(args, "sort", "sort_by")
    sort = sort or "created"
    if sort not in SORTS:
        errors.append({"field": name, "message": "must be one of " + ", ".join(SORTS)})
    order = args.get("order", "asc" if sort == "title" else "desc").lower()
    if order not in ("asc", "desc"):
        errors.append({"field": "order", "message": "must be asc or desc"})
    limit = _bounded_int(errors, "limit", args.get("limit"), DEFAULT_LIMIT, 1, MAX_LIMIT)
    name, raw_offset = _first(args, "offset", "skip")
    offset = _bounded_int(errors, name, raw_offset, 0, 0, 10_000_000)
    after = None
    if args.get("cursor") and not errors:
        after = _decode_cursor(args["cursor"], sort, order, errors)
    if errors:
        raise ValidationError(errors, detail="Invalid list parameters.")
    return ListParams(completed, priority, search or None, sort, order == "desc",
                      limit, offset, after)


# Parsed parameters by query string: the same few lists (first page, limit=N, a filter) are asked
# for over and over, and parsing is a pure function of the query string. Cursor pages are unique,
# so they are parsed each time rather than crowding the cache out; the cache is bounded.
_PARSED = {}
_PARSED_MAX = 1024


def list_params(request):
    """parse_list_params for `request`'s query string, remembered for repeated query strings."""
    query_string = request.query_string
    params = _PARSED.get(query_string)
    if params is None:
        params = parse_list_params(request.args)
        if len(_PARSED) < _PARSED_MAX and b"cursor" not in query_string:
            _PARSED[query_string] = params
    return params


# The page --------------------------------------------------------------------------------------
def list_page(params, user):
    """The list's answer for `params`: `user`'s tasks on this page as the API shows them, the
    total count of tasks matching the filters, and the cursor of the next page (None on the last).
    One round trip: the page and the count come in one statement (two when a cursor or offset
    points past the end, which leaves no row to carry the count)."""
    after_value, after_id = params.after or (None, None)
    offset = params.offset or None if params.after is None else None
    if params.search is None:
        # Compiled once per shape (compiled.py): everything that shapes the SQL text is in the
        # key; the values go in as parameters.
        shape = ("list", params.completed, params.sort, params.descending, params.after is not None)
        rows = queries.rows(shape, lambda **values: page_query(params, **values), user=user,
                            fetch=params.limit + 1, priority=params.priority,
                            after_value=after_value, after_id=after_id, offset=offset, tuples=True)
    else:  # a search pattern is derived from its value: built per request
        rows = list(page_query(params, user, params.limit + 1, params.priority, after_value, after_id,
                               offset).tuples())
    if rows:
        count = rows[0][_TOTAL]
    elif params.after is not None or params.offset:
        count = filtered(Task.owned(user, fn.COUNT(Task.id)), params).scalar()
    else:
        count = 0
    next_cursor = (encode_cursor(params, dict(zip(LIST_COLUMNS, rows[params.limit - 1], strict=True)))
                   if len(rows) > params.limit else None)
    return {"tasks": [task_json(row) for row in rows[:params.limit]], "count": count,
            "next_cursor": next_cursor}


def page_query(params, user, fetch, priority, after_value, after_id, offset):
    """One page (+1 row, to know whether another follows) with the total as a scalar subquery.
    The values that change per request are arguments, so compiled.py can compile it once."""
    params = dataclasses.replace(params, priority=priority, offset=offset or 0,
                                 after=(after_value, after_id) if params.after is not None else None)
    total = filtered(Task.owned(user, fn.COUNT(Task.id)), params)
    page = filtered(Task.owned(user, *TASK_FIELDS, total.alias("total")), params)
    return ordered_page(page, params).limit(fetch)


# A list row is a tuple of TASK_FIELDS' columns and the total.
LIST_COLUMNS = (*(field.name for field in TASK_FIELDS), "total")
_TOTAL = len(TASK_FIELDS)


# Cursors ---------------------------------------------------------------------------------------
def _canonical_sort(sort):
    return {"created_at": "created", "updated_at": "updated"}.get(sort, sort)


def encode_cursor(params, row):
    """An opaque cursor pointing just past `row` in `params`' order."""
    column = SORTS[params.sort]
    value = PRIORITIES.index(row["priority"]) if column is Task.priority_rank else row[column.name]
    if hasattr(value, "isoformat"):
        value = value.isoformat()
    payload = [_canonical_sort(params.sort), "d" if params.descending else "a", value, row["id"]]
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor, sort, order, errors):
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        cursor_sort, direction, value, last_id = json.loads(base64.urlsafe_b64decode(padded))
        if cursor_sort != _canonical_sort(sort) or direction != order[0]:
            raise ValueError("cursor belongs to another order")
        if not isinstance(last_id, int) or isinstance(last_id, bool):
            raise ValueError("bad id")
        column = SORTS[sort]  # compared by identity: `==` on a peewee field builds SQL
        if column is Task.title:
            if not isinstance(value, str):
                raise ValueError("bad title")
        elif column is Task.priority_rank:
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError("bad rank")
        elif value is not None:
            value = parse_datetime(value)
        elif column is not Task.due_date:
            raise ValueError("only due dates may be null")
        return value, last_id
    except (ValueError, TypeError, UnicodeDecodeError, KeyError):
        errors.append({"field": "cursor", "message": "is not a cursor from this list and order"})
        return None


def _escape_like(text):
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filtered(query, params):
    """`query` narrowed by the status, priority and search filters."""
    if params.completed is not None:
        query = query.where(Task.completed == params.completed)
    if params.priority:
        query = query.where(Task.priority == params.priority)
    if params.search:
        pattern = f"%{_escape_like(params.search)}%"
        query = query.where(Task.title.ilike(pattern) | Task.description.ilike(pattern))
    return query


def _after(column, descending, value, last_id):
    # Rows strictly after (value, id) in the order. Dates may be NULL and NULLs come last in
    # both directions, so due_date spells the comparison out; the others compare row values.
    beyond = Task.id < last_id if descending else Task.id > last_id
    if column is Task.due_date:
        if value is None:
            return Task.due_date.is_null() & beyond
        ahead = column < value if descending else column > value
        return ahead | ((column == value) & beyond) | Task.due_date.is_null()
    key = Tuple(column, Task.id)
    bound = Tuple(value, last_id)
    return key < bound if descending else key > bound


def ordered_page(query, params):
    """`query` ordered, positioned after the cursor (or offset) and limited to one page + 1."""
    column = SORTS[params.sort]
    if params.after is not None:
        query = query.where(_after(column, params.descending, *params.after))
    if column is Task.due_date:
        primary = column.desc(nulls="LAST") if params.descending else column.asc(nulls="LAST")
    else:
        primary = column.desc() if params.descending else column.asc()
    tiebreak = Task.id.desc() if params.descending else Task.id.asc()
    query = query.order_by(primary, tiebreak).limit(params.limit + 1)
    if params.offset and params.after is None:
        query = query.offset(params.offset)
    return query

