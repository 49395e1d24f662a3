"""The database: one pooled PostgreSQL connection per request, scoped to the request's user.

`database` is a proxy, unbound at import; `init_database(config)` binds it. Every statement a
request sends carries its scope in the same round trip: outside a transaction the statement is
prefixed with `SELECT set_config(...)` in one simple-query message (PostgreSQL runs such a
message as one implicit transaction, so a transaction-local setting covers the statement and
never outlives it); inside `atomic()` the settings ride along with `BEGIN`. Row-level security
policies read `app.user_id`, so a query that forgot its owner condition still sees one user only.
"""
import logging
import re
import select
import threading
import time

import peewee
import psycopg2
from flask import g, has_request_context, request
from playhouse.pool import MaxConnectionsExceeded, PooledPostgresqlDatabase

from .. import instruments
from .prepared import PreparedStatements
from .routing import RoutedDatabase
from .watchdog import WATCHDOG

database = RoutedDatabase()

# The settings a request's statements run under; transaction-local (`true`), so they end with
# the statement or transaction and cannot leak to the next user of a pooled connection.
_SCOPE_SQL = ("SELECT set_config('app.user_id', %s, true), "
              "set_config('app.bypass_rls', %s, true), "
              "set_config('statement_timeout', %s, true), "
              "set_config('TimeZone', 'UTC', true); ")


PROBE_DEADLINE_SECONDS = 2.0
log = logging.getLogger("service.db")


class ScopedPostgresqlDatabase(PooledPostgresqlDatabase):
    """A pooled PostgreSQL database whose statements run under the bound user's scope."""

    slow_statement_seconds = float("inf")  # make_database sets it from SLOW_QUERY_MS

    def __init__(self, *args, statement_timeout_ms=5000, probe_idle_after=1.0, prepared_statements=True,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.prepared = PreparedStatements(prepared_statements)
        self._scope = threading.local()
        self._statement_timeout = str(int(statement_timeout_ms))
        self._probe_idle_after = probe_idle_after
        self._returned_at = {}
        self._read_only = set()  # ids of connections to a server that refused a write
        self._waiting = set()  # idents of the threads waiting for a connection (metrics)
        self.watchdog = WATCHDOG
        self.replicas = None  # a ReplicaSet when read replicas are configured (primary only)

    # Deadlines -------------------------------------------------------------------------------
    def call_deadline(self):
        """Seconds this thread's next call may take before the watchdog ends it, or None (no
        limit). The statement timeout plus room for the round trip and the result's transfer.
        Calls of a web request always have one (also unscoped ones such as /readyz's); outside
        requests (migrations, operator commands) only a bound user's calls do."""
        scope = self.scope_params()
        if scope is not None:
            timeout_ms = int(scope[2])
        elif has_request_context():
            timeout_ms = int(self._statement_timeout)
        else:
            return None
        return None if timeout_ms <= 0 else timeout_ms / 1000 * 1.5 + 1.0

    def _watched(self, call, *args):
        seconds = self.call_deadline()
        if seconds is None:
            return call(*args)
        self.watchdog.watch(self.connection(), seconds)
        try:
            return call(*args)
        finally:
            self.watchdog.done()

    # Scope -----------------------------------------------------------------------------------
    def bind_user(self, user_id):
        """Scope the statements of this thread to `user_id` (row-level security)."""
        self._scope.params = (user_id, "off", self._statement_timeout)

    def bind_admin(self):
        """Lift row-level security for this thread: migrations and operator commands only."""
        self._scope.params = ("", "on", "0")

    def unbind(self):
        """Forget this thread's scope (end of request)."""
        self._scope.params = None

    def scope_params(self):
        """The (user_id, bypass, statement_timeout) bound to this thread, or None."""
        return getattr(self._scope, "params", None)

    def open_for(self, user_id):
        """The request's one step into the database: scope this thread's statements to `user_id`
        and check out its pooled connection."""
        self.bind_user(user_id)
        self.connect(reuse_if_open=True)

    def release(self):
        """The end of a request: drop the scope and return the connection to the pool."""
        self.unbind()
        if not self.is_closed():
            self.close()

    def execute_sql(self, sql, params=None, prepare=False):
        """Send `sql` under the bound scope; `prepare`: a statement of the query cache, run as a
        server-side prepared statement (prepared.py) outside explicit transactions."""
        if not params and "%" in sql and "%" in sql.replace("%%", ""):
            # Peewee hands psycopg2 every statement with a parameter tuple (empty or not, and
            # under a scope never empty), and psycopg2 then reads each % as a placeholder.
            raise ValueError("a literal % in SQL sent through the database must be written %% "
                             "(psycopg2 formats every statement)")
        if prepare and self.prepared.enabled and not self.in_transaction():
            return self._execute_prepared(sql, params)
        return self._send(sql, params)

    def _execute_prepared(self, sql, params):
        conn = self.connection()
        text, values, name = self.prepared.statement(conn, sql, params)
        try:
            cursor = self._send(text, values, shape=sql)
        except peewee.DatabaseError as error:
            then = self.prepared.failed(conn, error, name)
            if then == "plain":
                return self._send(sql, params)
            if then == "again":
                return self._execute_prepared(sql, params)
            raise
        if name is not None:
            self.prepared.prepared(conn, name)
        return cursor

    def _send(self, sql, params, shape=None):
        shape, scope = shape or sql, self.scope_params()
        if scope is not None and not self.in_transaction():
            sql = _SCOPE_SQL + sql
            params = scope + tuple(params or ())
        started = time.perf_counter()
        try:
            return self._watched(super().execute_sql, sql, params)
        except peewee.InternalError as error:
            if not isinstance(getattr(error, "orig", None), psycopg2.errors.ReadOnlySqlTransaction):
                raise
            # The server turned read-only (a switchover's first step): neither this connection
            # nor the idle ones (same server) may serve a write again. New ones connect afresh,
            # and target_session_attrs=read-write finds the new primary; meanwhile: 503.
            self._read_only.add(id(self.connection()))
            self.close_idle()
            raise peewee.OperationalError("the database refused a write (read-only)") from error
        finally:
            # Two clock reads and a comparison for a fast statement; only a slow one costs more.
            elapsed = time.perf_counter() - started
            if elapsed > self.slow_statement_seconds:
                _log_slow_statement(shape, elapsed)

    def commit(self):
        return self._watched(super().commit)

    def rollback(self):
        return self._watched(super().rollback)

    def begin(self, isolation_level=None):
        scope = self.scope_params()
        if scope is None:
            return super().begin(isolation_level)
        isolation_level = isolation_level or self._isolation_level
        begin = "BEGIN"
        if isolation_level:
            begin += " ISOLATION LEVEL " + self._adapter.isolation_level_str(isolation_level)
        with peewee.__exception_wrapper__:  # map driver errors to peewee's, as begin() does
            self._watched(self.cursor().execute, f"{begin}; {_SCOPE_SQL}", scope)

    # Pool ------------------------------------------------------------------------------------
    def _is_closed(self, conn):
        # The pool's liveness probe costs a round trip per checkout. A connection returned
        # moments ago in a good state is alive; probe only those idle longer than that.
        returned_at = self._returned_at.get(id(conn))
        if conn.closed:
            return True
        if returned_at is not None and time.monotonic() - returned_at < self._probe_idle_after:
            if self._adapter.txn_status(conn) == self._adapter.txn_unknown:
                return True
            # A server that went away (restart, failover, terminated backend) leaves the socket
            # readable: its goodbye message or EOF. A healthy idle connection has nothing to
            # say, so one poll (no round trip) tells them apart; when in doubt, probe.
            if not _readable(conn):
                return False
        return self._guarded(super()._is_closed, conn)

    def _can_reuse(self, conn):
        # Check-in rolls back a transaction left open: a round trip the watchdog must cover too.
        # An idle connection (the usual case) needs no round trip, so no watch.
        if id(conn) in self._read_only:
            return False
        if self._adapter.txn_status(conn) == self._adapter.txn_idle:
            return True
        return self._guarded(super()._can_reuse, conn)

    def _guarded(self, check, conn):
        # The pool's own round trips (liveness probe, check-in rollback) run under its lock:
        # one hanging there would stall every thread's checkout, so they get a short deadline.
        self.watchdog.watch(conn, PROBE_DEADLINE_SECONDS)
        try:
            return check(conn)
        finally:
            self.watchdog.done()

    def _close(self, conn, close_conn=False):
        self._returned_at[id(conn)] = time.monotonic()
        return super()._close(conn, close_conn)

    def _close_raw(self, conn):
        self._returned_at.pop(id(conn), None)
        self.prepared.forget(conn)
        self._read_only.discard(id(conn))
        return super()._close_raw(conn)

    def close_all(self):
        """Close every pooled connection, and the replicas' with their monitors."""
        if self.replicas is not None:
            self.replicas.close()
        return super().close_all()

    # Metrics: connections in use and threads waiting for one ------------------------------
    def pool_counts(self):
        """(connections checked out, threads waiting for one), read by the metrics sampler."""
        return len(self._in_use), len(self._waiting)

    def connect(self, reuse_if_open=False):
        try:
            return super().connect(reuse_if_open)
        finally:
            if self._waiting:  # empty unless the pool ran out: one check on the usual path
                self._waiting.discard(threading.get_ident())

    def _connect(self):
        try:
            return super()._connect()
        except MaxConnectionsExceeded:
            self._waiting.add(threading.get_ident())  # the pool (with a timeout) waits and retries
            raise


_WHITESPACE = re.compile(r"\s+")
SLOW_SHAPE_MAX = 1000


def _log_slow_statement(shape, seconds):
    """One warning line for a slow statement: its route, duration and SQL text. Peewee sends
    values as parameters, so the text holds placeholders (%s), never a value or a token."""
    instruments.SLOW_STATEMENTS.inc()
    route = request_id = None
    if has_request_context():
        route = request.url_rule.rule if request.url_rule else instruments.UNMATCHED
        request_id = g.get("request_id")
    text = _WHITESPACE.sub(" ", shape).strip()
    if len(text) > SLOW_SHAPE_MAX:
        text = text[:SLOW_SHAPE_MAX] + "..."
    log.warning("slow statement: %.0f ms, route %s, request %s: %s", seconds * 1000, route or "-",
                request_id or "-", text)


def _readable(conn):
    """True when the connection's socket has data (or EOF) waiting, without blocking."""
    try:
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return True
