"""scripts/run from a fresh clone, as a newcomer runs it: it serves on the embedded PostgreSQL it
starts in the clone's ./data, and Ctrl-C (SIGINT to its process group) or SIGTERM (to the script)
stops the service and then that PostgreSQL, leaving nothing running. A server it did not start
(DATABASE_URL's, or an embedded one already running) is left alone.

The clone takes the test run's own virtualenv (installed by scripts/install from the same
requirements, so scripts/install finds it up to date and installs nothing)."""
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest

from service.db import embedded
from tests.conftest import PROJECT
from tests.servers import free_port, http

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clone():
    """A git clone of this checkout's committed branch, with the test run's virtualenv. Straight
    under /tmp: the embedded server's own system user (under root) must reach its ./data."""
    parent = Path(tempfile.mkdtemp(prefix="todo-run-", dir="/tmp"))  # noqa: S108
    parent.chmod(0o755)
    folder = parent / "todo"
    try:
        subprocess.run(["git", "clone", "--quiet", str(PROJECT), str(folder)], check=True, timeout=120)
        (folder / ".venv").symlink_to(Path(sys.prefix))
        yield folder
    finally:
        embedded.stop(folder / "data")  # in case a test failed half-way
        shutil.rmtree(parent, ignore_errors=True)


def postgres_processes(pgdata):
    """Pids of PostgreSQL processes serving `pgdata` (from /proc: no psql needed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if argv and argv[0].endswith(b"postgres") and str(pgdata).encode() in argv:
                found.append(int(entry.name))
    return found


class Run:
    """scripts/run in the clone, in a session of its own (as a terminal's foreground job)."""

    def __init__(self, clone, **env):
        self.clone = clone
        self.port = free_port()
        self.log = clone.parent / f"run-{self.port}.log"
        environment = {k: v for k, v in os.environ.items()
                       if not k.startswith(("DATABASE_", "PG", "TEST_DATABASE", "PROMETHEUS"))}
        environment.update({"PORT": str(self.port), "WEB_CONCURRENCY": "2"}, **env)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(["scripts/run"], cwd=clone, env=environment, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def output(self):
        return self.log.read_text(errors="replace")[-4000:]

    def wait_ready(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"scripts/run exited:\n{self.output()}"
            with contextlib.suppress(OSError):
                if http(self.port, "GET", "/readyz", timeout=2).status == 200:
                    return
            time.sleep(0.3)
        raise AssertionError(f"scripts/run never became ready:\n{self.output()}")

    def wait_exit(self, timeout=90):
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise AssertionError(f"scripts/run did not stop:\n{self.output()}") from None

    def kill(self):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_stopping_scripts_run_stops_the_embedded_postgresql_it_started(clone, stop):
    pgdata = clone / "data" / "pgdata"
    assert not postgres_processes(pgdata), "a PostgreSQL of the clone was running before the test"
    run = Run(clone)
    try:
        run.wait_ready()
        assert postgres_processes(pgdata), "the service is not on the clone's embedded PostgreSQL"
        assert http(run.port, "GET", "/health").status == 200
        if stop == "ctrl-c":
            os.killpg(run.process.pid, signal.SIGINT)  # what a terminal sends its foreground job
        else:
            run.process.send_signal(signal.SIGTERM)  # what a supervisor sends the script
        code = run.wait_exit()
    finally:
        run.kill()
    assert code == 0, run.output()
    assert "Stopped the embedded PostgreSQL" in run.output()
    deadline = time.monotonic() + 10
    while postgres_processes(pgdata) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert postgres_processes(pgdata) == []
    assert not (pgdata / "postmaster.pid").exists()
    assert (clone / ".env").exists()  # written on the first run, from .env.example


def test_a_server_scripts_run_did_not_start_is_left_running(clone, database_url):
    pgdata = clone / "data" / "pgdata"
    # An embedded server started before (another scripts/run, the tests): still running after.
    embedded.admin_url(clone / "data")
    try:
        run = Run(clone)
        try:
            run.wait_ready()
            run.process.send_signal(signal.SIGTERM)
            assert run.wait_exit() == 0, run.output()
        finally:
            run.kill()
        assert postgres_processes(pgdata), "scripts/run stopped a PostgreSQL it had not started"
    finally:
        embedded.stop(clone / "data")
    # DATABASE_URL's server: the service runs on it and leaves it alone.
    run = Run(clone, DATABASE_URL=database_url)
    try:
        run.wait_ready()
        assert not postgres_processes(pgdata)
        run.process.send_signal(signal.SIGTERM)
        assert run.wait_exit() == 0, run.output()
    finally:
        run.kill()
    assert "Stopped the embedded PostgreSQL" not in run.output()
    psycopg2.connect(database_url, connect_timeout=5).close()
