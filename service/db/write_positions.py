"""Each user's last write position (a WAL LSN), shared by the worker processes of a host.

A fixed table of slots in shared memory, hashed from the user id; a slot keeps the highest
position recorded in it, so users sharing a slot only make each other's reads more careful
(they wait for a later position). The memory is an anonymous shared mapping: every process
forked from the one that built the table sees it (gunicorn's workers, with preload_app as in
gunicorn.conf.py). An app built inside each worker instead gets a table per process, and
read-your-writes then holds per process only.

Updates are read-modify-write (keep the maximum), so they are serialised: a thread lock within
the process and a POSIX record lock (fcntl.lockf) on a shared file descriptor across processes;
the kernel drops a process's record locks when it dies, so a worker killed mid-update cannot
block the others.
"""
import contextlib
import ctypes
import fcntl
import mmap
import tempfile
import threading
import zlib

SLOTS = 1 << 16  # 1 MiB: a position and a pin count per slot


def parse_lsn(text):
    """A pg_lsn ('16/B374D848') as an integer."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


class WritePositions:
    """The WAL position each user's reads must wait for, and pins (positions unknown)."""

    def __init__(self, slots=SLOTS):
        self._slots = slots
        self._memory = mmap.mmap(-1, slots * 16)  # MAP_SHARED | MAP_ANONYMOUS: shared over fork
        self._positions = (ctypes.c_uint64 * slots).from_buffer(self._memory)
        self._pins = (ctypes.c_uint64 * slots).from_buffer(self._memory, slots * 8)
        self._lock_file = tempfile.TemporaryFile()  # noqa: SIM115 - held for the process's life
        self._thread_lock = threading.Lock()

    def slot(self, user_id):
        """The slot of `user_id` (a hash stable across processes, unlike hash())."""
        return zlib.crc32(user_id.encode()) % self._slots

    @contextlib.contextmanager
    def _locked(self):
        with self._thread_lock:
            fcntl.lockf(self._lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.lockf(self._lock_file, fcntl.LOCK_UN)

    def required(self, user_id):
        """(the position a replica must have replayed to serve `user_id`, pinned?)."""
        slot = self.slot(user_id)
        with self._locked():
            return self._positions[slot], self._pins[slot] > 0

    def record(self, user_id, position):
        """`user_id` wrote; its reads wait for `position` from now on."""
        self._raise(self.slot(user_id), position)

    def _raise(self, slot, position):
        with self._locked():
            if position > self._positions[slot]:
                self._positions[slot] = position

    def pin(self, user_id):
        """`user_id` wrote but its position is unknown: the primary serves the slot until
        `unpin`. Returns the slot."""
        slot = self.slot(user_id)
        with self._locked():
            self._pins[slot] += 1
        return slot

    def unpin(self, slot, position):
        """The pin of `slot` ends: `position` is known to cover the write that caused it."""
        with self._locked():
            if position > self._positions[slot]:
                self._positions[slot] = position
            if self._pins[slot] > 0:
                self._pins[slot] -= 1
