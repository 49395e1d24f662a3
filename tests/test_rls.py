"""Row-level security, the second wall (issue 5 item 1).

Everything here runs as the service's own ordinary role (the app's database object; the test
role is neither superuser nor BYPASSRLS), so PostgreSQL's policies decide what is visible. The
queries are deliberately *unscoped* (`Task.select()` with no owner condition): only the
transaction-local `app.user_id` set by `bind_user` keeps them to the caller's rows.
"""
import contextlib
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import psycopg2.extensions
import pytest
from peewee import ProgrammingError

from service.db import database
from service.db.models import IdempotencyKey, Task, User
from tests.conftest import Caller
from tests.jwks_server import own_app


@contextlib.contextmanager
def request_scope(db, user_id=None, admin=False):
    """What the identity hook sets up for a request: the proxy on `db`, the thread bound to
    `user_id` (or to the admin bypass, or to nothing), a pooled connection; undone afterwards."""
    previous = database.obj
    database.initialize(db)
    if admin:
        db.bind_admin()
    elif user_id is not None:
        db.bind_user(user_id)
    else:
        db.unbind()
    db.connect(reuse_if_open=True)
    try:
        yield db
    finally:
        db.unbind()
        if not db.is_closed():
            db.close()
        if previous is not None:
            database.initialize(previous)


@pytest.fixture
def app_db(app):
    """The service's own pooled database object (the ordinary role)."""
    return app.extensions["database"]


@pytest.fixture
def two_users(alice, bob):
    """Alice with 3 tasks, Bob with 2 (created through the API)."""
    tasks = {alice.id: {alice.create_task(title=f"a{i}")["id"] for i in range(3)},
             bob.id: {bob.create_task(title=f"b{i}")["id"] for i in range(2)}}
    return alice, bob, tasks


def raw(db, sql, params=None):
    """Run `sql` on the current connection with no scope prefix; all rows."""
    cursor = db.cursor()
    cursor.execute(sql, params)
    return cursor.fetchall()


# The role and the policies --------------------------------------------------------------------
def test_service_role_is_neither_superuser_nor_bypassrls(app_db):
    with request_scope(app_db) as db:
        [(superuser, bypass)] = raw(db, "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
    assert (superuser, bypass) == (False, False)


@pytest.mark.parametrize("table", ["users", "tasks", "idempotency_keys"])
def test_row_level_security_is_enabled_and_forced(app_db, table):
    """FORCE matters: the service's role owns the tables (as on Neon/Heroku)."""
    with request_scope(app_db) as db:
        [(enabled, forced, owner)] = raw(db, "SELECT relrowsecurity, relforcerowsecurity, "
                                             "pg_get_userbyid(relowner) = current_user FROM pg_class "
                                             "WHERE oid = %s::regclass", (table,))
        policies = raw(db, "SELECT count(*) FROM pg_policies WHERE tablename = %s", (table,))[0][0]
    assert enabled and forced and owner
    assert policies >= 1


# Reading --------------------------------------------------------------------------------------
def test_unscoped_select_returns_only_the_callers_rows(app_db, two_users):
    alice, bob, tasks = two_users
    with request_scope(app_db, alice.id):
        rows = list(Task.select())
        users = [u.id for u in User.select()]
        counted = Task.select().count()
    assert {t.id for t in rows} == tasks[alice.id]
    assert {t.user_id for t in rows} == {alice.id}
    assert counted == 3
    assert users == [alice.id]


def test_asking_for_another_users_rows_explicitly_finds_nothing(app_db, two_users):
    alice, bob, tasks = two_users
    bobs_task = next(iter(tasks[bob.id]))
    with request_scope(app_db, alice.id):
        assert list(Task.select().where(Task.user == bob.id)) == []
        assert Task.get_or_none(Task.id == bobs_task) is None
        assert User.get_or_none(User.id == bob.id) is None
        assert raw(app_db, "SELECT count(*) FROM tasks")[0][0] == 0  # raw: outside the scope's statement


def test_scope_covers_every_statement_of_a_transaction(app_db, two_users):
    alice, bob, tasks = two_users
    with request_scope(app_db, bob.id) as db, db.atomic():
        first = {t.id for t in Task.select()}
        [(setting,)] = raw(db, "SELECT current_setting('app.user_id', true)")
        second = {t.id for t in Task.select()}
    assert first == second == tasks[bob.id]
    assert setting == bob.id


def test_without_binding_nothing_is_visible(app_db, two_users):
    with request_scope(app_db) as db:
        assert Task.select().count() == 0
        assert User.select().count() == 0
        assert IdempotencyKey.select().count() == 0
        assert raw(db, "SELECT count(*) FROM tasks")[0][0] == 0


def test_a_plain_connection_of_the_service_role_sees_nothing(database_url, two_users):
    """Whatever connects as the service's role without the request scope (a psql session, a
    leaked connection) reads no rows at all."""
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT (SELECT count(*) FROM tasks), (SELECT count(*) FROM users)")
            assert cur.fetchone() == (0, 0)
    finally:
        conn.close()


def test_bind_admin_sees_every_users_rows(app_db, two_users):
    alice, bob, tasks = two_users
    with request_scope(app_db, admin=True):
        seen = {t.id for t in Task.select().where(Task.user.in_([alice.id, bob.id]))}
        users = {u.id for u in User.select().where(User.id.in_([alice.id, bob.id]))}
    assert seen == tasks[alice.id] | tasks[bob.id]
    assert users == {alice.id, bob.id}


def test_idempotency_keys_are_scoped_too(app_db, alice, bob):
    alice.post("/api/tasks", json={"title": "x"}, headers={"Idempotency-Key": f"k-{uuid.uuid4().hex}"})
    bob.post("/api/tasks", json={"title": "y"}, headers={"Idempotency-Key": f"k-{uuid.uuid4().hex}"})
    with request_scope(app_db, alice.id):
        owners = {k.user_id for k in IdempotencyKey.select()}
    assert owners == {alice.id}


# Writing --------------------------------------------------------------------------------------
def test_inserting_a_task_for_another_user_fails(app_db, two_users, admin_db):
    alice, bob, _tasks = two_users
    with request_scope(app_db, alice.id), pytest.raises(ProgrammingError, match="row-level security"):
        Task.insert(user=bob.id, title="planted").execute()
    with admin_db.cursor() as cur:
        cur.execute("SELECT count(*) FROM tasks WHERE title = 'planted' AND user_id = %s", (bob.id,))
        assert cur.fetchone()[0] == 0


def test_inserting_a_user_row_for_someone_else_fails(app_db, alice):
    alice.get("/api/users/me")
    with request_scope(app_db, alice.id), pytest.raises(ProgrammingError, match="row-level security"):
        User.insert(id=f"intruder-{uuid.uuid4().hex[:8]}").execute()


def test_moving_a_task_to_another_user_fails(app_db, two_users):
    alice, bob, tasks = two_users
    own = next(iter(tasks[alice.id]))
    with request_scope(app_db, alice.id), pytest.raises(ProgrammingError, match="row-level security"):
        Task.update(user=bob.id).where(Task.id == own).execute()
    assert alice.get(f"/api/tasks/{own}").status_code == 200


def test_unscoped_update_and_delete_touch_only_the_callers_rows(app_db, two_users, admin_db):
    alice, bob, tasks = two_users
    with request_scope(app_db, alice.id):
        updated = Task.update(description="touched").execute()
        deleted = Task.delete().where(Task.id.in_(list(tasks[bob.id]))).execute()
    assert (updated, deleted) == (3, 0)
    with admin_db.cursor() as cur:
        cur.execute("SELECT count(*) FROM tasks WHERE user_id = %s AND description IS NULL", (bob.id,))
        assert cur.fetchone()[0] == 2


def test_writing_without_binding_fails(app_db, alice):
    alice.get("/api/users/me")
    with request_scope(app_db), pytest.raises(ProgrammingError, match="row-level security"):
        Task.insert(user=alice.id, title="unbound").execute()


# The setting never outlives its statement ------------------------------------------------------
def test_setting_ends_with_the_statement(app_db, alice):
    with request_scope(app_db, alice.id) as db:
        Task.select().count()  # scoped statement on this connection
        [(after,)] = raw(db, "SELECT current_setting('app.user_id', true)")
        [(bypass,)] = raw(db, "SELECT current_setting('app.bypass_rls', true)")
    assert after in ("", None)
    assert bypass in ("", None)


def test_admin_bypass_ends_with_the_statement(app_db):
    with request_scope(app_db, admin=True) as db:
        User.select().count()
        [(bypass,)] = raw(db, "SELECT current_setting('app.bypass_rls', true)")
    assert bypass in ("", None)


def current_settings(db):
    """The leftover settings on the pool's connection, checked out without any scope."""
    db.unbind()
    with db.connection_context():
        return raw(db, "SELECT pg_backend_pid(), current_setting('app.user_id', true), "
                       "current_setting('app.bypass_rls', true), current_setting('statement_timeout')")[0]


def test_leak_check_notices_a_session_level_setting(database_url):
    """The check used by the hammer below does catch a leak: a session-level set_config
    (`false`), the mistake the pitfalls warn about, survives on the pooled connection."""
    with own_app(database_url, DATABASE_POOL_SIZE="1") as app:
        db = app.extensions["database"]
        with db.connection_context():
            raw(db, "SELECT set_config('app.user_id', 'leaked-user', false)")
        assert current_settings(db)[1] == "leaked-user"
        db.close_all()


def test_no_scope_survives_transactions_or_failed_requests_on_a_pool_of_one(database_url):
    """Requests that open transactions (idempotent creates, exports) or fail half-way (409 from
    the database, 422, 404) leave the one pooled connection with no user, no bypass, no open
    transaction and nothing visible."""
    with own_app(database_url, DATABASE_POOL_SIZE="1") as app:
        db = app.extensions["database"]
        alice, bob = Caller(app.test_client()), Caller(app.test_client())
        alice.create_task(title="a")
        bob.get("/api/users/me")
        baseline = current_settings(db)
        attempts = [
            (alice.get, "/api/users/me/export", {}, 200),
            (alice.post, "/api/tasks", {"json": {"title": "k"}, "headers": {"Idempotency-Key": uuid.uuid4().hex}}, 201),
            (alice.post, "/api/tasks", {"json": {"title": ""}, "headers": {"Idempotency-Key": uuid.uuid4().hex}}, 422),
            (alice.patch, "/api/users/me", {"json": {"email": f"{bob.id}@example.com"}}, 409),
            (alice.get, "/api/tasks/123456789012", {}, 404),
            (alice.post, "/api/tasks", {"data": b"{not json", "content_type": "application/json"}, 400),
        ]
        for send, path, kwargs, status in attempts:
            assert send(path, **kwargs).status_code == status, path
            pid, user, bypass, timeout = current_settings(db)
            assert (user or "", bypass or "", timeout) == ("", "", baseline[3]), path
            with db.connection_context():
                assert db.connection().get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
                assert raw(db, "SELECT count(*) FROM tasks")[0][0] == 0


def test_setting_never_leaks_between_requests_on_a_pool_of_one(database_url, admin_db):
    """Two users hammer a pool of ONE connection from 8 threads: every answer holds only the
    caller's rows, and after every request the connection carries no user, no bypass and the
    server's default statement timeout."""
    with own_app(database_url, DATABASE_POOL_SIZE="1", DATABASE_POOL_TIMEOUT="20") as app:
        db = app.extensions["database"]
        callers = [Caller(app.test_client()) for _ in range(2)]
        owned = {c.id: {c.create_task(title=f"{c.id} {i}")["id"] for i in range(3)} for c in callers}
        baseline = current_settings(db)
        failures, pids, lock = [], set(), threading.Lock()

        def hammer(worker):
            for step in range(30):
                caller = Caller(app.test_client(), callers[(worker + step) % 2].id)
                kind = step % 3
                if kind == 0:
                    response = caller.get("/api/tasks")
                    ids = {t["id"] for t in response.get_json()["tasks"]}
                    owners = {t["user_id"] for t in response.get_json()["tasks"]}
                    ok = response.status_code == 200 and owners == {caller.id} and owned[caller.id] <= ids
                elif kind == 1:
                    response = caller.post("/api/tasks", json={"title": f"w{worker}s{step}"})
                    ok = response.status_code == 201 and response.get_json()["user_id"] == caller.id
                else:
                    response = caller.get("/api/users/me")
                    ok = response.status_code == 200 and response.get_json()["id"] == caller.id
                pid, user, bypass, timeout = current_settings(db)
                with lock:
                    pids.add(pid)
                    if not ok:
                        failures.append((caller.id, response.status_code, response.get_data(as_text=True)[:200]))
                    if user not in ("", None) or bypass not in ("", None) or timeout != baseline[3]:
                        failures.append(("leak", user, bypass, timeout))

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(hammer, range(8), timeout=120))
        assert failures == []
        assert len(pids) == 1, "the pool should have reused its one connection"
    # Every acknowledged write landed with its caller as owner.
    with admin_db.cursor() as cur:
        for caller in callers:
            cur.execute("SELECT count(*), count(*) FILTER (WHERE title LIKE 'w%%') FROM tasks WHERE user_id = %s",
                        (caller.id,))
            total, written = cur.fetchone()
            assert total == 3 + written
        cur.execute("SELECT count(*) FROM tasks WHERE user_id = ANY(%s) AND title LIKE 'w%%'",
                    ([c.id for c in callers],))
        assert cur.fetchone()[0] == 8 * 10


@pytest.mark.slow
def test_no_cross_user_rows_behind_gunicorn_under_a_hammer(database_url):
    """The same hammer over real HTTP: one gunicorn worker, its 4 threads sharing a pool of 4
    (the smallest gunicorn.conf.py allows), 16 client threads of two users interleaving reads
    and writes. Every answer holds only the caller's rows."""
    from tests.conftest import make_token
    from tests.servers import Gunicorn, http

    users = [f"hammer-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    headers = {u: {"Authorization": f"Bearer {make_token(u)}"} for u in users}
    server = Gunicorn(database_url, workers=1, DATABASE_POOL_SIZE="4")
    try:
        for user in users:
            for i in range(2):
                assert http(server.port, "POST", "/api/tasks", {"title": f"seed {i}"}, headers[user]).status == 201
        failures, lock = [], threading.Lock()

        def hammer(worker):
            for step in range(25):
                user = users[(worker + step) % 2]
                if step % 2:
                    response = http(server.port, "POST", "/api/tasks", {"title": f"w{worker}"}, headers[user])
                    ok = response.status == 201 and response.json()["user_id"] == user
                else:
                    response = http(server.port, "GET", "/api/tasks?limit=500", headers=headers[user])
                    ok = response.status == 200 and {t["user_id"] for t in response.json()["tasks"]} == {user}
                if not ok:
                    with lock:
                        failures.append((user, response.status, response.body[:200]))

        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(hammer, range(16), timeout=120))
        assert failures == []
        counts = [http(server.port, "GET", "/api/tasks", headers=headers[u]).json()["count"] for u in users]
        assert sum(counts) == 4 + 16 * 12
    finally:
        server.stop()
