"""The service behind PgBouncer in transaction pooling mode (what Neon's pooled endpoint and most
hosted poolers are): consecutive transactions of one client land on different server
connections, so nothing may rely on session state. PgBouncer comes from Debian's `pgbouncer`
package, which scripts/install-tools (run by scripts/test) installs where it can; without it these
tests skip with the reason, except in CI (CI=true) where they fail instead."""
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2
import pytest
from psycopg2.extensions import parse_dsn

from service import create_app
from tests.conftest import APP_ROLE, Caller, make_config

pytestmark = pytest.mark.slow


def _unavailable(reason):
    if os.environ.get("CI") == "true":
        pytest.fail(f"PgBouncer is required in CI: {reason}")
    pytest.skip(reason)


def _installed():
    return shutil.which("pgbouncer") or next(
        (str(p) for p in (Path("/usr/sbin/pgbouncer"), Path("/usr/bin/pgbouncer")) if p.exists()), None)


@pytest.fixture(scope="session")
def pgbouncer_binary():
    """The pgbouncer program (scripts/install-tools installs it)."""
    found = _installed()
    if not found:
        _unavailable("pgbouncer is not installed (scripts/test installs it with apt-get where it can)")
    return found


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def bouncer_url(pgbouncer_binary, admin_url, database_name, database_url):
    """Start PgBouncer (transaction pooling, 3 server connections) on loopback in front of the
    test database; yields the app-role URL through it."""
    server = parse_dsn(admin_url)
    host, port = server.get("host", "127.0.0.1"), server.get("port", "5432")
    # Its own folder straight under /tmp: pytest's tmp folders are private to the user running
    # the tests, and PgBouncer may run as another one (below).
    folder = Path(tempfile.mkdtemp(prefix="todo-pgbouncer-"))
    listen = _free_port()
    (folder / "userlist.txt").write_text(f'"{APP_ROLE}" ""\n')
    (folder / "pgbouncer.ini").write_text(f"""
[databases]
{database_name} = host={host} port={port} dbname={database_name}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/userlist.txt
pool_mode = transaction
default_pool_size = 3
max_client_conn = 200
admin_users = {APP_ROLE}
""")
    command = [pgbouncer_binary]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root. Run it as the owner of the server's socket folder
        # (the embedded server's own user), or as nobody for a TCP server.
        owner = pwd.getpwuid(os.stat(host).st_uid) if host.startswith("/") else pwd.getpwnam("nobody")
        for path in (folder, *folder.iterdir()):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        command += ["-u", owner.pw_name]
    process = subprocess.Popen([*command, str(folder / "pgbouncer.ini")], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    url = f"postgresql://{APP_ROLE}@127.0.0.1:{listen}/{database_name}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, f"pgbouncer exited: {process.stdout.read()}"
            try:
                psycopg2.connect(url, connect_timeout=2).close()
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def bounced_app(bouncer_url):
    """The service with DATABASE_URL pointing at PgBouncer."""
    application = create_app(make_config(DATABASE_POOL_SIZE="8"), database_url=bouncer_url)
    application.config["TESTING"] = True
    yield application
    application.extensions["database"].close_all()


def bouncer_transactions(bouncer_url, database_name):
    """How many transactions PgBouncer has passed to the test database (its admin console)."""
    console = psycopg2.connect(bouncer_url.rsplit("/", 1)[0] + "/pgbouncer")
    console.autocommit = True  # the console knows no BEGIN
    try:
        with console.cursor() as cur:
            cur.execute("SHOW STATS")
            columns = [c.name for c in cur.description]
            for row in cur.fetchall():
                stats = dict(zip(columns, row, strict=True))
                if stats["database"] == database_name:
                    return stats["total_xact_count"]
        return 0
    finally:
        console.close()


def test_requests_really_go_through_pgbouncer(bounced_app, bouncer_url, database_name):
    before = bouncer_transactions(bouncer_url, database_name)
    assert bounced_app.test_client().get("/readyz").status_code == 200
    Caller(bounced_app.test_client()).create_task(title="counted")
    time.sleep(1.1)  # PgBouncer refreshes its totals every second
    assert bouncer_transactions(bouncer_url, database_name) >= before + 3


def test_main_task_flows_work_through_transaction_pooling(bounced_app):
    alice = Caller(bounced_app.test_client())
    created = alice.create_task(title="through the bouncer", priority="high")
    assert created["user_id"] == alice.id
    listed = alice.get("/api/tasks").get_json()
    assert [t["id"] for t in listed["tasks"]] == [created["id"]] and listed["count"] == 1
    put = alice.put(f"/api/tasks/{created['id']}", json={"title": "renamed"})
    assert put.status_code == 200 and put.get_json()["title"] == "renamed"
    patched = alice.patch(f"/api/tasks/{created['id']}", json={"description": "more"},
                          headers={"If-Match": put.headers["ETag"]})
    assert patched.status_code == 200
    stale = alice.patch(f"/api/tasks/{created['id']}", json={"description": "late"},
                        headers={"If-Match": put.headers["ETag"]})
    assert stale.status_code == 412
    toggled = alice.patch(f"/api/tasks/{created['id']}/complete")
    assert toggled.status_code == 200 and toggled.get_json()["completed"] is True
    assert alice.get(f"/api/tasks/{created['id']}").get_json()["completed"] is True
    deleted = alice.delete(f"/api/tasks/{created['id']}")
    assert deleted.status_code == 200 and deleted.get_json()["deleted_id"] == created["id"]
    assert alice.get(f"/api/tasks/{created['id']}").status_code == 404
    assert alice.get("/api/users/me").get_json()["id"] == alice.id


def test_idempotent_create_replays_through_transaction_pooling(bounced_app):
    alice = Caller(bounced_app.test_client())
    key = {"Idempotency-Key": f"bouncer-{uuid.uuid4().hex}"}
    first = alice.post("/api/tasks", json={"title": "once"}, headers=key)
    again = alice.post("/api/tasks", json={"title": "once"}, headers=key)
    assert first.status_code == 201
    assert again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    assert alice.get("/api/tasks").get_json()["count"] == 1


def test_users_never_see_each_others_rows_when_server_connections_are_shared(bounced_app):
    """Many users, more client connections than server connections: if a user's scope leaked
    from one transaction to the next on a shared server connection, someone would see a
    foreign task or lose their own."""
    callers = [Caller(bounced_app.test_client()) for _ in range(6)]
    for caller in callers:
        caller.create_task(title=f"own task of {caller.id}")

    def hammer(caller):
        own = Caller(bounced_app.test_client(), caller.id)
        seen = []
        for _ in range(15):
            body = own.get("/api/tasks").get_json()
            seen.append(sorted({t["user_id"] for t in body["tasks"]}) + [body["count"]])
            own.create_task(title="another")
        return caller.id, seen

    with ThreadPoolExecutor(max_workers=len(callers)) as pool:
        results = list(pool.map(hammer, callers, timeout=120))
    for user_id, seen in results:
        for number, observation in enumerate(seen):
            assert observation == [user_id, number + 1], (user_id, observation)
