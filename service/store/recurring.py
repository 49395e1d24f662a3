"""Completing a recurring task: its next occurrence is created in the same transaction.

A write that may complete a task (a toggle, `completed: true`, the last status) first runs with a
guard, `recurrence IS NULL OR completed`, so an ordinary task is written in its one statement as
usual. When the guard holds the write back (a recurring task about to be completed), the same
statement returns what the next occurrence needs instead (rule, due date, reminder, the user's
time zone); recurrence.py computes it with dateutil, and one message of statements completes the
task at the version just read, inserts the next occurrence (same title, description, priority,
category, tags and rule, COUNT one less, first state, reminder shifted by the same amount) and
reads both back. Two concurrent completions: the second finds the version moved, writes
nothing, and is run again from the start, so exactly one occurrence is created.
"""
from typing import NamedTuple

from .. import recurrence
from ..db import database
from ..db.models import Task
from .task_sql import ROW_JSON

GUARD = Task.recurrence.is_null() | Task.completed
FOLLOWED = ("recurrence", "due_date", "remind_at")  # what of the completed task the next occurrence follows


class Guarded:
    """The write `query` (RETURNING id, version, json) with the fallback row that stands in when
    its guard held it back: (id, version, NULL, recurrence, due_date, remind_at, time zone)."""

    TEMPLATE = """WITH written AS ({write})
SELECT id, version, json, NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::text FROM written
UNION ALL
SELECT id, version, NULL, recurrence, due_date, remind_at, (SELECT timezone FROM users WHERE users.id = tasks.user_id)
FROM tasks WHERE user_id = %s AND id = %s AND NOT EXISTS (SELECT 1 FROM written)"""

    def __init__(self, query, user, task_id):
        self.query, self.user, self.task_id = query, user, task_id

    def sql(self):
        """The statement and its parameters (what Peewee queries answer, for the query cache)."""
        sql, params = self.query.sql()
        return self.TEMPLATE.format(write=sql), [*params, self.user, self.task_id]


class HeldBack(NamedTuple):
    """A recurring task the guard kept from being completed, as the fallback row shows it."""

    id: int
    version: int
    recurrence: str
    due_date: object
    remind_at: object
    time_zone: str


COMPLETE_AND_FOLLOW = """SELECT set_config('app.written_task', '', true), set_config('app.next_task', '', true);
WITH written AS ({write}),
     following AS ({following}),
     linked AS (INSERT INTO task_tags (user_id, task_id, tag_id)
                SELECT link.user_id, following.id, link.tag_id FROM task_tags link, following WHERE link.task_id = %s)
SELECT set_config('app.written_task', (SELECT id::text FROM written), true),
       set_config('app.next_task', (SELECT id::text FROM following), true);
SELECT task.id, task.version, {json} FROM tasks AS task WHERE task.user_id = %s
   AND task.id IN (NULLIF(current_setting('app.written_task', true), '')::bigint,
                   NULLIF(current_setting('app.next_task', true), '')::bigint) ORDER BY task.id"""
NEXT_OCCURRENCE = ("INSERT INTO tasks (user_id, title, description, priority, category, recurrence, due_date, "
                   "remind_at) SELECT user_id, title, description, priority, category, %s, %s, %s FROM written "
                   "RETURNING id")
RULE_ENDED = "SELECT NULL::bigint AS id WHERE false"


def completing_update(_shape, user, task_id, version, **columns):
    """The UPDATE completing a held-back task: at the version read, if still not completed; it
    returns what the next occurrence copies (compiled once per shape, db/query_cache.py)."""
    return (Task.update(**columns).where(Task.user == user, Task.id == task_id, Task.version == version,
                                          ~Task.completed)
            .returning(Task.id, Task.user, Task.title, Task.description, Task.priority, Task.category))


def complete_and_follow(update, user, held):
    """Run `update` ((sql, params) of completing_update) and create the next occurrence. Returns
    the rows (id, version, json) of the task and of its next occurrence (none when the rule has
    ended), or [] when the task moved meanwhile."""
    following = None
    if held.recurrence is not None and held.due_date is not None:  # else no rule (or the database refuses)
        following = recurrence.next_occurrence(held.recurrence, held.due_date, held.time_zone)
    write_sql, params = update
    if following is None:
        sql = COMPLETE_AND_FOLLOW.format(write=write_sql, following=RULE_ENDED, json=ROW_JSON.sql)
    else:
        due, rule = following
        remind = held.remind_at + (due - held.due_date) if held.remind_at is not None else None
        sql = COMPLETE_AND_FOLLOW.format(write=write_sql, following=NEXT_OCCURRENCE, json=ROW_JSON.sql)
        params = [*params, rule, due, remind]
    return database.execute_sql(sql, [*params, held.id, user]).fetchall()
