"""How the service's databases are built from the configuration: the URL (DATABASE_URL, else the
embedded PostgreSQL), the pooled, scoped primary and its read replicas, and the models' proxy
bound to them (create_app calls init_database once)."""
from urllib.parse import urlparse

from psycopg2.extensions import parse_dsn

from .. import instruments
from . import embedded
from .pool import ScopedPostgresqlDatabase, database
from .replicas import Replica, ReplicaSet


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


def make_database(config, url=None, application_name="todo-service"):
    """A pooled, scoped database for `config` (connections open lazily, never at import)."""
    libpq_url, secret = _libpq_url(url or resolve_database_url(config))
    db = ScopedPostgresqlDatabase(
        libpq_url,
        max_connections=config.pool_size,
        timeout=config.pool_timeout or None,
        stale_timeout=config.pool_stale_timeout,
        statement_timeout_ms=config.statement_timeout_ms,
        prepared_statements=config.prepared_statements,
        connect_timeout=config.connect_timeout,
        application_name=application_name,
        **secret,
    )
    _observe(db, config)
    return db


def _observe(db, config):
    """Report the pool's counts to /metrics; log statements slower than SLOW_QUERY_MS (0: none)."""
    instruments.watch_pool(db)
    if config.slow_query_ms > 0:
        db.slow_statement_seconds = config.slow_query_ms / 1000


def init_database(config, url=None):
    """Bind the module's `database` proxy to a new pooled database (the primary, with its read
    replicas when DATABASE_REPLICA_URLS lists some) and return it."""
    url = url or resolve_database_url(config)
    db = make_database(config, url)
    if config.replica_urls:
        replicas = [Replica(f"replica-{n}", make_database(config, replica_url, "todo-service-replica"),
                            *_libpq_url(replica_url))
                    for n, replica_url in enumerate(config.replica_urls, 1)]
        db.replicas = ReplicaSet(*_libpq_url(url), replicas, config)
    database.initialize(db)
    return db


