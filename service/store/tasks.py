"""The task store: every task query the service makes, each scoped to its owner.

Views call `get`, `page`, `create`, `update`, `set_completed`, `delete`; nothing else touches
the tasks table on the request path. Each function is one statement (one round trip: the
row-level-security scope rides along, see db/pool.py), compiled once per shape (db/query_cache.py).

PostgreSQL builds each task's JSON itself (`row_to_json` over the fields of service/fields.py),
so Python neither decodes the row's values nor encodes them again: a list's body is the rows'
JSON texts joined. A task comes back as a `StoredTask`: its id and version (for Location and
ETag) and its JSON text.
"""
from typing import NamedTuple

import orjson
from peewee import SQL, IntegrityError, Tuple, fn

from .. import fields
from ..db import query_cache
from ..db.models import Task
from ..errors import ApiError
from ..jsonio import json_array
from ..list_params import encode_cursor
from . import users

ROW = Task.alias("task")  # the list and get read `tasks AS task`; writes return from `tasks`
ORDERS = {"created": ROW.created_at, "updated": ROW.updated_at, "title": ROW.title,
          "due_date": ROW.due_date, "priority": ROW.priority_rank}
SORT_FIELDS = {"created": "created_at", "updated": "updated_at", "title": "title", "due_date": "due_date",
               "priority": "priority"}  # the task JSON member a cursor takes its sort value from


class StoredTask(NamedTuple):
    """A task as the store returns it: id, version (the ETag) and its JSON text."""

    id: int
    version: int
    json: str


def _task_json(table):
    """SQL for the JSON of the task row `table` (`task` or `tasks`), in the order of its fields."""
    columns = ", ".join(f"{table}.{field.name}" for field in fields.TASK if field.in_json)
    return SQL(f"(SELECT row_to_json(task_json) FROM (SELECT {columns}) task_json)::text")  # noqa: S608 - names from fields.py


ROW_JSON = _task_json("task")
WRITTEN_JSON = _task_json("tasks")


def _not_found(task_id):
    return ApiError(404, f"Task {task_id} not found.")


# Reads -----------------------------------------------------------------------------------------
def get(user, task_id):
    """The caller's task `task_id`, or 404 (missing and not-yours look the same)."""
    found = query_cache.rows(_get_query, (), user=user, task_id=task_id) if task_id <= fields.MAX_TASK_ID else []
    if not found:
        raise _not_found(task_id)
    return StoredTask(*found[0])


def _get_query(_shape, user, task_id):
    return (ROW.select(ROW.id, ROW.version, ROW_JSON.alias("json"))
            .where(ROW.user == user, ROW.id == task_id).limit(1))


def page(user, params, vocabularies):
    """The list's body for `params` (list_params.ListParams): `user`'s tasks on this
    page, the count of all tasks matching the filters and the cursor of the next page. One round
    trip: the page and the count come in one statement (two when a cursor or offset points past
    the end, which leaves no row to carry the count)."""
    shape, filters, page_values = page_arguments(user, params)
    rows = query_cache.rows(_page_query, shape, **filters, **page_values)
    if rows:
        count = rows[0][1]
    elif params.after is not None or params.offset:
        count = query_cache.rows(_count_query, shape[:3], **filters)[0][0]
    else:
        count = 0
    cursor = None
    if len(rows) > params.limit:
        last = orjson.loads(rows[params.limit - 1][0])
        value = last[SORT_FIELDS[params.sort]]
        if params.sort == "priority":
            value = vocabularies["priority"].rank(value)
        cursor = encode_cursor(params.sort, params.descending, value, last["id"])
    return {"tasks": json_array(row[0] for row in rows[:params.limit]), "count": count, "next_cursor": cursor}


def page_arguments(user, params):
    """The page query's shape (what changes its SQL text), its filter values and its paging values."""
    shape = (params.completed, params.priority is not None, params.search is not None, params.sort,
             params.descending, params.after is not None, bool(params.offset) and params.after is None)
    filters = {"user": user, "priority": params.priority, "pattern": _pattern(params.search)}
    after_value, after_id = params.after or (None, None)
    paging = {"fetch": params.limit + 1, "after_value": after_value, "after_id": after_id,
              "offset": params.offset if shape[-1] else None}
    return shape, filters, paging


def _pattern(search):
    if search is None:
        return None
    return "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _filtered(query, model, shape, user, priority, pattern):
    completed, by_priority, by_search = shape[:3]
    query = query.where(model.user == user)
    if completed is not None:
        query = query.where(model.completed == completed)
    if by_priority:
        query = query.where(model.priority == priority)
    if by_search:
        query = query.where(model.title.ilike(pattern) | model.description.ilike(pattern))
    return query


def _count_query(shape, user, priority, pattern):
    return _filtered(Task.select(fn.COUNT(Task.id)), Task, shape, user, priority, pattern)


def _page_query(shape, user, priority, pattern, after_value, after_id, offset, fetch):
    """One page (+1 row, to know whether another follows) with the total as a scalar subquery."""
    _, _, _, sort, descending, has_cursor, has_offset = shape
    total = _filtered(Task.select(fn.COUNT(Task.id)), Task, shape, user, priority, pattern)
    query = _filtered(ROW.select(ROW_JSON.alias("json"), total.alias("total")), ROW, shape, user, priority,
                      pattern)
    column = ORDERS[sort]
    if has_cursor:
        query = query.where(_after(column, sort, descending, after_value, after_id))
    if sort == "due_date":
        primary = column.desc(nulls="LAST") if descending else column.asc(nulls="LAST")
    else:
        primary = column.desc() if descending else column.asc()
    query = query.order_by(primary, ROW.id.desc() if descending else ROW.id.asc()).limit(fetch)
    return query.offset(offset) if has_offset else query


def _after(column, sort, descending, value, last_id):
    # Rows strictly after (value, id) in the order. Due dates may be NULL and NULLs come last in
    # both directions, so due_date spells the comparison out; the others compare row values.
    beyond = ROW.id < last_id if descending else ROW.id > last_id
    if sort == "due_date":
        if value is None:
            return column.is_null() & beyond
        ahead = column < value if descending else column > value
        return ahead | ((column == value) & beyond) | column.is_null()
    key, bound = Tuple(column, ROW.id), Tuple(value, last_id)
    return key < bound if descending else key > bound


# Writes ----------------------------------------------------------------------------------------
def create(user, values, owner_claims):
    """A new task of `user` with `values` (validated fields). If the owner's row was deleted by
    another process since this one provisioned it, it is provisioned again from `owner_claims`."""
    shape = tuple(sorted(values))
    try:
        return StoredTask(*query_cache.rows(_insert_query, shape, user=user, **values)[0])
    except IntegrityError:
        if not users.provision(owner_claims):
            raise
        return StoredTask(*query_cache.rows(_insert_query, shape, user=user, **values)[0])


def _insert_query(_shape, user, **values):
    return Task.insert(user=user, **values).returning(Task.id, Task.version, WRITTEN_JSON.alias("json"))


def update(user, task_id, values, expected=None):
    """Change `values` of the task; `expected`: the versions If-Match accepts (None: any)."""
    return _write(_update_query, tuple(sorted(values)), user, task_id, expected, **values)


def _update_query(_shape, user, task_id, expected, **values):
    return _one(Task.update(**values), user, task_id, expected).returning(
        Task.id, Task.version, WRITTEN_JSON.alias("json"))


def set_completed(user, task_id, completed, expected=None):
    """Set the task's completion (None: toggle it)."""
    return _write(_complete_query, (), user, task_id, expected, completed=completed)


def _complete_query(_shape, user, task_id, expected, completed):
    value = ~Task.completed if completed is None else completed
    return _one(Task.update(completed=value), user, task_id, expected).returning(
        Task.id, Task.version, WRITTEN_JSON.alias("json"))


def delete(user, task_id, expected=None):
    """Delete the task; returns its id."""
    return _write(_delete_query, (), user, task_id, expected).id


def _delete_query(_shape, user, task_id, expected):
    return _one(Task.delete(), user, task_id, expected).returning(Task.id, Task.version, SQL("NULL"))


NO_VERSION = -1  # versions start at 1: an If-Match that names no version matches nothing


def _one(query, user, task_id, expected):
    """`query` (an UPDATE or DELETE) limited to the owner's task, at an expected version."""
    query = query.where(Task.user == user, Task.id == task_id)
    if isinstance(expected, tuple):
        return query.where(Task.version.in_(expected))
    return query if expected is None else query.where(Task.version == expected)


def _write(build, shape, user, task_id, expected, **values):
    """Run a one-task write honouring If-Match: the written task, 412 when another version is
    current, 404 when there is no such task of the caller."""
    if task_id > fields.MAX_TASK_ID:
        raise _not_found(task_id)
    # One version (the usual If-Match) is a value like any other, compiled once; a list is rare
    # and built per request (the query cache does not stand in for tuples).
    if expected is not None:
        expected = expected[0] if len(expected) == 1 else expected or NO_VERSION
    found = query_cache.rows(build, shape, user=user, task_id=task_id, expected=expected, **values)
    if found:
        return StoredTask(*found[0])
    if expected is not None:
        current = get(user, task_id)
        raise ApiError(412, f"Task {task_id} has changed (now version {current.version}).",
                       headers={"ETag": f'"{current.version}"'})
    raise _not_found(task_id)
