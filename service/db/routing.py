"""The models' database (`db.database`), routed per request: statements go to the primary, or,
for a safe request a read replica may serve, to that replica (for the request's thread only).

A replica that fails at checkout hands the request to the primary here; one that fails during
the view is handed over by the API's retry (api/identity.py), which then redoes the read.
"""
import threading

from peewee import DatabaseProxy

from .replicas import POSITION_SQL, UNREACHABLE


class RoutedDatabase(DatabaseProxy):
    """The models' database: the primary `initialize` binds, or for a request that a replica
    serves, that replica (this thread only, from `open_for` to `release`)."""

    __slots__ = ("_primary", "_routes")

    def __init__(self):
        self._routes = threading.local()
        super().__init__()

    def __setattr__(self, name, value):  # Proxy allows only the names of its own __slots__
        object.__setattr__(self, name, value)

    @property
    def obj(self):
        """The database this thread's statements go to."""
        replica = getattr(self._routes, "db", None)
        return self._primary if replica is None else replica

    @obj.setter
    def obj(self, db):
        self._primary = db

    def on_replica(self):
        """True while this thread's request is served by a replica."""
        return getattr(self._routes, "db", None) is not None

    def open_for(self, user_id, read_only=False):
        """Scope this thread to `user_id` and check out its connection: from a fresh enough
        replica when `read_only` and one serves the user, else from the primary."""
        replicas = self._primary.replicas
        replica = replicas.pick(user_id) if read_only and replicas else None
        if replica is None:
            return self._primary.open_for(user_id)
        self._routes.db = replica.db
        try:
            return replica.db.open_for(user_id)
        except UNREACHABLE:
            return self.fall_back_to_primary()

    def fall_back_to_primary(self):
        """A replica failed this thread's request: skip it until its monitor reaches it again,
        and move the request to the primary (its caller redoes the read there)."""
        replica_db, self._routes.db = self._routes.db, None
        user_id = replica_db.scope_params()[0]
        self._primary.replicas.failed(replica_db)
        try:
            replica_db.release()
        except UNREACHABLE:
            pass
        self._primary.open_for(user_id)

    def release(self, wrote=False):
        """End of a request: after a write, note the primary's WAL position for the user (one
        round trip, only when replicas are configured), then give the connection back."""
        db, self._routes.db = self.obj, None
        scope, replicas = db.scope_params(), db.replicas
        try:
            if wrote and replicas is not None and scope is not None:
                try:
                    replicas.wrote(scope[0], db.execute_sql(POSITION_SQL).fetchone()[0])
                except UNREACHABLE:
                    replicas.position_lost(scope[0])
        finally:
            db.release()
