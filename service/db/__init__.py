"""The database layer: the pooled, user-scoped connection (pool.py, built by connect.py), its watchdog, the compiled
query cache, the Peewee models and the embedded PostgreSQL used when DATABASE_URL is unset; read
replicas (replicas.py: their monitors; write_positions.py: read-your-writes; routing.py: which
server a request's statements go to)."""
from .connect import init_database, make_database, resolve_database_url
from .pool import PROBE_DEADLINE_SECONDS, database

__all__ = ["PROBE_DEADLINE_SECONDS", "database", "init_database", "make_database",
           "resolve_database_url"]
