"""Private PostgreSQL replication for tests: a primary and streaming standbys on free loopback
ports, run from the embedded PostgreSQL's binaries (initdb, pg_basebackup, pg_ctl).

- `Template`: a data directory made once (initdb, the app database migrated), then stopped.
- `Cluster(template)`: a context manager; its primary is a copy of the template in a folder of
  its own; `add_standby()` clones the running primary with `pg_basebackup -R` and starts it
  streaming. On exit (a failed test included) every server is stopped and its files removed.

When we are root the servers run as the `embedded_postgres` system user, as the embedded server
does (PostgreSQL refuses to run as root).
"""
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import psutil
import psycopg2

from service.db import embedded
from tests.conftest import admin_connect, create_database, make_config, migrate, role_url
from tests.servers import EMBEDDED_SYSTEM_USER, free_port

SERVER_USER = EMBEDDED_SYSTEM_USER if os.geteuid() == 0 else None

# Written into the template's postgresql.conf; a clone inherits it (pg_basebackup copies it).
SETTINGS = """
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 80
shared_buffers = 16MB
wal_level = replica
max_wal_senders = 8
wal_keep_size = 128MB
hot_standby = on
hot_standby_feedback = on
wal_receiver_status_interval = 1s
log_line_prefix = '%m [%p] %a: '
"""


def _as_server_user(*command, check=True, timeout=60):
    return subprocess.run([str(c) for c in command], user=SERVER_USER, check=check, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _bin(name):
    with warnings.catch_warnings():  # platformdirs warns at import when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        return embedded.bin_dir() / name


def _folder(prefix):
    """A temporary folder the server user owns (it writes data directories and logs there)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    if SERVER_USER:
        entry = pwd.getpwnam(SERVER_USER)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    return folder


class Server:
    """One PostgreSQL server (data directory `pgdata`) on a free loopback port."""

    def __init__(self, name, pgdata):
        self.name = name
        self.pgdata = Path(pgdata)
        self.log = self.pgdata.parent / f"{name}.log"
        self.port = free_port()

    @property
    def admin_url(self):
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, **settings):
        """Start the server (and wait until it accepts connections); `settings` are -c options
        (default: those of the previous start)."""
        self.settings = settings = settings or getattr(self, "settings", {})
        options = " ".join([f"-p {self.port}", *(f"-c {k}={v}" for k, v in settings.items())])
        result = _as_server_user(_bin("pg_ctl"), "-D", self.pgdata, "-l", self.log, "-w", "-t", "60",
                                 "-o", options, "start", check=False, timeout=90)
        if result.returncode != 0:
            raise RuntimeError(f"{self.name} did not start:\n{result.stdout}\n{self.log_text()[-3000:]}")

    def stop(self, mode="fast"):
        """Stop the server: `fast` ends sessions and shuts down cleanly; `immediate` is a crash."""
        _as_server_user(_bin("pg_ctl"), "-D", self.pgdata, "-w", "-m", mode, "stop")

    def promote(self):
        """End recovery: this standby becomes a primary."""
        _as_server_user(_bin("pg_ctl"), "-D", self.pgdata, "-w", "promote")

    def running(self):
        return (self.pgdata / "postmaster.pid").exists()

    def processes(self):
        """The server's processes (postmaster first), e.g. to freeze it with SIGSTOP."""
        pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        return [postmaster, *postmaster.children(recursive=True)]

    def sql(self, query, params=(), database=None):
        """The rows of `query` run as the superuser (autocommit; `database` default postgres)."""
        conn = admin_connect(self.admin_url, database)
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Template:
    """An initialised, migrated data directory that clusters copy (stopped, not running)."""

    def __init__(self):
        self.root = _folder("todo-replica-template-")
        try:
            server = Server("template", self.root / "pgdata")
            _as_server_user(_bin("initdb"), "-D", server.pgdata, "--auth=trust", "-U", "postgres",
                            "--encoding=utf8", "--no-sync")
            with open(server.pgdata / "postgresql.conf", "a") as conf:
                conf.write(SETTINGS)
            server.start()
            self.database = create_database(server.admin_url, prefix="todo_replicas")
            _router, db = migrate(role_url(server.admin_url, self.database), make_config())
            db.close_all()
            server.stop()
            self.pgdata = server.pgdata
        except BaseException:
            self.destroy()
            raise

    def destroy(self):
        pgdata = self.root / "pgdata"
        if (pgdata / "postmaster.pid").exists():
            _as_server_user(_bin("pg_ctl"), "-D", pgdata, "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


class Cluster:
    """A primary (a copy of the template) and its standbys, all removed on exit."""

    def __init__(self, template, **primary_settings):
        self.root = _folder("todo-replicas-")
        self.database = template.database
        self.servers = []
        try:
            _as_server_user("cp", "-a", template.pgdata, self.root / "primary")
            self.primary = self._server("primary", self.root / "primary")
            self.primary.start(**primary_settings)
        except BaseException:
            self.close()
            raise

    def _server(self, name, pgdata):
        server = Server(name, pgdata)
        self.servers.append(server)
        return server

    def add_standby(self, name="standby", **settings):
        """A streaming standby of the primary (cloned now); waits until it streams."""
        pgdata = self.root / name
        _as_server_user(_bin("pg_basebackup"), "-h", "127.0.0.1", "-p", self.primary.port, "-U", "postgres",
                        "-D", pgdata, "-X", "stream", "-R", "-c", "fast", "--no-sync", timeout=120)
        standby = self._server(name, pgdata)
        standby.start(cluster_name=name, **settings)
        self.wait_streaming(standby)
        return standby

    def wait_streaming(self, standby, timeout=30):
        """Wait until the primary streams WAL to `standby`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.primary.sql("SELECT 1 FROM pg_stat_replication WHERE application_name = %s "
                                    "AND state = 'streaming'", (standby.name,))
            if rows:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{standby.name} is not streaming:\n{standby.log_text()[-3000:]}")

    def wait_replayed(self, standby, timeout=30):
        """Wait until `standby` has replayed everything the primary has written so far."""
        target = self.primary.sql("SELECT pg_current_wal_insert_lsn()")[0][0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if standby.sql("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,))[0][0]:
                return
            time.sleep(0.05)
        raise RuntimeError(f"{standby.name} did not replay up to {target}")

    def url(self, *servers, role=None, **params):
        """The app role's URL of the app database on `servers` (several: a multi-host URL)."""
        url = role_url(servers[0].admin_url, self.database, *([role] if role else []))
        if len(servers) > 1:
            hosts = ",".join(f"127.0.0.1:{server.port}" for server in servers)
            url = url.replace(f"127.0.0.1:{servers[0].port}", hosts, 1)
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"{url}?{query}" if query else url

    def app_sql(self, server, query, params=()):
        """`query` on the app database of `server`, as the superuser."""
        return server.sql(query, params, database=self.database)

    def close(self):
        """Stop every server (immediately: nothing here needs a clean shutdown) and remove them."""
        for server in self.servers:
            if server.running():
                try:
                    server.stop("immediate")
                except subprocess.SubprocessError:
                    pass
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def connect(url):
    """A plain autocommit connection (tests' own checks, outside the service)."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    return conn
