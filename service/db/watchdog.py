"""A watchdog for database calls: a server that stops answering cannot hang a request."""
import os
import socket
import threading
import time

import psycopg2


class Watchdog:
    """Ends database calls that outlive their deadline, so a request never waits forever.

    statement_timeout is enforced by the server; a server that stops answering without closing
    its connections (a frozen process, a paused VM or container, a network partition) enforces
    nothing, and libpq waits for its answer with no limit. Each call registers a deadline here;
    a thread of this process shuts the overdue call's socket down, which makes libpq fail the
    call at once ("server closed the connection"): the request answers 503 and the pool discards
    the connection. Costs a dictionary entry per call; the thread wakes `interval` times a second.
    """

    def __init__(self, interval=0.2):
        self.interval = interval
        self.severed = 0
        self._calls = {}  # thread id -> (deadline, connection)
        self._pid = None
        self._lock = threading.Lock()

    def watch(self, conn, seconds):
        """Start watching this thread's call on `conn`; it must end within `seconds`."""
        if self._pid != os.getpid():  # first use in this process (gunicorn forks after preload)
            self._start()
        self._calls[threading.get_ident()] = (time.monotonic() + seconds, conn)

    def done(self):
        """This thread's call has ended. Once this returns, the call's connection is never
        severed on its behalf: a sweep that already chose it finishes first (under the lock), so
        a connection handed to another request right after cannot be cut by mistake."""
        with self._lock:
            self._calls.pop(threading.get_ident(), None)

    def _start(self):
        with self._lock:
            if self._pid != os.getpid():
                self._calls = {}
                threading.Thread(target=self._run, name="db-watchdog", daemon=True).start()
                self._pid = os.getpid()

    def _run(self):
        while True:
            time.sleep(self.interval)
            self.sweep(time.monotonic())

    def sweep(self, now):
        """Sever the connection of every call past its deadline at `now`."""
        for ident, call in list(self._calls.items()):
            if call[0] < now:
                # Checked and severed under the lock that done() takes: the call cannot end, and
                # its connection cannot move to another request, between the check and the cut.
                with self._lock:
                    if self._calls.get(ident) is call:
                        del self._calls[ident]
                        self.severed += 1
                        _sever(call[1])


def _sever(conn):
    """Shut the connection's socket down under libpq (a duplicate descriptor, so libpq's own
    stays valid and is closed by libpq as usual)."""
    try:
        sock = socket.socket(fileno=os.dup(conn.fileno()))
    except (OSError, ValueError, AttributeError, psycopg2.Error):
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()



WATCHDOG = Watchdog()
