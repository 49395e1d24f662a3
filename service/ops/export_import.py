"""Export and import of all users and tasks as JSON Lines (`flask --app wsgi export|import`).

The file holds one JSON object per line:
- first `{"type": "meta", "format": "todo-service-export", "version": 1, "exported_at", "users",
  "tasks", "next_task_id"}`,
- then every user `{"type": "user", "id", "email", "name", "created_at", "updated_at"}`,
- then every task `{"type": "task", "id", "user_id", "title", "description", "completed",
  "priority", "due_date", "version", "created_at", "updated_at"}`.
Ids, versions and timestamps survive a round trip, and so does the next task id (the identity
sequence is moved past the imported ids and to the exported `next_task_id`, so ids of deleted
tasks are not handed out again). Idempotency keys are not exported: they expire in 24 hours.
"""
import contextlib
from datetime import UTC, datetime

import orjson
import psycopg2

from .. import fields
from .admin_db import admin_transaction, copy_rows, move_task_ids_past, next_task_id

FORMAT = "todo-service-export"
VERSION = 1
USER_COLUMNS = tuple(field.name for field in fields.USER if field.stored)
TASK_COLUMNS = tuple(field.name for field in fields.TASK if field.stored)
CHUNK_ROWS = 10_000


class TransferError(Exception):
    """The file or the database refused the transfer; the message is one line."""


# Export ------------------------------------------------------------------------------------

@contextlib.contextmanager
def _snapshot(db):
    """A read-only REPEATABLE READ transaction over every user's rows: users, tasks and counts
    are read from one consistent snapshot while the service keeps writing."""
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
    """Write every user and task to the text stream `out`; returns (users, tasks) written.

    `on_counts(users, tasks)` is called before streaming (to size a progress bar); `progress(n)`
    after each batch of rows.
    """
    with _snapshot(db) as conn:
        with conn.cursor() as cursor:
            cursor.execute("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM tasks)")
            users, tasks = cursor.fetchone()
            following = next_task_id(cursor)
        if on_counts:
            on_counts(users, tasks)
        meta = {"type": "meta", "format": FORMAT, "version": VERSION,
                "exported_at": datetime.now(UTC), "users": users, "tasks": tasks,
                "next_task_id": following}
        out.write(orjson.dumps(meta).decode() + "\n")
        for kind, columns, order in (("user", USER_COLUMNS, "id"), ("task", TASK_COLUMNS, "id")):
            table = "users" if kind == "user" else "tasks"
            # A server-side cursor streams the rows instead of loading them all; psycopg2 needs
            # WITH HOLD for one on an autocommit connection, even inside our transaction.
            with conn.cursor(name=f"export_{table}", withhold=True) as cursor:
                cursor.itersize = CHUNK_ROWS
                cursor.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}")  # noqa: S608 - constants
                while rows := cursor.fetchmany(CHUNK_ROWS):
                    out.write("".join(
                        orjson.dumps({"type": kind, **dict(zip(columns, row, strict=True))}).decode() + "\n"
                        for row in rows))
                    if progress:
                        progress(len(rows))
    return users, tasks


# Import ------------------------------------------------------------------------------------

def _fail(line, message):
    raise TransferError(f"line {line}: {message}")


def _integer(record, field, line, *, default=None, minimum=1):
    value = record.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _fail(line, f"{field} must be a whole number >= {minimum}")
    return value


def _stored_value(field, record, line, vocabularies):
    """The value of `field` in an export record, checked by the field's own rules (exactly as
    stored: nothing is trimmed or folded). Absent: its default, or NULL for the database to fill
    (timestamps: now(); nullable fields: null)."""
    value = record.get(field.name)
    if value is None:
        if field.type == "instant" or field.nullable:
            return None
        if field.default is not fields.MISSING:
            return field.default
        if field.type == "choice":
            return vocabularies[field.vocabulary].default
        _fail(line, f"{field.name} is required")
    try:
        return field.check_stored(value, vocabularies)
    except fields.FieldError as error:
        _fail(line, f"{field.name} {error}")


def _row(table, record, line, vocabularies):
    return (*(_stored_value(field, record, line, vocabularies) for field in table if field.stored), line)


def parse_lines(stream, vocabularies, progress=None):
    """Yield ("meta"|"user"|"task", row) for each line of the binary `stream`; TransferError
    names the first malformed line. `progress(n)` gets the bytes consumed."""
    for number, raw in enumerate(stream, start=1):
        if progress:
            progress(len(raw))
        if not raw.strip():
            continue
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            _fail(number, f"not valid JSON ({error})")
        if not isinstance(record, dict):
            _fail(number, "must be a JSON object")
        kind = record.get("type")
        if kind == "user":
            yield kind, _row(fields.USER, record, number, vocabularies)
        elif kind == "task":
            yield kind, _row(fields.TASK, record, number, vocabularies)
        elif kind == "meta":
            if record.get("format") != FORMAT or record.get("version") != VERSION:
                _fail(number, f"not a {FORMAT} version {VERSION} file")
            yield kind, (_integer(record, "next_task_id", number, default=1),)
        else:
            _fail(number, 'type must be "meta", "user" or "task"')


def _first_line(cursor, sql):
    cursor.execute(sql)
    found = cursor.fetchone()
    return found[0] if found else None


def _check_references(cursor, merge):
    """Name the first line the database would refuse for a reason we can pin to a line."""
    checks = (
        ("SELECT max(line) FROM import_users GROUP BY id HAVING count(*) > 1 ORDER BY 1 LIMIT 1",
         "user id appears twice in the file"),
        ("SELECT max(line) FROM import_tasks GROUP BY id HAVING count(*) > 1 ORDER BY 1 LIMIT 1",
         "task id appears twice in the file"),
        ("SELECT line FROM import_tasks t WHERE NOT EXISTS (SELECT 1 FROM import_users u WHERE u.id = t.user_id) "
         "AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = t.user_id) ORDER BY line LIMIT 1",
         "the task's user_id names no user in the file or the database"),
    )
    for sql, message in checks:
        line = _first_line(cursor, sql)
        if line is not None:
            _fail(line, message)
    if not merge:
        return
    # Merging keeps existing rows; a task id taken by another user's task cannot be merged.
    line = _first_line(cursor, "SELECT i.line FROM import_tasks i JOIN tasks t ON t.id = i.id "
                               "WHERE t.user_id <> i.user_id ORDER BY i.line LIMIT 1")
    if line is not None:
        _fail(line, "task id already belongs to another user's task in the database")


def _insert_imported(table, columns):
    """INSERT ... SELECT from the temporary table into `table`. Missing timestamps default to
    now(), updated_at to created_at. INSERT does not fire the update triggers, so the file's
    timestamps and versions are kept."""
    filled = {"created_at": "COALESCE(created_at, now())",
              "updated_at": "COALESCE(updated_at, created_at, now())"}
    values = ", ".join(filled.get(column, column) for column in columns)
    return (f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - constants
            f"SELECT {values} FROM import_{table} ORDER BY line")


def import_data(db, stream, vocabularies, merge=False, progress=None):
    """Load a file written by `export_data` in one transaction; returns a dict of counts.

    Refuses a database that already holds users or tasks unless `merge` (then rows whose id
    exists are kept as they are and skipped). Any error leaves the database unchanged.
    """
    try:
        with admin_transaction(db) as cursor:
            cursor.execute("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM tasks)")
            users_before, tasks_before = cursor.fetchone()
            if (users_before or tasks_before) and not merge:
                raise TransferError(
                    f"the database already holds {users_before} users and {tasks_before} tasks; "
                    "import into an empty database, or pass --merge to add the missing rows")
            for table, columns in (("users", USER_COLUMNS), ("tasks", TASK_COLUMNS)):
                # The real table's column types, none of its constraints (the checks come after).
                cursor.execute(f"CREATE TEMP TABLE import_{table} ON COMMIT DROP AS "  # noqa: S608 - constants
                               f"SELECT {', '.join(columns)}, 0 AS line FROM {table} WITH NO DATA")
            next_id = _load(cursor, stream, vocabularies, progress)
            _check_references(cursor, merge)
            conflict = " ON CONFLICT (id) DO NOTHING" if merge else ""  # a constant, not input
            cursor.execute(_insert_imported("users", USER_COLUMNS) + conflict)
            users_added = cursor.rowcount
            cursor.execute(_insert_imported("tasks", TASK_COLUMNS) + conflict)
            tasks_added = cursor.rowcount
            cursor.execute("SELECT (SELECT count(*) FROM import_users), (SELECT count(*) FROM import_tasks)")
            users_read, tasks_read = cursor.fetchone()
            following = move_task_ids_past(cursor, next_id)
    except psycopg2.Error as error:
        detail = error.diag.message_detail or ""
        raise TransferError(f"the database refused the data: {error.diag.message_primary or error}"
                            + (f" ({detail})" if detail else "")) from None
    return {"users": users_added, "tasks": tasks_added,
            "users_skipped": users_read - users_added, "tasks_skipped": tasks_read - tasks_added,
            "next_task_id": following}


def _load(cursor, stream, vocabularies, progress):
    """COPY the parsed file into the temporary tables; returns the file's next_task_id."""
    batches = {"user": [], "task": []}
    tables = {"user": ("import_users", (*USER_COLUMNS, "line")),
              "task": ("import_tasks", (*TASK_COLUMNS, "line"))}
    next_id = 1
    for kind, row in parse_lines(stream, vocabularies, progress):
        if kind == "meta":
            next_id = row[0]
            continue
        batch = batches[kind]
        batch.append(row)
        if len(batch) >= CHUNK_ROWS:
            copy_rows(cursor, *tables[kind], batch)
            batch.clear()
    for kind, batch in batches.items():
        if batch:
            copy_rows(cursor, *tables[kind], batch)
    return next_id
