"""The database layer: the pooled, user-scoped connection (pool.py), its watchdog, the compiled
query cache, the Peewee models and the embedded PostgreSQL used when DATABASE_URL is unset; read
replicas (replicas.py: their monitors; write_positions.py: read-your-writes; routing.py: which
server a request's statements go to)."""
from .pool import (
    PROBE_DEADLINE_SECONDS,
    database,
    init_database,
    make_database,
    resolve_database_url,
)

__all__ = ["PROBE_DEADLINE_SECONDS", "database", "init_database", "make_database",
           "resolve_database_url"]
