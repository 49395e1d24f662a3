"""The export file of all data (`flask --app wsgi export`), as JSON Lines; import_file.py reads it.

The file holds one JSON object per line:
- first `{"type": "meta", "format": "todo-service-export", "version": 2, "exported_at", "users",
  "tags", "tasks", "next_task_id", "next_tag_id"}`,
- then every user `{"type": "user", ...}`, every tag `{"type": "tag", ...}` and every task
  `{"type": "task", ..., "tag_ids": [...]}`, each with the stored fields of service/fields.py
  (a task's `version` and `completed_at` too), the task's links to its tags as `tag_ids`.
Ids, versions and timestamps survive a round trip, and so do the next ids (the identity sequences
are moved past the imported ids and to the exported next ids, so ids of deleted rows are not
handed out again). Version 1 files (no tags, statuses or categories) still import. Idempotency
keys are not exported: they expire in 24 hours.
"""
import contextlib
from datetime import UTC, datetime

import orjson

from .. import fields
from .admin_db import next_id

FORMAT = "todo-service-export"
VERSION = 2
READABLE_VERSIONS = (1, 2)
CHUNK_ROWS = 10_000
# (record type, table, stored columns), in the order they are written and loaded.
KINDS = (("user", "users", tuple(f.name for f in fields.USER if f.stored)),
         ("tag", "tags", tuple(f.name for f in fields.TAG if f.stored)),
         ("task", "tasks", tuple(f.name for f in fields.TASK if f.stored)))
TAG_IDS = ("coalesce((SELECT array_agg(tag_id ORDER BY tag_id) FROM task_tags WHERE task_id = tasks.id), "
           "'{}') AS tag_ids")


class TransferError(Exception):
    """The file or the database refused the transfer; the message is one line."""


@contextlib.contextmanager
def _snapshot(db):
    """A read-only REPEATABLE READ transaction over every user's rows: users, tags, tasks and
    counts are read from one consistent snapshot while the service keeps writing."""
    with db.connection_context():
        conn = db.connection()
        with conn.cursor() as cursor:
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                cursor.execute("SELECT set_config('app.bypass_rls', 'on', true), "
                               "set_config('statement_timeout', '0', true), "
                               "set_config('TimeZone', 'UTC', true)")
                yield conn
            finally:
                cursor.execute("ROLLBACK")  # read only: nothing to keep


def export_data(db, out, progress=None, on_counts=None):
    """Write every user, tag and task to the text stream `out`; returns (users, tasks) written.

    `on_counts(users, tasks)` is called before streaming (to size a progress bar); `progress(n)`
    after each batch of rows.
    """
    with _snapshot(db) as conn:
        with conn.cursor() as cursor:
            cursor.execute("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM tags), "
                           "(SELECT count(*) FROM tasks)")
            users, tags, tasks = cursor.fetchone()
            following = {"next_task_id": next_id(cursor, "tasks"), "next_tag_id": next_id(cursor, "tags")}
        if on_counts:
            on_counts(users, tags + tasks)
        meta = {"type": "meta", "format": FORMAT, "version": VERSION, "exported_at": datetime.now(UTC),
                "users": users, "tags": tags, "tasks": tasks, **following}
        out.write(orjson.dumps(meta).decode() + "\n")
        for kind, table, columns in KINDS:
            names = (*columns, "tag_ids") if kind == "task" else columns
            selected = ", ".join((*columns, TAG_IDS) if kind == "task" else columns)
            # A server-side cursor streams the rows instead of loading them all; psycopg2 needs
            # WITH HOLD for one on an autocommit connection, even inside our transaction.
            with conn.cursor(name=f"export_{table}", withhold=True) as cursor:
                cursor.itersize = CHUNK_ROWS
                cursor.execute(f"SELECT {selected} FROM {table} ORDER BY id")  # noqa: S608 - constants
                while rows := cursor.fetchmany(CHUNK_ROWS):
                    out.write("".join(orjson.dumps({"type": kind, **dict(zip(names, row, strict=True))}).decode()
                                      + "\n" for row in rows))
                    if progress:
                        progress(len(rows))
    return users, tasks
