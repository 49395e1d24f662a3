"""The database: one pooled PostgreSQL connection per request, scoped to the request's user.

`database` is a proxy, unbound at import; `init_database(config)` binds it. Every statement a
request sends carries its scope in the same round trip: outside a transaction the statement is
prefixed with `SELECT set_config(...)` in one simple-query message (PostgreSQL runs such a
message as one implicit transaction, so a transaction-local setting covers the statement and
never outlives it); inside `atomic()` the settings ride along with `BEGIN`. Row-level security
policies read `app.user_id`, so a query that forgot its owner condition still sees one user only.
"""
import select
import threading
import time
from urllib.parse import urlparse

import peewee
from peewee import DatabaseProxy
from playhouse.pool import PooledPostgresqlDatabase
from psycopg2.extensions import parse_dsn

from . import embedded

database = DatabaseProxy()

# The settings a request's statements run under; transaction-local (`true`), so they end with
# the statement or transaction and cannot leak to the next user of a pooled connection.
_SCOPE_SQL = ("SELECT set_config('app.user_id', %s, true), "
              "set_config('app.bypass_rls', %s, true), "
              "set_config('statement_timeout', %s, true), "
              "set_config('TimeZone', 'UTC', true); ")


class ScopedPostgresqlDatabase(PooledPostgresqlDatabase):
    """A pooled PostgreSQL database whose statements run under the bound user's scope."""

    def __init__(self, *args, statement_timeout_ms=5000, probe_idle_after=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self._scope = threading.local()
        self._statement_timeout = str(int(statement_timeout_ms))
        self._probe_idle_after = probe_idle_after
        self._returned_at = {}

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

    def execute_sql(self, sql, params=None):
        scope = self.scope_params()
        if scope is not None and not self.in_transaction():
            sql = _SCOPE_SQL + sql
            params = scope + tuple(params or ())
        return super().execute_sql(sql, params)

    def begin(self, isolation_level=None):
        scope = self.scope_params()
        if scope is None:
            return super().begin(isolation_level)
        isolation_level = isolation_level or self._isolation_level
        begin = "BEGIN"
        if isolation_level:
            begin += " ISOLATION LEVEL " + self._adapter.isolation_level_str(isolation_level)
        with peewee.__exception_wrapper__:  # map driver errors to peewee's, as begin() does
            self.cursor().execute(f"{begin}; {_SCOPE_SQL}", scope)

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
        return super()._is_closed(conn)

    def _close(self, conn, close_conn=False):
        self._returned_at[id(conn)] = time.monotonic()
        return super()._close(conn, close_conn)

    def _close_raw(self, conn):
        self._returned_at.pop(id(conn), None)
        return super()._close_raw(conn)


def _readable(conn):
    """True when the connection's socket has data (or EOF) waiting, without blocking."""
    try:
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return True


def resolve_database_url(config):
    """The URL this process uses: DATABASE_URL, or the embedded server's when it is unset."""
    if config.database_url:
        return config.database_url
    return embedded.database_url(config.data_dir)


def _libpq_url(url):
    """`url` spelled for libpq, and its password apart (as a connect keyword), so that whatever
    prints the database's name (pw_migrate prints "Migrating <database>") never shows it."""
    # postgres:// (Heroku) and postgresql+pool:// (playhouse.db_url) are spelled
    # postgresql:// for libpq; the pool settings come from the environment instead.
    parsed = urlparse(url)._replace(scheme="postgresql")
    if not parsed.password:
        return parsed.geturl(), {}
    password = parse_dsn(parsed.geturl())["password"]  # percent-decoded, as libpq reads it
    userinfo, _, hostinfo = parsed.netloc.rpartition("@")
    netloc = f"{userinfo.split(':', 1)[0]}@{hostinfo}"
    return parsed._replace(netloc=netloc).geturl(), {"password": password}


def make_database(config, url=None):
    """A pooled, scoped database for `config` (connections open lazily, never at import)."""
    libpq_url, secret = _libpq_url(url or resolve_database_url(config))
    return ScopedPostgresqlDatabase(
        libpq_url,
        max_connections=config.pool_size,
        timeout=config.pool_timeout or None,
        stale_timeout=config.pool_stale_timeout,
        statement_timeout_ms=config.statement_timeout_ms,
        connect_timeout=config.connect_timeout,
        application_name="todo-service",
        **secret,
    )


def init_database(config, url=None):
    """Bind the module's `database` proxy to a new pooled database and return it."""
    db = make_database(config, url)
    database.initialize(db)
    return db


def close_connection(_exc=None):
    """Return this request's connection to the pool and drop its scope (teardown)."""
    if database.obj is None:
        return
    database.obj.unbind()
    if not database.is_closed():
        database.close()
