"""Import of an export file (`flask --app wsgi import`; the format is in export_file.py).

Every line is checked by the field table's own rules (service/fields.py), exactly as stored:
nothing is trimmed or folded. Rows travel by COPY into temporary tables (the real ones FORCE
row-level security, which COPY refuses), are checked against each other and the database, then
inserted in one transaction: a bad line stops the import with its number and changes nothing.
"""
import orjson
import psycopg2

from .. import fields
from .admin_db import admin_transaction, copy_rows, move_ids_past
from .export_file import FORMAT, KINDS, READABLE_VERSIONS, TransferError

CHUNK_ROWS = 10_000
COLUMNS = {kind: columns for kind, _table, columns in KINDS}
TABLES = {kind: table for kind, table, _columns in KINDS}
TABLE_FIELDS = {"user": fields.USER, "tag": fields.TAG, "task": fields.TASK}


def _fail(line, message):
    raise TransferError(f"line {line}: {message}")


def _integer(record, field, line, *, default=None, minimum=1):
    value = record.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _fail(line, f"{field} must be a whole number >= {minimum}")
    return value


def _stored_value(field, record, line, vocabularies):
    """The value of `field` in an export record, checked by the field's own rules. Absent: its
    default, or NULL for the database to fill (timestamps: now(); nullable fields: null)."""
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


def _row(kind, record, line, vocabularies):
    return (*(_stored_value(field, record, line, vocabularies) for field in TABLE_FIELDS[kind] if field.stored),
            line)


def _links(record, line):
    """The (task id, tag id, line) links of a task record's `tag_ids`."""
    tag_ids = record.get("tag_ids", [])
    if not isinstance(tag_ids, list) or len(tag_ids) > fields.MAX_TAGS_PER_TASK or any(
            isinstance(tag_id, bool) or not isinstance(tag_id, int) or tag_id < 1 for tag_id in tag_ids):
        _fail(line, f"tag_ids must be a list of at most {fields.MAX_TAGS_PER_TASK} tag ids")
    return [(record["id"], tag_id, line) for tag_id in dict.fromkeys(tag_ids)]


def parse_lines(stream, vocabularies, progress=None):
    """Yield ("meta"|"user"|"tag"|"task"|"link", row) for each line of the binary `stream`;
    TransferError names the first malformed line. `progress(n)` gets the bytes consumed."""
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
        if kind in COLUMNS:
            yield kind, _row(kind, record, number, vocabularies)
            if kind == "task":
                for link in _links(record, number):
                    yield "link", link
        elif kind == "meta":
            if record.get("format") != FORMAT or record.get("version") not in READABLE_VERSIONS:
                _fail(number, f"not a {FORMAT} file of version {' or '.join(map(str, READABLE_VERSIONS))}")
            yield kind, (_integer(record, "next_task_id", number, default=1),
                         _integer(record, "next_tag_id", number, default=1))
        else:
            _fail(number, 'type must be "meta", "user", "tag" or "task"')


# The first line the database would refuse for a reason we can pin to a line.
CHECKS = (
    ("SELECT max(line) FROM import_users GROUP BY id HAVING count(*) > 1 ORDER BY 1 LIMIT 1",
     "user id appears twice in the file"),
    ("SELECT max(line) FROM import_tags GROUP BY id HAVING count(*) > 1 ORDER BY 1 LIMIT 1",
     "tag id appears twice in the file"),
    ("SELECT max(line) FROM import_tasks GROUP BY id HAVING count(*) > 1 ORDER BY 1 LIMIT 1",
     "task id appears twice in the file"),
    ("SELECT line FROM import_tags t WHERE NOT EXISTS (SELECT 1 FROM import_users u WHERE u.id = t.user_id) "
     "AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = t.user_id) ORDER BY line LIMIT 1",
     "the tag's user_id names no user in the file or the database"),
    ("SELECT max(line) FROM import_tags GROUP BY user_id, lower(name) HAVING count(*) > 1 ORDER BY 1 LIMIT 1",
     "a tag of that user has the same name (names ignore case)"),
    ("SELECT line FROM import_tasks t WHERE NOT EXISTS (SELECT 1 FROM import_users u WHERE u.id = t.user_id) "
     "AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = t.user_id) ORDER BY line LIMIT 1",
     "the task's user_id names no user in the file or the database"),
    ("SELECT l.line FROM import_links l JOIN import_tasks t ON t.id = l.task_id WHERE NOT EXISTS "
     "(SELECT 1 FROM import_tags g WHERE g.id = l.tag_id AND g.user_id = t.user_id) AND NOT EXISTS "
     "(SELECT 1 FROM tags g WHERE g.id = l.tag_id AND g.user_id = t.user_id) ORDER BY l.line LIMIT 1",
     "tag_ids names a tag that is not the task's user's"),
)
MERGE_CHECKS = (  # merging keeps existing rows; an id held by another user's row cannot be merged
    ("SELECT i.line FROM import_tasks i JOIN tasks t ON t.id = i.id WHERE t.user_id <> i.user_id "
     "ORDER BY i.line LIMIT 1", "task id already belongs to another user's task in the database"),
    ("SELECT i.line FROM import_tags i JOIN tags t ON t.id = i.id WHERE t.user_id <> i.user_id "
     "ORDER BY i.line LIMIT 1", "tag id already belongs to another user's tag in the database"),
)


def _check(cursor, merge):
    for sql, message in CHECKS + (MERGE_CHECKS if merge else ()):
        cursor.execute(sql)
        found = cursor.fetchone()
        if found:
            _fail(found[0], message)


def _insert_imported(table, columns, conflict):
    """INSERT ... SELECT from the temporary table into `table`. Missing timestamps default to
    now(), updated_at to created_at; a completed task without completed_at (a version 1 file)
    was completed at its last change, as migration 005 dates the completed tasks it finds (else
    the database would date them to the import). INSERT does not fire the update triggers, so
    the file's timestamps and versions are kept."""
    filled = {"created_at": "COALESCE(created_at, now())",
              "updated_at": "COALESCE(updated_at, created_at, now())",
              "completed_at": "COALESCE(completed_at, CASE WHEN completed THEN COALESCE(updated_at, created_at) END)"}
    values = ", ".join(filled.get(column, column) for column in columns)
    return (f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - constants
            f"SELECT {values} FROM import_{table} ORDER BY line" + conflict)


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
            for _kind, table, columns in KINDS:
                # The real table's column types, none of its constraints (the checks come after).
                cursor.execute(f"CREATE TEMP TABLE import_{table} ON COMMIT DROP AS "  # noqa: S608 - constants
                               f"SELECT {', '.join(columns)}, 0 AS line FROM {table} WITH NO DATA")
            cursor.execute("CREATE TEMP TABLE import_links (task_id bigint, tag_id bigint, line integer) "
                           "ON COMMIT DROP")
            next_task, next_tag = _load(cursor, stream, vocabularies, progress)
            _check(cursor, merge)
            conflict = " ON CONFLICT (id) DO NOTHING" if merge else ""  # a constant, not input
            added = {}
            for kind, table, columns in KINDS:
                cursor.execute(_insert_imported(table, columns, conflict))
                added[kind] = cursor.rowcount
            cursor.execute("INSERT INTO task_tags (user_id, task_id, tag_id) SELECT t.user_id, l.task_id, l.tag_id "
                           "FROM import_links l JOIN import_tasks t ON t.id = l.task_id ORDER BY l.line "
                           "ON CONFLICT DO NOTHING")
            cursor.execute("SELECT (SELECT count(*) FROM import_users), (SELECT count(*) FROM import_tasks)")
            users_read, tasks_read = cursor.fetchone()
            following = move_ids_past(cursor, "tasks", next_task)
            move_ids_past(cursor, "tags", next_tag)
    except psycopg2.Error as error:
        detail = error.diag.message_detail or ""
        raise TransferError(f"the database refused the data: {error.diag.message_primary or error}"
                            + (f" ({detail})" if detail else "")) from None
    return {"users": added["user"], "tasks": added["task"], "tags": added["tag"],
            "users_skipped": users_read - added["user"], "tasks_skipped": tasks_read - added["task"],
            "next_task_id": following}


def _load(cursor, stream, vocabularies, progress):
    """COPY the parsed file into the temporary tables; returns the file's next task and tag ids."""
    tables = {kind: (f"import_{TABLES[kind]}", (*COLUMNS[kind], "line")) for kind in COLUMNS}
    tables["link"] = ("import_links", ("task_id", "tag_id", "line"))
    batches = {kind: [] for kind in tables}
    next_ids = (1, 1)
    for kind, row in parse_lines(stream, vocabularies, progress):
        if kind == "meta":
            next_ids = row
            continue
        batch = batches[kind]
        batch.append(row)
        if len(batch) >= CHUNK_ROWS:
            copy_rows(cursor, *tables[kind], batch)
            batch.clear()
    for kind, batch in batches.items():
        if batch:
            copy_rows(cursor, *tables[kind], batch)
    return next_ids
