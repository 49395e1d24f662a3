"""The release step that makes the database's vocabularies match the configuration
(`flask --app wsgi apply-vocabularies`, run by the Procfile's release after the migrations).

Each vocabulary is a lookup table (value, rank) that tasks refer to by foreign key. A configured
value that folds like a stored one (`HIGH` and `high`) renames it, and the rename cascades to the
tasks; a new value is added; a stored value no longer configured is removed, unless tasks still
use it: then nothing changes and the error names the value and how many tasks use it. Ranks
follow the configured order (sorting by priority reads them), the column defaults become the new
defaults, and `completed` follows the last state. All in one transaction.
"""
from ..vocabularies import TABLES, fold
from .admin_db import admin_transaction

COLUMNS = {"priority": "priority", "status": "status"}


class VocabularyError(Exception):
    """The configured vocabulary cannot be applied; the message is one line."""


def _apply(cursor, name, vocabulary, env_name):
    table, column = TABLES[name], COLUMNS[name]
    cursor.execute(f"SELECT value FROM {table}")  # noqa: S608 - names from constants
    stored = {fold(value): value for (value,) in cursor.fetchall()}
    wanted = {fold(value): value for value in vocabulary.values}
    changes = []
    for key in stored.keys() - wanted.keys():
        cursor.execute(f"SELECT count(*) FROM tasks WHERE {column} = %s", (stored[key],))  # noqa: S608
        (used,) = cursor.fetchone()
        if used:
            raise VocabularyError(
                f"{env_name} drops {stored[key]!r}, which {used} task{'s' if used != 1 else ''} still use; "
                f"move them to another {name} first, or keep the value")
        cursor.execute(f"DELETE FROM {table} WHERE value = %s", (stored[key],))  # noqa: S608
        changes.append(f"removed {stored[key]}")
    for key, value in wanted.items():
        if key not in stored:
            # The rank constraint is deferred to the commit: ranks may overlap until then.
            cursor.execute(f"INSERT INTO {table} (value, rank) VALUES (%s, %s)",  # noqa: S608
                           (value, vocabulary.rank(value)))
            changes.append(f"added {value}")
        elif stored[key] != value:
            cursor.execute(f"UPDATE {table} SET value = %s WHERE value = %s", (value, stored[key]))  # noqa: S608
            changes.append(f"renamed {stored[key]} to {value}")
    cursor.execute(f"UPDATE {table} AS v SET rank = w.position - 1 "  # noqa: S608
                   "FROM unnest(%s::text[]) WITH ORDINALITY AS w(value, position) "
                   "WHERE v.value = w.value AND v.rank <> w.position - 1", (list(vocabulary.values),))
    if cursor.rowcount and len(changes) < cursor.rowcount:
        changes.append("reordered")
    cursor.execute(f"ALTER TABLE tasks ALTER COLUMN {column} SET DEFAULT {_literal(vocabulary.default)}")
    return changes


def _literal(value):
    # Vocabulary values are letters, digits, '_' and '-' (checked by the configuration): safe to quote.
    return "'" + value + "'"


def apply_vocabularies(db, vocabularies):
    """Make the database's vocabularies those of `vocabularies`; returns what changed, per name."""
    with admin_transaction(db) as cursor:
        # Renames cascade to the tasks, ranks may have moved (the sort key follows), and tasks
        # whose state is now (or no longer) the last one follow it into (or out of) completion;
        # none is a change a client made, so the update trigger is told, before any of it, to
        # leave their versions alone.
        cursor.execute("SELECT set_config('app.vocabulary_release', 'on', true)")
        report = {"priority": _apply(cursor, "priority", vocabularies.priority, "TASK_PRIORITIES"),
                  "status": _apply(cursor, "status", vocabularies.status, "TASK_STATUSES")}
        cursor.execute("UPDATE tasks t SET priority_order = p.rank FROM task_priorities p "
                       "WHERE p.value = t.priority AND t.priority_order IS DISTINCT FROM p.rank")
        cursor.execute("UPDATE tasks SET status = status WHERE completed <> (status = %s)", (vocabularies.done,))
        if cursor.rowcount:
            report["status"].append(f"{cursor.rowcount} tasks follow the last state")
        cursor.execute("SELECT set_config('app.vocabulary_release', '', true)")
    return report
