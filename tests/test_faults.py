"""Database faults (issue 5 item 5): the service under gunicorn on a PostgreSQL this test starts
itself; the database stops under a running load of creates and starts again.

Promises checked: while it is down, requests fail fast with 503 and Retry-After (never a hang
past the configured timeouts, never a 500); once it is back, full service within 2 seconds
without restarting gunicorn; every create acknowledged with 201 is in the database. Also: an
exhausted pool answers 503 after DATABASE_POOL_TIMEOUT, and the statement timeout bounds a
request blocked on a lock.
"""
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import peewee
import psutil
import psycopg2
import pytest

from service.db import PROBE_DEADLINE_SECONDS
from tests.conftest import Caller, admin_connect, make_token
from tests.servers import EmbeddedPostgres, Gunicorn, fresh_app, http

pytestmark = pytest.mark.slow

POOL_TIMEOUT = 2
CONNECT_TIMEOUT = 2
STATEMENT_TIMEOUT_MS = 2000
SLACK = 2.0  # scheduling, a gunicorn worker's queue
MAX_ANSWER_SECONDS = max(POOL_TIMEOUT, CONNECT_TIMEOUT, STATEMENT_TIMEOUT_MS / 1000) + SLACK
RECOVERY_SECONDS = 2.0
LOAD_THREADS = 4


@pytest.fixture(scope="module")
def own_postgres():
    """A PostgreSQL server only this module uses (it will be stopped and started)."""
    server = EmbeddedPostgres()
    yield server
    server.destroy()


@pytest.fixture(scope="module")
def gunicorn(own_postgres):
    server = Gunicorn(own_postgres.url, workers=2,
                      DATABASE_POOL_TIMEOUT=str(POOL_TIMEOUT), DATABASE_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT),
                      DATABASE_STATEMENT_TIMEOUT_MS=str(STATEMENT_TIMEOUT_MS), DATABASE_POOL_SIZE="4")
    yield server
    server.stop()


class Load:
    """Threads creating tasks as fast as they can, recording every answer (and its time)."""

    def __init__(self, port, threads=LOAD_THREADS):
        self.port = port
        self.users = [f"fault-{uuid.uuid4().hex[:10]}" for _ in range(threads)]
        self.results = []  # (started_at, finished_at, status, retry_after, title, id, error)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=threads)
        self._futures = [self._pool.submit(self._run, user) for user in self.users]

    def _run(self, user):
        headers = {"Authorization": f"Bearer {make_token(user, ttl=3600)}"}
        while not self._stop.is_set():
            title = f"load {uuid.uuid4().hex}"
            started = time.monotonic()
            status = retry_after = task_id = error = None
            try:
                response = http(self.port, "POST", "/api/tasks", {"title": title}, headers,
                                timeout=MAX_ANSWER_SECONDS + 10)
                status, retry_after = response.status, response.headers.get("retry-after")
                if status == 201:
                    task_id = response.json()["id"]
                elif status != 503:
                    error = response.body[:300]
            except OSError as exc:  # a timeout (hang) or a dropped connection
                error = repr(exc)
            with self._lock:
                self.results.append((started, time.monotonic(), status, retry_after, title, task_id, error))
            if status == 503:
                time.sleep(0.05)  # a polite client; keeps the log readable

    def stop(self):
        self._stop.set()
        for future in self._futures:
            future.result(timeout=60)
        self._pool.shutdown()

    def between(self, start, end):
        """The results of requests that started in [start, end)."""
        return [r for r in self.results if start <= r[0] < end]


def rows_with_titles(admin_url, database, titles):
    conn = admin_connect(admin_url, database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id, title FROM tasks WHERE title = ANY(%s)", (list(titles),))
            return dict(cur.fetchall())
    finally:
        conn.close()


def create_until_up(port, headers, title):
    """POST a task until one is created or RECOVERY_SECONDS pass; the last answer."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    while True:
        up = http(port, "POST", "/api/tasks", {"title": title}, headers, timeout=MAX_ANSWER_SECONDS + 5)
        if up.status == 201 or time.monotonic() > deadline:
            return up
        time.sleep(0.05)


def test_database_outage_under_load_fails_fast_recovers_and_loses_no_acknowledged_write(own_postgres, gunicorn):
    load = Load(gunicorn.port)
    try:
        time.sleep(1.5)
        stopped_at = time.monotonic()
        own_postgres.stop()
        time.sleep(0.2)
        health = http(gunicorn.port, "GET", "/health", timeout=5)
        ready = http(gunicorn.port, "GET", "/readyz", timeout=MAX_ANSWER_SECONDS + 5)
        time.sleep(3)
        own_postgres.start()
        started_at = time.monotonic()
        time.sleep(RECOVERY_SECONDS + 2)
    finally:
        load.stop()
    results = load.results
    statuses = [r[2] for r in results]

    # Liveness does not depend on the database; readiness does.
    assert health.status == 200
    assert ready.status == 503 and ready.headers.get("retry-after")

    # Never a hang, never a 500, never a dropped connection: only 201 and 503.
    errors = [r for r in results if r[6] is not None or r[2] not in (201, 503)]
    assert not errors, (errors[:5], gunicorn.output())
    slowest = max(r[1] - r[0] for r in results)
    assert slowest < MAX_ANSWER_SECONDS, slowest
    assert all(r[3] for r in results if r[2] == 503), "every 503 carries Retry-After"

    # The load really ran before, during and after the outage.
    before = load.between(0, stopped_at)
    during = load.between(stopped_at + 0.2, started_at - 0.2)
    after = load.between(started_at + RECOVERY_SECONDS, float("inf"))
    assert before and all(r[2] == 201 for r in before[: len(before) // 2])
    assert during and all(r[2] == 503 for r in during), sorted({r[2] for r in during})
    # Full service within RECOVERY_SECONDS of the server being back, gunicorn untouched.
    assert after and all(r[2] == 201 for r in after), [r[2] for r in after]
    assert gunicorn.process.poll() is None

    # Every acknowledged create is in the database.
    acknowledged = {r[4]: r[5] for r in results if r[2] == 201}
    stored = rows_with_titles(own_postgres.admin_url, own_postgres.database, acknowledged)
    missing = [t for t, task_id in acknowledged.items() if stored.get(task_id) != t]
    assert not missing, f"{len(missing)} acknowledged writes lost of {len(acknowledged)}"
    print(f"\nfault run: {len(results)} requests, {statuses.count(201)} created, "
          f"{statuses.count(503)} refused with 503, slowest {slowest:.2f}s, "
          f"first 201 after restart "
          f"{min((r[1] - started_at for r in results if r[2] == 201 and r[0] >= started_at), default=-1):.2f}s")


def test_service_recovers_after_a_second_outage_without_restart(own_postgres, gunicorn):
    # Connections that died with the first outage were discarded; a second outage and return
    # behave the same (nothing stale accumulates in the pools).
    headers = {"Authorization": f"Bearer {make_token('fault-second', ttl=600)}"}
    for _round in range(2):
        own_postgres.stop()
        down = http(gunicorn.port, "POST", "/api/tasks", {"title": "x"}, headers, timeout=MAX_ANSWER_SECONDS + 5)
        assert down.status == 503 and down.elapsed < MAX_ANSWER_SECONDS
        own_postgres.start()
        up = create_until_up(gunicorn.port, headers, "x")
        assert up.status == 201, (up.status, up.body)
        # and then every request of both workers succeeds
        assert [http(gunicorn.port, "GET", "/api/tasks?limit=1", headers=headers).status
                for _ in range(12)] == [200] * 12


# Pool exhaustion and statement timeout (on the shared test database, with apps of their own) ------
def test_exhausted_pool_answers_503_after_the_pool_timeout_not_a_hang(database_url):
    with fresh_app(database_url, DATABASE_POOL_SIZE="1", DATABASE_POOL_TIMEOUT="1") as app:
        caller = Caller(app.test_client())
        assert caller.get("/api/tasks").status_code == 200  # provisions the user
        db = app.extensions["database"]
        holding, release = threading.Event(), threading.Event()

        def hold_the_only_connection():
            db.connect()
            holding.set()
            release.wait(20)
            db.close()

        holder = threading.Thread(target=hold_the_only_connection)
        holder.start()
        try:
            assert holding.wait(5)
            started = time.monotonic()
            response = caller.get("/api/tasks")
            elapsed = time.monotonic() - started
        finally:
            release.set()
            holder.join(10)
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert response.mimetype == "application/problem+json"
        assert 0.8 <= elapsed < 1 + SLACK, elapsed
        # the connection is back: service resumes
        assert caller.get("/api/tasks").status_code == 200


def test_slow_statements_holding_every_connection_give_503_to_the_rest(database_url, admin_url, database_name):
    # Two connections, both stuck behind a row lock; a third request waits the pool timeout and
    # gets 503; the stuck ones end at the statement timeout with 503, never hanging.
    with fresh_app(database_url, DATABASE_POOL_SIZE="2", DATABASE_POOL_TIMEOUT="1",
                   DATABASE_STATEMENT_TIMEOUT_MS="3000") as app:
        caller = Caller(app.test_client())
        task = caller.post("/api/tasks", json={"title": "locked"}).get_json()
        locker = admin_connect(admin_url, database_name)
        locker.autocommit = False
        try:
            with locker.cursor() as cur:
                cur.execute("SELECT id FROM tasks WHERE id = %s FOR UPDATE", (task["id"],))

            def stuck():
                own = Caller(app.test_client(), caller.id)
                started = time.monotonic()
                response = own.patch(f"/api/tasks/{task['id']}", json={"title": "x"})
                return response.status_code, time.monotonic() - started

            with ThreadPoolExecutor(max_workers=2) as pool:
                stuck_ones = [pool.submit(stuck) for _ in range(2)]
                time.sleep(0.5)
                started = time.monotonic()
                third = Caller(app.test_client(), caller.id).get("/api/tasks")
                third_elapsed = time.monotonic() - started
                results = [f.result(timeout=15) for f in stuck_ones]
        finally:
            locker.rollback()
            locker.close()
        assert third.status_code == 503 and third_elapsed < 1 + SLACK, (third.status_code, third_elapsed)
        for status, elapsed in results:
            assert status == 503 and elapsed < 3 + SLACK, (status, elapsed)
        assert caller.get(f"/api/tasks/{task['id']}").get_json()["title"] == "locked"


@pytest.mark.parametrize("method, suffix, body", [
    ("PATCH", "", {"title": "x"}), ("PUT", "", {"title": "x"}), ("PATCH", "/complete", None), ("DELETE", "", None)])
def test_statement_timeout_bounds_a_write_blocked_by_a_lock(database_url, admin_url, database_name, method, suffix,
                                                             body):
    with fresh_app(database_url, DATABASE_STATEMENT_TIMEOUT_MS="500") as app:
        caller = Caller(app.test_client())
        task = caller.post("/api/tasks", json={"title": "locked"}).get_json()
        locker = admin_connect(admin_url, database_name)
        locker.autocommit = False
        try:
            with locker.cursor() as cur:
                cur.execute("SELECT id FROM tasks WHERE id = %s FOR UPDATE", (task["id"],))
            started = time.monotonic()
            response = caller.request(method, f"/api/tasks/{task['id']}{suffix}", json=body)
            elapsed = time.monotonic() - started
        finally:
            locker.rollback()
            locker.close()
        assert response.status_code == 503, response.get_json()
        assert response.headers["Retry-After"]
        assert 0.4 <= elapsed < 0.5 + SLACK, elapsed
        # the lock is gone: the same request now succeeds, and the connection was not poisoned
        assert caller.request(method, f"/api/tasks/{task['id']}{suffix}", json=body).status_code == 200


@pytest.mark.parametrize("method, path", [("GET", "/api/tasks"), ("GET", "/api/users/me/export"),
                                          ("POST", "/api/tasks")])
def test_statement_timeout_bounds_reads_and_creates_behind_a_table_lock(database_url, admin_url, database_name,
                                                                          method, path):
    with fresh_app(database_url, DATABASE_STATEMENT_TIMEOUT_MS="500") as app:
        caller = Caller(app.test_client())
        assert caller.get("/api/tasks").status_code == 200
        locker = admin_connect(admin_url, database_name)
        locker.autocommit = False
        try:
            with locker.cursor() as cur:
                cur.execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            response = caller.request(method, path, json={"title": "x"} if method == "POST" else None)
            elapsed = time.monotonic() - started
        finally:
            locker.rollback()
            locker.close()
        assert response.status_code == 503 and response.headers["Retry-After"], response.get_json()
        assert elapsed < 0.5 + SLACK, elapsed


def test_statement_timeout_bounds_a_create_blocked_by_a_lock_on_its_idempotency_key(database_url, admin_url,
                                                                                     database_name):
    with fresh_app(database_url, DATABASE_STATEMENT_TIMEOUT_MS="500") as app:
        caller = Caller(app.test_client())
        assert caller.get("/api/tasks").status_code == 200
        locker = admin_connect(admin_url, database_name)
        locker.autocommit = False
        try:
            with locker.cursor() as cur:  # an uncommitted claim of the same key blocks the insert
                cur.execute("INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES (%s, 'k', 'h')",
                            (caller.id,))
            started = time.monotonic()
            response = caller.post("/api/tasks", json={"title": "x"}, headers={"Idempotency-Key": "k"})
            elapsed = time.monotonic() - started
        finally:
            locker.rollback()
            locker.close()
        assert response.status_code == 503 and elapsed < 0.5 + SLACK, (response.status_code, elapsed)


def test_statement_timeout_is_applied_to_every_request_statement(database_url):
    # The configured timeout rides with the request's statements (service/db/pool.py scope prefix):
    # read it back through the app's own connection.
    with fresh_app(database_url, DATABASE_STATEMENT_TIMEOUT_MS="1234") as app:
        db = app.extensions["database"]
        db.bind_user("nobody")
        try:
            with db.connection_context():
                assert db.execute_sql("SELECT current_setting('statement_timeout')").fetchone()[0] == "1234ms"
                with db.atomic():
                    assert db.execute_sql("SELECT current_setting('statement_timeout')").fetchone()[0] == "1234ms"
        finally:
            db.unbind()


def test_psycopg2_cancel_is_an_operational_error():
    # The 503 mapping relies on this (errors.py maps OperationalError to 503).
    assert issubclass(psycopg2.errors.QueryCanceled, psycopg2.OperationalError)


def test_a_database_that_accepts_but_never_answers_gives_503_after_the_connect_timeout():
    # A listener that takes the TCP connection and then says nothing (a hung server, a
    # black-holing proxy): libpq's connect_timeout must end the wait, not the client's patience.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        url = f"postgresql://nobody@127.0.0.1:{port}/nothing"
        with fresh_app(url, DATABASE_CONNECT_TIMEOUT="1", DATABASE_POOL_TIMEOUT="1") as app:
            caller = Caller(app.test_client())
            for _ in range(2):  # the failed attempt leaves nothing behind in the pool
                started = time.monotonic()
                response = caller.get("/api/tasks")
                elapsed = time.monotonic() - started
                assert response.status_code == 503 and response.headers["Retry-After"], response.get_json()
                assert elapsed < 1 + SLACK, elapsed
            started = time.monotonic()
            ready = app.test_client().get("/readyz")
            assert ready.status_code == 503 and time.monotonic() - started < 1 + SLACK
            assert app.test_client().get("/health").status_code == 200


def test_a_refused_database_connection_gives_503_at_once():
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]  # bound, not listening: connections are refused
        with fresh_app(f"postgresql://nobody@127.0.0.1:{port}/nothing") as app:
            started = time.monotonic()
            response = Caller(app.test_client()).post("/api/tasks", json={"title": "x"})
            assert response.status_code == 503 and response.headers["Retry-After"]
            assert time.monotonic() - started < 1


def test_service_starts_while_the_database_is_down_and_serves_once_it_is_up(own_postgres):
    headers = {"Authorization": f"Bearer {make_token('fault-cold-start', ttl=600)}"}
    server = None
    own_postgres.stop()
    try:
        server = Gunicorn(own_postgres.url, workers=1, DATABASE_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT),
                          DATABASE_POOL_TIMEOUT=str(POOL_TIMEOUT))
        assert http(server.port, "GET", "/health").status == 200
        ready = http(server.port, "GET", "/readyz", timeout=MAX_ANSWER_SECONDS + 5)
        assert ready.status == 503 and ready.headers.get("retry-after")
        down = http(server.port, "POST", "/api/tasks", {"title": "x"}, headers, timeout=MAX_ANSWER_SECONDS + 5)
        assert down.status == 503 and down.headers.get("retry-after") and down.elapsed < MAX_ANSWER_SECONDS
        own_postgres.start()
        up = create_until_up(server.port, headers, "x")
        assert up.status == 201, (up.status, up.body)
        assert http(server.port, "GET", "/readyz").status == 200
    finally:
        if server is not None:
            server.stop()
        if not (own_postgres.pgdata / "postmaster.pid").exists():
            own_postgres.start()  # the module's other tests need it whatever happened here


def _signal_server(server, signum):
    pid = int((server.pgdata / "postmaster.pid").read_text().split()[0])
    processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    for process in processes:
        process.send_signal(signum)


def test_a_frozen_database_gives_503_within_the_deadline_not_a_hang(own_postgres):
    # SIGSTOP: the server keeps its sockets open and the kernel keeps accepting, but nothing
    # answers (as a paused VM or container, or a partition). statement_timeout cannot fire on
    # a frozen server; the service's watchdog (service/db/watchdog.py) must end the wait.
    statement_ms, connect_s = 1000, 1
    deadline = statement_ms / 1000 * 1.5 + 1.0  # service/db/pool.py: ScopedPostgresqlDatabase.call_deadline
    bound = deadline + PROBE_DEADLINE_SECONDS + connect_s + SLACK
    headers = {"Authorization": f"Bearer {make_token('fault-frozen', ttl=600)}"}
    server = Gunicorn(own_postgres.url, workers=1, DATABASE_STATEMENT_TIMEOUT_MS=str(statement_ms),
                      DATABASE_CONNECT_TIMEOUT=str(connect_s), DATABASE_POOL_TIMEOUT="1")
    try:
        for _ in range(3):  # warm the pool
            assert http(server.port, "POST", "/api/tasks", {"title": "warm"}, headers).status == 201
        _signal_server(own_postgres, signal.SIGSTOP)
        try:
            answers = [http(server.port, method, path, body, headers, timeout=bound + 10)
                       for method, path, body in [("POST", "/api/tasks", {"title": "frozen"}),
                                                  ("GET", "/api/tasks", None), ("GET", "/api/users/me", None),
                                                  ("GET", "/readyz", None)]]
        finally:
            _signal_server(own_postgres, signal.SIGCONT)
        for answer in answers:
            assert answer.status == 503 and answer.headers.get("retry-after"), (answer.status, answer.body)
            assert answer.elapsed < bound, [a.elapsed for a in answers]
        up = create_until_up(server.port, headers, "thawed")
        assert up.status == 201, (up.status, up.body)
        print(f"\nfrozen database: answers in {[round(a.elapsed, 2) for a in answers]} s")
    finally:
        server.stop()


def test_call_deadlines_cover_requests_but_not_operator_work(database_url):
    with fresh_app(database_url, DATABASE_STATEMENT_TIMEOUT_MS="2000") as app:
        db = app.extensions["database"]
        assert db.call_deadline() is None  # migrations, CLI commands: no watchdog
        db.bind_admin()
        assert db.call_deadline() is None
        db.bind_user("someone")
        assert db.call_deadline() == 2 * 1.5 + 1
        db.unbind()
        with app.test_request_context("/readyz"):
            assert db.call_deadline() == 2 * 1.5 + 1  # unscoped, but serving a request


def test_the_watchdog_ends_a_call_past_its_deadline_on_a_live_server(database_url):
    # The watchdog itself, against a server that is alive but slow: a call of a user scope
    # whose server-side timeout is generous is cut at the client-side deadline.
    with fresh_app(database_url, DATABASE_STATEMENT_TIMEOUT_MS="400") as app:
        db = app.extensions["database"]
        before = db.watchdog.severed
        db.bind_user("someone")
        try:
            with db.connection_context():
                started = time.monotonic()
                with pytest.raises(peewee.OperationalError):
                    # the scope sets statement_timeout 400 ms; lift it within the statement so
                    # only the watchdog (deadline 1.6 s) can end the sleep
                    db.execute_sql("SET LOCAL statement_timeout = 0; SELECT pg_sleep(10)")
                elapsed = time.monotonic() - started
        finally:
            db.unbind()
        assert 1.5 <= elapsed < 1.6 + 1.0, elapsed
        assert db.watchdog.severed == before + 1
        db.bind_user("someone")
        try:  # the severed connection was discarded: the next call works
            with db.connection_context():
                assert db.execute_sql("SELECT 1").fetchone() == (1,)
        finally:
            db.unbind()
