"""Operator-side database plumbing shared by the CLI commands (seed, seed-bulk, export, import).

Operator commands work on every user's rows, so they run in one transaction with row-level
security deliberately lifted (`bind_admin`). Bulk rows travel by COPY into a temporary table and
then `INSERT ... SELECT` into the real one: PostgreSQL refuses `COPY FROM` into a table with row-
level security ("COPY FROM not supported with row-level security"), and the tables FORCE it, but
an INSERT runs under the policies, which the admin scope satisfies.
"""
import contextlib
import io


@contextlib.contextmanager
def admin_transaction(db):
    """Yield a cursor inside one transaction that sees and writes every user's rows.

    Everything commits together or, on any exception, nothing does.
    """
    db.bind_admin()
    try:
        with db.connection_context(), db.atomic():
            yield db.cursor()
    finally:
        db.unbind()


def copy_value(value):
    """One value in COPY's text format (NULL as \\N; backslash, tab and newlines escaped)."""
    if value is None:
        return r"\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (text.replace("\\", "\\\\").replace("\t", "\\t")
                .replace("\n", "\\n").replace("\r", "\\r"))
    return text


def copy_lines(cursor, table, columns, lines):
    """COPY already formatted text lines (tab-separated, newline-terminated) into `table`."""
    buffer = io.StringIO("".join(lines))
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)


def copy_rows(cursor, table, columns, rows):
    """COPY tuples of Python values into `table`."""
    copy_lines(cursor, table, columns,
               ("\t".join(copy_value(v) for v in row) + "\n" for row in rows))


def _sequence(cursor, table):
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,))
    return cursor.fetchone()[0]


def next_id(cursor, table="tasks"):
    """The id the next row of `table` will get (its identity sequence's next value)."""
    sequence = _sequence(cursor, table)
    # The name comes from the catalog, not from input.
    query = f"SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM {sequence}"  # noqa: S608
    cursor.execute(query)
    return cursor.fetchone()[0]


def move_ids_past(cursor, table="tasks", at_least=1):
    """Make the next id of `table` at least `at_least` and past every existing id, never moving
    it backwards (ids are never reused). Returns the next id."""
    cursor.execute(f"SELECT COALESCE(max(id), 0) FROM {table}")  # noqa: S608 - a constant table name
    target = max(at_least, cursor.fetchone()[0] + 1, next_id(cursor, table))
    # setval(seq, n, true): the next nextval() is n + 1; (1, false): it is 1.
    cursor.execute("SELECT setval(%s, %s, %s)",
                   (_sequence(cursor, table), max(target - 1, 1), target > 1))
    return target
