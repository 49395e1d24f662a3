"""Writing a task together with its tags, in one round trip, and the database's refusals as 422s.

A body that sets `tags` (names) or `tag_ids` is one message of statements in one transaction:
the task is written (`written`: the Peewee INSERT or UPDATE), missing tags are created, its links
are replaced, and its JSON is read back, all before the next request can see any of it. The
task's id travels from the write to the others in a transaction-local setting, which stays empty
when the write matched nothing (an If-Match that failed, a missing task): then nothing else
happens (no tag is created) and no row comes back.
The database keeps the rules: a link's foreign keys carry the user id (another user's tag cannot
be linked), and triggers cap the tags per task and per user.
"""
from ..db import database
from ..db.models import Task
from ..errors import ValidationError
from .task_sql import ROW_JSON

# The written task's id, or NULL when the write matched nothing.
WRITTEN = "NULLIF(current_setting('app.written_task', true), '')::bigint"
WRITE = """SELECT set_config('app.written_task', '', true);
WITH written AS ({written}) SELECT set_config('app.written_task', id::text, true) FROM written; """
CREATE_MISSING = ("INSERT INTO tags (user_id, name) SELECT %s, name FROM unnest(%s::text[]) AS name "
                  "WHERE {written} IS NOT NULL ON CONFLICT (user_id, lower(name)) DO NOTHING; ")
# Names are matched as the database folds case (lower()), like the unique index on tag names.
CHOSEN = {"tags": "SELECT id FROM tags WHERE user_id = %s AND lower(name) = ANY(ARRAY(SELECT lower(wanted) "
                  "FROM unnest(%s::text[]) AS wanted))",
          "tag_ids": "SELECT DISTINCT unnest(%s::bigint[]) AS id"}
REPLACE_LINKS = """WITH chosen AS ({chosen}),
     unlinked AS (DELETE FROM task_tags WHERE task_id = {written} AND tag_id NOT IN (SELECT id FROM chosen)),
     linked AS (INSERT INTO task_tags (user_id, task_id, tag_id) SELECT %s, {written}, chosen.id
                FROM chosen WHERE {written} IS NOT NULL ON CONFLICT DO NOTHING)
SELECT 1; """
READ_BACK = "SELECT task.id, task.version, {json} FROM tasks AS task WHERE task.user_id = %s AND task.id = {written}"


def split(values):
    """(the column values, the tags to set or None) of a task body's values."""
    columns = {name: value for name, value in values.items() if name not in ("tags", "tag_ids")}
    if "tags" in values and "tag_ids" in values:
        raise ValidationError([{"field": "tag_ids", "message": "give tags (names) or tag_ids, not both"}])
    for name in ("tags", "tag_ids"):
        if name in values:
            return columns, (name, values[name])
    return columns, None


def write_with_tags(written, user, tags):
    """The rows (id, version, json) of the task `written` (a Peewee INSERT/UPDATE of one task)
    after setting its tags to `tags` ("tags", names) or ("tag_ids", ids); none when it matched
    nothing."""
    kind, items = tags
    written_sql, written_params = written.returning(Task.id).sql()
    sql, params = WRITE.format(written=written_sql), list(written_params)
    if kind == "tags" and items:
        sql += CREATE_MISSING.format(written=WRITTEN)
        params += [user, items]
    chosen_params = [user, items] if kind == "tags" else [items]
    sql += REPLACE_LINKS.format(chosen=CHOSEN[kind], written=WRITTEN)
    params += [*chosen_params, user]
    sql += READ_BACK.format(json=ROW_JSON.sql, written=WRITTEN)
    params.append(user)
    return database.execute_sql(sql, params).fetchall()


def constraint(error):
    """The name of the constraint a database IntegrityError names, or None."""
    # Peewee 4 keeps the driver's error as `orig` (it is no longer the first of `args`).
    original = getattr(error, "orig", None)
    diag = getattr(original, "diag", None)
    return getattr(diag, "constraint_name", None)


REFUSALS = {
    "tags_per_task": ("tags", "must hold at most 20 tags"),
    "tags_per_user": ("tags", "would give you more than 500 tags"),
    "task_tags_tag_fkey": ("tag_ids", "names a tag that does not exist"),
    "tasks_status_completed": ("completed", "disagrees with status"),
    "tasks_recurrence_needs_due_date": ("recurrence", "needs a due_date: a recurring task cannot lose it"),
    "tasks_recurrence_rule": ("recurrence", "is not a rule the service can expand"),
}


def refused(error):
    """The 422 for a rule of the database a task write broke, else the error itself (the
    generic 409 of errors.py)."""
    found = REFUSALS.get(constraint(error))
    if found is None:
        return error
    field, message = found
    return ValidationError([{"field": field, "message": message}])
