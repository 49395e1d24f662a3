"""Read replicas: safe requests served by PostgreSQL's own streaming standbys, never missing the
caller's writes and never staler than DATABASE_REPLICA_MAX_LAG_MS for anyone.

- Read-your-writes: after a request that wrote, the primary's WAL position is stored in
  `WritePositions` (write_positions.py), a table shared by the host's worker processes; a
  replica serves a user only once it has replayed past that user's position.
- Bounded staleness: a monitor thread per server polls the primary's WAL position and each
  replica's replay position every POLL_SECONDS; a replica is as stale as the oldest primary
  position it has not replayed. An unreachable, lagging or promoted replica is skipped.
routing.py sends each request's statements where `ReplicaSet.pick` says. See docs/scaling.md for
the design and its limits (other hosts' writes: remote_apply).
"""
import functools
import itertools
import logging
import os
import threading
import time
from collections import deque

import psycopg2
from peewee import DatabaseError, InterfaceError
from playhouse.pool import MaxConnectionsExceeded

from .watchdog import WATCHDOG
from .write_positions import WritePositions, parse_lsn

log = logging.getLogger("service.replicas")

POLL_SECONDS = 0.05
RETRY_SECONDS = 0.25  # after a failed poll
POLL_DEADLINE_SECONDS = 1.0
# After a write: a WAL position at or past its commit. A commit is flushed before it returns
# unless synchronous_commit is off; then only the insert position is sure to cover it.
POSITION_SQL = ("SELECT CASE current_setting('synchronous_commit') WHEN 'off' "
                "THEN pg_current_wal_insert_lsn() ELSE pg_current_wal_flush_lsn() END")
# The primary's monitor: every commit acknowledged before this ran is flushed, so at or below
# it (asynchronous commits once the WAL writer flushes them). Not the insert position: records
# that no commit follows can sit unflushed, out of every replica's reach, while writes pause.
PRIMARY_SQL = "SELECT pg_current_wal_flush_lsn()"
REPLAY_SQL = "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()"
UNREACHABLE = (DatabaseError, InterfaceError, MaxConnectionsExceeded)


class Replica:
    """One replica: its pool, and what its monitor saw last as one tuple (up, replayed LSN,
    fresh_at: the time before which every write the primary acknowledged is replayed there)."""

    def __init__(self, name, db, url, secret):
        self.name, self.db, self.url, self.secret = name, db, url, secret
        self.state = (None, 0, None)  # up: None until first polled

    def serves(self, position, now, max_lag):
        """True when this replica has replayed `position` and is at most `max_lag` s stale."""
        up, replayed, fresh_at = self.state
        return up and replayed >= position and fresh_at is not None and now - fresh_at <= max_lag


class ReplicaSet:
    """The replicas of a primary, their monitors and the host's write positions."""

    def __init__(self, primary_url, primary_secret, replicas, config):
        self.replicas = replicas
        self.max_lag = config.replica_max_lag_ms / 1000
        self.connect_timeout = config.connect_timeout
        self.positions = WritePositions()
        self._primary = (primary_url, primary_secret)
        # (sent_at, LSN): enough to span the bound (DATABASE_REPLICA_MAX_LAG_MS is at most 60 s)
        self._samples = deque(maxlen=int(self.max_lag / POLL_SECONDS) + 4)
        self._pending = []  # (slot, since): positions lost by this process, to be re-learned
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._pid = None
        self._stop = threading.Event()

    # The request path ---------------------------------------------------------------------------
    def pick(self, user_id):
        """A replica that may serve `user_id` now, or None (the primary serves)."""
        self._ensure_monitors()
        position, pinned = self.positions.required(user_id)
        if pinned:
            return None
        now = time.monotonic()
        ready = [r for r in self.replicas if r.serves(position, now, self.max_lag)]
        return ready[next(self._turn) % len(ready)] if ready else None

    def wrote(self, user_id, lsn):
        """`user_id` wrote; the primary's WAL position after it was `lsn` (text, 'X/Y')."""
        self._ensure_monitors()
        self.positions.record(user_id, parse_lsn(lsn))

    def position_lost(self, user_id):
        """The position after a write of `user_id` could not be read (the primary went away):
        serve the user from the primary until this process's monitor reads a newer one."""
        self._ensure_monitors()
        slot = self.positions.pin(user_id)
        with self._lock:
            self._pending.append((slot, time.monotonic()))

    def failed(self, replica_db):
        """A request saw `replica_db` fail: skip it until its monitor reaches it again."""
        for replica in self.replicas:
            if replica.db is replica_db:
                replica.state = (False, *replica.state[1:])

    def close(self):
        """Stop the monitors and close the replicas' pools (tests; the end of a process)."""
        self._stop.set()
        for replica in self.replicas:
            replica.db.close_all()
        with self._lock:
            self._pid = None

    # Monitors -----------------------------------------------------------------------------------
    def _ensure_monitors(self):
        # Threads do not survive fork: each process (gunicorn worker) starts its own on first use.
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._stop, self._pending = threading.Event(), []
            self._samples.clear()
            monitors = [("primary", self._primary, PRIMARY_SQL, self._on_primary)]
            monitors += [(r.name, (r.url, r.secret), REPLAY_SQL, functools.partial(self._on_replica, r))
                         for r in self.replicas]
            for name, target, sql, on_row in monitors:
                threading.Thread(target=self._monitor, args=(target, sql, on_row, self._stop),
                                 name=f"replica-monitor-{name}", daemon=True).start()
            self._pid = os.getpid()

    def _monitor(self, target, sql, on_row, stop):
        conn = None
        while not stop.is_set():
            sent_at = time.monotonic()
            try:
                conn = conn or self._connect(*target)
                on_row(_poll(conn, sql), sent_at)
                pause = POLL_SECONDS
            except (psycopg2.Error, OSError):
                on_row(None, sent_at)
                conn = _close(conn)
                pause = RETRY_SECONDS
            stop.wait(max(0.0, sent_at + pause - time.monotonic()))
        _close(conn)

    def _connect(self, url, secret):
        conn = psycopg2.connect(url, connect_timeout=self.connect_timeout,
                                application_name="todo-service-monitor", **secret)
        conn.autocommit = True
        return conn

    def _on_primary(self, row, sent_at):
        if row is None:
            return
        # Every write acknowledged before `sent_at` lies at or below this position.
        lsn = parse_lsn(row[0])
        self._samples.append((sent_at, lsn))
        with self._lock:
            done = [item for item in self._pending if item[1] < sent_at]
            self._pending = [item for item in self._pending if item[1] >= sent_at]
        for slot, _since in done:
            self.positions.unpin(slot, lsn)

    def _on_replica(self, replica, row, _sent_at):
        was_up, replayed, fresh_at = replica.state
        if row is None or not row[0] or row[1] is None:  # unreachable, promoted, or not replaying
            replica.state = (False, replayed, fresh_at)
            if was_up is not False:  # up, or not polled yet: say it once
                log.warning("%s skipped: unreachable, or no longer a replaying standby", replica.name)
            return
        position = parse_lsn(row[1])
        if position < replayed:  # not the server seen before (rebuilt, restored): start afresh
            fresh_at = None
        for sent_at, lsn in reversed(list(self._samples)):
            if lsn <= position:  # it holds every write acknowledged before sent_at
                fresh_at = sent_at if fresh_at is None else max(fresh_at, sent_at)
                break
        replica.state = (True, position, fresh_at)
        if was_up is not True:
            log.info("%s serving reads", replica.name)


def _poll(conn, sql):
    # A frozen server must not stall the monitor: the watchdog severs a call past its deadline.
    WATCHDOG.watch(conn, POLL_DEADLINE_SECONDS)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()
    finally:
        WATCHDOG.done()


def _close(conn):
    if conn is not None:
        try:
            conn.close()
        except psycopg2.Error:
            pass
    return None
