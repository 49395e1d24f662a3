"""Due reminders (`GET /api/reminders`): the caller's tasks not completed whose `remind_at` has
come (at or before now, or at or before `until`), earliest first; a partial index
(tasks_user_reminders, migration 006) serves it."""
from peewee import SQL, fn

from ..db import query_cache
from ..db.models import Task
from ..jsonio import json_array
from .task_sql import ROW, ROW_JSON, day_start

DEFAULT_LIMIT = 100


def due(user, until, limit=DEFAULT_LIMIT):
    """{"tasks": [...], "count": N} for reminders due by `until` (list_params.due_bound's value, or
    None for now): `count` is all of them, `tasks` the `limit` earliest. One round trip."""
    kind, value = until or (None, None)
    rows = query_cache.rows(_due_query, (kind,), user=user, until=value, limit=limit)
    return {"tasks": json_array(row[0] for row in rows), "count": rows[0][1] if rows else 0}


def _due_by(model, user, bound):
    return ((model.user == user) & model.remind_at.is_null(False) & (model.completed == False)  # noqa: E712
            & (model.remind_at <= bound))


def _due_query(shape, user, until, limit):
    (kind,) = shape
    bound = fn.now() if kind is None else day_start(until, user) if kind == "date" else until
    count = Task.select(fn.COUNT(SQL("*"))).where(_due_by(Task, user, bound))
    return (ROW.select(ROW_JSON.alias("json"), count.alias("count")).where(_due_by(ROW, user, bound))
            .order_by(ROW.remind_at, ROW.id).limit(limit))
