"""The task store: every task query the service makes, each scoped to its owner.

Views call `get`, `page`, `create`, `update`, `set_completed`, `delete`; nothing else touches the
tasks on the request path. Each call is one round trip (the row-level-security scope rides along,
see db/pool.py), compiled once per shape (db/query_cache.py); the SQL is in task_sql.py.

PostgreSQL builds each task's JSON itself (`row_to_json` over the fields of service/fields.py,
its tags aggregated in the same statement), so Python neither decodes the row's values nor
encodes them again. A task comes back as a `StoredTask`: its id and version (for Location and
ETag) and its JSON text.
"""
from typing import NamedTuple

import orjson
from peewee import SQL, IntegrityError

from .. import fields
from ..db import query_cache
from ..db.models import Task
from ..errors import ApiError
from ..jsonio import json_array
from ..list_params import encode_cursor
from . import recurring, tagging, task_sql, users
from .task_sql import NEW_JSON, ROW, ROW_JSON, WRITTEN_JSON

# The task JSON member a cursor takes its sort value from.
SORT_FIELDS = {"created": "created_at", "updated": "updated_at", "title": "title", "due_date": "due_date",
               "priority": "priority"}
OWNER_KEYS = {"tasks_user_id_fkey", "tags_user_id_fkey"}  # a write naming an owner row that is gone
NO_VERSION = -1  # versions start at 1: an If-Match that names no version matches nothing


NO_NEXT = object()  # a StoredTask of a write that did not complete a recurring task


class StoredTask(NamedTuple):
    """A task as the store returns it: id, version (the ETag) and its JSON text; when the write
    completed a recurring task, the JSON text of its next occurrence (None: the rule has ended)."""

    id: int
    version: int
    json: str
    next_occurrence: object = NO_NEXT


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
    return ROW.select(ROW.id, ROW.version, ROW_JSON.alias("json")).where(ROW.user == user, ROW.id == task_id)


def page(user, params, vocabularies):
    """The list's body for `params` (list_params.ListParams): `user`'s tasks on this page, the
    counts of the tasks matching the filters and the cursor of the next page. One round trip: the
    page and the counts come in one statement (two when a cursor or offset points past the end,
    which leaves no row to carry the counts)."""
    shape, arguments = task_sql.page_arguments(user, params, vocabularies.done)
    rows = query_cache.rows(task_sql.page_query, shape, **arguments)
    if rows:
        count, completed, pending = rows[0][1]
    elif params.after is not None or params.offset:
        filters = task_sql.filter_values(user, params, vocabularies.done)
        count, completed, pending = query_cache.rows(task_sql.count_query, shape[0], **filters)[0][0]
    else:
        count = completed = pending = 0
    cursor = None
    if len(rows) > params.limit:
        last = orjson.loads(rows[params.limit - 1][0])
        value = last[SORT_FIELDS[params.sort]]
        if params.sort == "priority":
            value = vocabularies["priority"].rank(value)
        cursor = encode_cursor(params.sort, params.descending, value, last["id"])
    return {"tasks": json_array(row[0] for row in rows[:params.limit]), "count": count, "total": count,
            "completed_count": completed, "pending_count": pending, "next_cursor": cursor}


# Writes ----------------------------------------------------------------------------------------
def create(user, values, owner_claims):
    """A new task of `user` with `values` (validated fields, tags included). If the owner's row was
    deleted by another process since this one provisioned it, it is provisioned again."""
    try:
        return _create(user, values)
    except IntegrityError as error:
        if tagging.constraint(error) not in OWNER_KEYS or not users.provision(owner_claims):
            raise tagging.refused(error) from None
        return _create(user, values)


def _create(user, values):
    columns, tags = tagging.split(values)
    if tags is None:
        return StoredTask(*query_cache.rows(_insert_query, tuple(sorted(columns)), user=user, **columns)[0])
    return StoredTask(*tagging.write_with_tags(_insert_query(tuple(sorted(columns)), user, **columns), user, tags)[0])


def _insert_query(_shape, user, **columns):
    return Task.insert(user=user, **columns).returning(Task.id, Task.version, NEW_JSON.alias("json"))


def update(user, task_id, values, expected=None, done=None):
    """Change `values` of the task (tags included); `expected`: the versions If-Match accepts;
    `done`: the last state (a write moving there completes the task)."""
    columns, tags = tagging.split(values)
    completing = columns.get("completed") is True or (done is not None and columns.get("status") == done)
    if tags is not None and completing:
        # Rare: tags and a completion at once. The tags first, then the completion (which may
        # create a recurring task's next occurrence) at the version the first write made.
        rest = {name: value for name, value in values.items() if name not in ("completed", "status")}
        first = update(user, task_id, rest, expected)
        completion = {name: value for name, value in columns.items() if name in ("completed", "status")}
        return update(user, task_id, completion, (first.version,), done)
    if tags is not None:
        # The tags changed the task: its version moves even when no column is given.
        columns = columns or {"version": Task.version}
    return _write(_update_query, (completing, *sorted(columns)), user, task_id, expected, tags, **columns)


def _update_query(shape, user, task_id, expected, **columns):
    query = _one(Task.update(**columns), user, task_id, expected, guarded=shape[0])
    return _returning(query, shape[0], user, task_id)


def set_completed(user, task_id, completed, expected=None):
    """Set the task's completion (None: toggle it); the database moves its status along."""
    return _write(_complete_query, (completed is not False,), user, task_id, expected, None, completed=completed)


def _complete_query(shape, user, task_id, expected, completed):
    value = ~Task.completed if completed is None else completed
    query = _one(Task.update(completed=value), user, task_id, expected, guarded=shape[0])
    return _returning(query, shape[0], user, task_id)


def _returning(query, guarded, user, task_id):
    query = query.returning(Task.id, Task.version, WRITTEN_JSON.alias("json"))
    return recurring.Guarded(query, user, task_id) if guarded else query


def delete(user, task_id, expected=None):
    """Delete the task; returns its id."""
    return _write(_delete_query, (False,), user, task_id, expected, None).id


def _delete_query(_shape, user, task_id, expected):
    return _one(Task.delete(), user, task_id, expected).returning(Task.id, Task.version, SQL("NULL"))


def _one(query, user, task_id, expected, guarded=False):
    """`query` (an UPDATE or DELETE) limited to the owner's task, at an expected version; when
    `guarded`, never completing a recurring task (recurring.py does that)."""
    query = query.where(Task.user == user, Task.id == task_id)
    if guarded:
        query = query.where(recurring.GUARD)
    if isinstance(expected, tuple):
        return query.where(Task.version.in_(expected))
    return query if expected is None else query.where(Task.version == expected)


def _write(build, shape, user, task_id, expected, tags, attempts=2, **values):
    """Run a one-task write honouring If-Match: the written task, 412 when another version is
    current, 404 when there is no such task of the caller. A write that completes a recurring
    task (shape[0] set: it may complete) goes on in recurring.py."""
    if task_id > fields.MAX_TASK_ID:
        raise _not_found(task_id)
    # One version (the usual If-Match) is a value like any other, compiled once; a list is rare
    # and built per request (the query cache does not stand in for tuples).
    versions = expected
    if expected is not None:
        expected = expected[0] if len(expected) == 1 else expected or NO_VERSION
    arguments = {"user": user, "task_id": task_id, "expected": expected, **values}
    try:
        if tags is None:
            found = query_cache.rows(build, shape, **arguments)
        else:
            found = tagging.write_with_tags(build((False, *shape[1:]), **arguments), user, tags)
    except IntegrityError as error:
        raise tagging.refused(error) from None
    if found and not (shape[0] and found[0][2] is None):
        return _stored(found[0][:3], completing=shape[0])
    if found:  # the guarded write matched nothing: the task as it stands
        held = recurring.HeldBack(found[0][0], found[0][1], *found[0][3:])
        if versions is not None and held.version not in versions:
            raise _changed(task_id, held.version)
        if held.recurrence is not None:  # a recurring task about to be completed: held back
            columns = {**values, "completed": True} if "completed" in values and values["completed"] is None else values
            update = query_cache.statement(recurring.completing_update, tuple(sorted(columns)), user=user,
                                           task_id=task_id, version=held.version, **columns)
            # The next occurrence follows the task as this write leaves it (a new rule, due date or
            # reminder sent with the completion; no rule: none follows).
            leaves = held._replace(**{name: values[name] for name in recurring.FOLLOWED if name in values})
            try:
                rows = recurring.complete_and_follow(update, user, leaves)
            except IntegrityError as error:
                raise tagging.refused(error) from None
            if rows:
                return StoredTask(*rows[0], next_occurrence=rows[1][2] if len(rows) > 1 else None)
        if attempts > 1:  # completed or changed meanwhile by another request: take it from the top
            return _write(build, shape, user, task_id, versions, tags, attempts - 1, **values)
        raise _changed(task_id, held.version)
    if expected is not None:
        raise _changed(task_id, get(user, task_id).version)
    raise _not_found(task_id)


def _changed(task_id, version):
    return ApiError(412, f"Task {task_id} has changed (now version {version}).", headers={"ETag": f'"{version}"'})


def _stored(row, completing):
    """A written task; a completing write of a recurring task (already completed, so nothing was
    created) says so with a null next_occurrence. A toggle that un-completed it says nothing of
    one: null would read as "the rule has ended"."""
    if completing and row[2] is not None and '"recurrence":null' not in row[2] and '"completed":true' in row[2]:
        return StoredTask(*row, next_occurrence=None)
    return StoredTask(*row)
