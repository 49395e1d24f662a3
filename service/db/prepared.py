"""Server-side prepared statements for the hot statements, so PostgreSQL plans each once per
connection instead of once per request.

A request's statement is small to run and costly to plan: the task JSON, its tags subquery, the
row-level-security policies and the guard of a completion take PostgreSQL 0.2-0.4 ms to plan
and about as much to run. The query cache (query_cache.py) sends the same SQL text for every
request of a shape; here each such text is prepared on a connection the first time it is sent
there (`PREPARE ... ; EXECUTE ...` in the same message: no extra round trip) and executed by
name afterwards. A statement's name is a hash of its SQL text, so a name means the same SQL on
every connection of every process, which keeps a pooler that shares server connections between
clients (PgBouncer in transaction mode) from ever running another statement than the one asked
for; when such a pooler loses a statement (PostgreSQL: "does not exist"), this process stops
preparing and runs the statement as it is. DATABASE_PREPARED_STATEMENTS=off turns it off.
Inside an explicit transaction statements run as they are (a failed EXECUTE would abort it).
"""
import functools
import hashlib
import logging
import re

log = logging.getLogger("service.db")

UNKNOWN_STATEMENT = "26000"  # invalid_sql_statement_name: the connection does not have it
ALREADY_PREPARED = "42P05"  # duplicate_prepared_statement: it has it (same name, same SQL)
_PLACEHOLDER = re.compile(r"%%|%s")


@functools.lru_cache(maxsize=1024)
def _named(sql):
    """(name, `PREPARE name AS ...` with $1..$n, the number of parameters) for `sql`, whose
    parameters are psycopg2's %s (a literal % written %%)."""
    count = 0

    def number(match):
        nonlocal count
        if match[0] == "%%":
            return "%%"  # still formatted by psycopg2 with the EXECUTE's parameters
        count += 1
        return f"${count}"

    numbered = _PLACEHOLDER.sub(number, sql)
    name = "todo_" + hashlib.sha1(sql.encode(), usedforsecurity=False).hexdigest()[:24]
    return name, f"PREPARE {name} AS {numbered}; ", count


class PreparedStatements:
    """The statements prepared on each connection of one pool."""

    def __init__(self, enabled=True):
        self.enabled = enabled
        self._on = {}  # id(connection) -> names prepared there

    def statement(self, conn, sql, params):
        """(sql, params) to send for `sql` on `conn`: an EXECUTE, preceded by its PREPARE the
        first time on this connection; and the name to note once the message succeeded."""
        name, prepare, count = _named(sql)
        execute = f"EXECUTE {name}({', '.join(['%s'] * count)})" if count else f"EXECUTE {name}"
        if name in self._on.get(id(conn), ()):
            return execute, params, None
        return prepare + execute, params, name

    def prepared(self, conn, name):
        """`name` is prepared on `conn` now."""
        self._on.setdefault(id(conn), set()).add(name)

    def forget(self, conn):
        """`conn` is closed: its statements went with it."""
        self._on.pop(id(conn), None)

    def failed(self, conn, error, name):
        """What to do after `error` (a database error of a message this module rewrote): "plain"
        to run the statement as it is from now on, "again" to run it again by name, else None."""
        code = getattr(getattr(error, "orig", None), "pgcode", None)
        if code == UNKNOWN_STATEMENT:
            self.enabled = False
            log.warning("prepared statements are lost between requests (a pooler in transaction mode?): "
                        "this process runs its statements unprepared from now on")
            return "plain"
        if code == ALREADY_PREPARED and name is not None:
            self.prepared(conn, name)
            return "again"
        return None
