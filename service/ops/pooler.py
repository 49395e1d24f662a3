"""The doctor's pooler probe: is there a transaction pooler (PgBouncer, Neon's pooled endpoint)
between the service and PostgreSQL, and does the service's way of scoping statements hold there?

Transaction pooling shows as two client connections, both open, reaching the same backend
(`pg_backend_pid()`): without a pooler, or with session pooling, a client connection keeps its
own backend for life. Statement pooling refuses multi-statement transactions, which the
service needs.
"""
import contextlib

import psycopg2


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def probe(db):
    """(status, detail) of the pooler between `db` and PostgreSQL."""
    dsn, params = db.database, dict(db.connect_params)
    params.pop("application_name", None)
    try:
        with contextlib.ExitStack() as stack:
            first, second = (stack.enter_context(contextlib.closing(
                psycopg2.connect(dsn, application_name="todo-doctor", **params))) for _ in range(2))
            return _pooling_mode(first, second)
    except psycopg2.Error as error:
        return ("fail", f"probing with two connections failed: {_first_line(error)}")


def _pooling_mode(first, second):
    for conn in (first, second):
        conn.autocommit = True
    seen = ({}, {})
    for _ in range(6):
        for conn, pids in zip((first, second), seen, strict=True):
            with conn.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                pids[cur.fetchone()[0]] = True
    with first.cursor() as cur:
        # The service's own pattern: the scope set for one statement (its message) only.
        cur.execute("SELECT set_config('app.user_id', 'doctor-probe', true); "
                    "SELECT current_setting('app.user_id', true)")
        scoped = cur.fetchone()[0]
        cur.execute("SELECT coalesce(current_setting('app.user_id', true), '')")
        after = cur.fetchone()[0]
    if scoped != "doctor-probe" or after != "":
        return ("fail", f"a statement's scope did not hold or leaked (saw {scoped!r}, then {after!r})")
    try:
        first.autocommit = False
        with first.cursor() as cur:
            cur.execute("SELECT 1")
            cur.execute("SELECT 2")
        first.rollback()
    except psycopg2.Error as error:
        return ("fail", f"multi-statement transactions refused ({_first_line(error)}): "
                                       "PgBouncer in statement mode; use pool_mode = transaction")
    if set(seen[0]) & set(seen[1]) or len(seen[0]) > 1 or len(seen[1]) > 1:
        return ("pass", "transaction pooling detected (PgBouncer or alike: open client "
                                       "connections shared backends); fine: the service's scope rides with "
                                       "each statement and nothing outlives its transaction")
    return ("pass", "no transaction pooler (each client connection keeps its own backend: "
                                   "a direct connection or session pooling)")
