"""The schema facts of the contract's data section, checked directly in the database.

Most statements here are raw SQL on a superuser connection, so they bypass the Python layer (and
row-level security): what is rejected here is rejected by PostgreSQL itself.
"""
import re
import threading
import time
import uuid

import psycopg2
import pytest
from psycopg2 import errors

from tests.conftest import admin_connect, create_database, drop_database, make_config, migrate, role_url

SORT_INDEXES = {
    "tasks_user_created": "(user_id, created_at, id)",
    "tasks_user_updated": "(user_id, updated_at, id)",
    "tasks_user_title": "(user_id, title, id)",
    "tasks_user_priority_order": "(user_id, priority_order, id)",
    "tasks_user_due_asc": "(user_id, due_date, id)",
    "tasks_user_due_desc": "(user_id, due_date DESC NULLS LAST, id DESC)",
}


def _fresh_database(admin_url):
    name = create_database(admin_url, prefix="todo_schema")
    _router, db = migrate(role_url(admin_url, name), make_config())
    db.close_all()
    conn = admin_connect(admin_url, name)
    yield conn
    conn.close()
    drop_database(admin_url, name)


@pytest.fixture
def fresh_db(admin_url):
    """A superuser connection to a database of this test's own, freshly migrated."""
    yield from _fresh_database(admin_url)


@pytest.fixture(scope="module")
def catalog(admin_url):
    """A superuser connection to a freshly migrated database, for reading its catalog."""
    yield from _fresh_database(admin_url)


@pytest.fixture
def db(database_url, admin_db):
    """A superuser connection to the run's (migrated) database."""
    return admin_db


def new_user(cur, email=None):
    """Insert a user with a fresh id; returns the id."""
    user_id = f"user-{uuid.uuid4().hex[:12]}"
    cur.execute("INSERT INTO users (id, email) VALUES (%s, %s)", (user_id, email))
    return user_id


def insert_tasks(cur, user_id, count):
    """Insert `count` tasks for `user_id`; returns their ids in insertion order."""
    cur.execute("INSERT INTO tasks (user_id, title) SELECT %s, 'task ' || n "
                "FROM generate_series(1, %s) AS n ORDER BY n RETURNING id", (user_id, count))
    return sorted(row[0] for row in cur.fetchall())


def rows(cur, query, params=()):
    cur.execute(query, params)
    return cur.fetchall()


# --- Catalog: tables, columns, constraints, indexes, triggers --------------------------------

def test_tables_exist_after_migrating_a_fresh_database(catalog):
    with catalog.cursor() as cur:
        tables = {r[0] for r in rows(cur, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"users", "tasks", "idempotency_keys", "migratehistory"} <= tables


@pytest.mark.parametrize("table, column, data_type, nullable, default", [
    ("users", "id", "text", "NO", None),
    ("users", "email", "text", "YES", None),
    ("users", "name", "text", "YES", None),
    ("users", "created_at", "timestamp with time zone", "NO", "now()"),
    ("users", "updated_at", "timestamp with time zone", "NO", "now()"),
    ("tasks", "id", "bigint", "NO", None),
    ("tasks", "user_id", "text", "NO", None),
    ("tasks", "title", "character varying", "NO", None),
    ("tasks", "description", "text", "YES", None),
    ("tasks", "completed", "boolean", "NO", "false"),
    ("tasks", "priority", "text", "NO", "'medium'::text"),
    ("tasks", "due_date", "timestamp with time zone", "YES", None),
    ("tasks", "version", "integer", "NO", "1"),
    ("tasks", "created_at", "timestamp with time zone", "NO", "now()"),
    ("tasks", "updated_at", "timestamp with time zone", "NO", "now()"),
])
def test_columns_have_the_contract_types(catalog, table, column, data_type, nullable, default):
    with catalog.cursor() as cur:
        found = rows(cur, "SELECT data_type, is_nullable, column_default, character_maximum_length "
                          "FROM information_schema.columns WHERE table_schema = 'public' "
                          "AND table_name = %s AND column_name = %s", (table, column))
    assert len(found) == 1, f"{table}.{column} missing"
    assert found[0][:3] == (data_type, nullable, default)
    if column == "title":
        assert found[0][3] == 200


def test_task_id_is_an_identity_column(catalog):
    with catalog.cursor() as cur:
        found = rows(cur, "SELECT is_identity FROM information_schema.columns "
                          "WHERE table_name = 'tasks' AND column_name = 'id'")
    assert found == [("YES",)]


def test_check_constraints_exist(catalog):
    with catalog.cursor() as cur:
        checks = rows(cur, "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
                           "WHERE contype = 'c' AND connamespace = 'public'::regnamespace")
    by_table = {}
    for table, definition in checks:
        by_table.setdefault(table, []).append(definition)
    task_checks = " ".join(by_table.get("tasks", []))
    user_checks = " ".join(by_table.get("users", []))
    for needle in ("char_length((title)::text) >= 1", "description", "category", "completed_at IS NOT NULL"):
        assert needle in task_checks, task_checks
    tag_checks = " ".join(by_table.get("tags", []))
    for needle in ("char_length(name) >= 1", "char_length(name) <= 50", "#[0-9A-Fa-f]{6}"):
        assert needle in tag_checks, tag_checks
    for needle in ("char_length(id)", "email", "char_length(name) <= 255"):
        assert needle in user_checks, user_checks


def test_task_owner_is_a_cascading_foreign_key(catalog):
    with catalog.cursor() as cur:
        fks = rows(cur, "SELECT confrelid::regclass::text, confdeltype, pg_get_constraintdef(oid) "
                        "FROM pg_constraint WHERE contype = 'f' AND conrelid = 'tasks'::regclass")
    owner = [definition for table, action, definition in fks if table == "users"]
    assert owner == ["FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE"], fks
    # The vocabularies: each value must be one of its lookup table's; renames cascade.
    vocabularies = sorted(definition for table, _, definition in fks if table != "users")
    assert vocabularies == ["FOREIGN KEY (priority) REFERENCES task_priorities(value) ON UPDATE CASCADE",
                            "FOREIGN KEY (status) REFERENCES task_statuses(value) ON UPDATE CASCADE"], fks


def test_idempotency_keys_belong_to_a_user_and_cascade(catalog):
    with catalog.cursor() as cur:
        fks = rows(cur, "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                        "WHERE contype = 'f' AND conrelid = 'idempotency_keys'::regclass")
        pk = rows(cur, "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                       "WHERE contype = 'p' AND conrelid = 'idempotency_keys'::regclass")
    assert fks == [("FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE",)]
    assert pk == [("PRIMARY KEY (user_id, key)",)]


def test_row_level_security_is_enabled_and_forced_on_every_user_table(catalog):
    with catalog.cursor() as cur:
        flags = rows(cur, "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
                          "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace "
                          "AND relname <> 'migratehistory' ORDER BY relname")
        policies = {r[0] for r in rows(cur, "SELECT tablename FROM pg_policies WHERE schemaname = 'public'")}
    tables = ["idempotency_keys", "tags", "task_completion_days", "task_priorities", "task_statuses",
              "task_tags", "task_tallies", "tasks", "users"]
    assert flags == [(table, True, True) for table in tables]
    assert policies == set(tables)


def test_the_six_sort_indexes_are_led_by_user_id(catalog):
    with catalog.cursor() as cur:
        indexes = dict(rows(cur, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'tasks'"))
    for name, columns in SORT_INDEXES.items():
        assert name in indexes, sorted(indexes)
        assert indexes[name].endswith(f"USING btree {columns}"), indexes[name]


def test_email_lookup_has_a_case_insensitive_unique_index(catalog):
    with catalog.cursor() as cur:
        found = rows(cur, "SELECT indexdef FROM pg_indexes WHERE tablename = 'users' AND indexdef LIKE %s",
                     ("%lower(email)%",))
    assert found == [("CREATE UNIQUE INDEX users_email_lower_key ON public.users USING btree (lower(email))",)]


def test_update_triggers_exist(catalog):
    with catalog.cursor() as cur:
        triggers = rows(cur, "SELECT tgrelid::regclass::text, pg_get_triggerdef(oid) FROM pg_trigger "
                             "WHERE NOT tgisinternal ORDER BY 1")
    touching = [(table, definition) for table, definition in triggers if "touch" in definition]
    assert [table for table, _ in touching] == ["tags", "tasks", "users"]
    for _table, definition in touching:
        assert "BEFORE UPDATE" in definition and "FOR EACH ROW" in definition, definition


# --- Task ids ----------------------------------------------------------------------------------

def test_first_task_id_is_1(fresh_db):
    with fresh_db.cursor() as cur:
        assert insert_tasks(cur, new_user(cur), 1) == [1]


def test_deleted_task_ids_are_never_reused(fresh_db):
    with fresh_db.cursor() as cur:
        user_id = new_user(cur)
        assert insert_tasks(cur, user_id, 100) == list(range(1, 101))
        # Delete the newest 50: a max(id)+1 scheme would hand out 51 next.
        cur.execute("DELETE FROM tasks WHERE id > 50")
        assert cur.rowcount == 50
        assert insert_tasks(cur, user_id, 10) == list(range(101, 111))


def test_concurrent_inserts_get_distinct_ids(fresh_db, admin_url):
    with fresh_db.cursor() as cur:
        user_id = new_user(cur)
    database = fresh_db.get_dsn_parameters()["dbname"]
    connections = [admin_connect(admin_url, database) for _ in range(50)]
    barrier = threading.Barrier(len(connections), timeout=30)
    ids, failures = [], []

    def insert(conn):
        try:
            with conn.cursor() as cur:
                barrier.wait()
                cur.execute("INSERT INTO tasks (user_id, title) VALUES (%s, 'concurrent') RETURNING id",
                            (user_id,))
                ids.append(cur.fetchone()[0])
        except Exception as error:
            failures.append(error)

    threads = [threading.Thread(target=insert, args=(conn,)) for conn in connections]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        for conn in connections:
            conn.close()
    assert failures == []
    assert len(ids) == 50 and len(set(ids)) == 50


# --- Ownership: NOT NULL, foreign key, cascade --------------------------------------------------

def test_deleting_a_user_removes_all_their_tasks(db):
    with db.cursor() as cur:
        user_id, other = new_user(cur), new_user(cur)
        insert_tasks(cur, user_id, 50)
        insert_tasks(cur, other, 3)
        cur.execute("DELETE FROM users WHERE id = %s", (user_id,))
        assert rows(cur, "SELECT count(*) FROM tasks WHERE user_id = %s", (user_id,)) == [(0,)]
        assert rows(cur, "SELECT count(*) FROM tasks WHERE user_id = %s", (other,)) == [(3,)]


def test_task_for_an_unknown_user_is_a_foreign_key_violation(db):
    with db.cursor() as cur, pytest.raises(errors.ForeignKeyViolation):
        cur.execute("INSERT INTO tasks (user_id, title) VALUES (%s, 'orphan')", (f"ghost-{uuid.uuid4()}",))


def test_null_user_id_is_rejected(db):
    with db.cursor() as cur, pytest.raises(errors.NotNullViolation):
        cur.execute("INSERT INTO tasks (user_id, title) VALUES (NULL, 'nobody')")


def test_empty_user_id_is_rejected(db):
    with db.cursor() as cur:
        with pytest.raises(errors.CheckViolation):
            cur.execute("INSERT INTO users (id) VALUES ('')")
        with pytest.raises(errors.ForeignKeyViolation):
            cur.execute("INSERT INTO tasks (user_id, title) VALUES ('', 'nobody')")


# --- Task field rules, enforced by the database -----------------------------------------------

@pytest.mark.parametrize("column, value, error", [
    ("title", "x" * 201, errors.StringDataRightTruncation),
    ("title", "", errors.CheckViolation),
    ("title", "   ", errors.CheckViolation),
    ("title", "\t\n", errors.CheckViolation),
    ("title", " leading", errors.CheckViolation),
    ("title", "trailing ", errors.CheckViolation),
    ("title", None, errors.NotNullViolation),
    ("description", "d" * 1001, errors.CheckViolation),
    ("priority", "urgent", errors.ForeignKeyViolation),
    ("priority", "HIGH", errors.ForeignKeyViolation),
    ("priority", None, errors.NotNullViolation),
], ids=["title-201", "title-empty", "title-blank", "title-whitespace", "title-leading-space",
        "title-trailing-space", "title-null", "description-1001", "priority-unknown", "priority-case",
        "priority-null"])
def test_the_database_rejects_an_invalid_task(db, column, value, error):
    fields = {"title": "valid", column: value}
    with db.cursor() as cur:
        user_id = new_user(cur)
        with pytest.raises(error):
            cur.execute(f"INSERT INTO tasks (user_id, {', '.join(fields)}) "
                        f"VALUES (%s{', %s' * len(fields)})", (user_id, *fields.values()))


def test_the_database_accepts_the_limits(db):
    with db.cursor() as cur:
        user_id = new_user(cur)
        cur.execute("INSERT INTO tasks (user_id, title, description, priority) VALUES (%s, %s, %s, 'high') "
                    "RETURNING char_length(title), char_length(description), completed, version",
                    (user_id, "t" * 200, "d" * 1000))
        assert cur.fetchone() == (200, 1000, False, 1)
        cur.execute("INSERT INTO tasks (user_id, title) VALUES (%s, 'a b') RETURNING priority", (user_id,))
        assert cur.fetchone() == ("medium",)


def test_an_update_cannot_break_the_rules_either(db):
    with db.cursor() as cur:
        user_id = new_user(cur)
        (task_id,) = insert_tasks(cur, user_id, 1)
        with pytest.raises(errors.CheckViolation):
            cur.execute("UPDATE tasks SET title = ' ' WHERE id = %s", (task_id,))
        with pytest.raises(errors.ForeignKeyViolation):
            cur.execute("UPDATE tasks SET priority = 'urgent' WHERE id = %s", (task_id,))


# --- Users: case-insensitive unique email ----------------------------------------------------

@pytest.mark.parametrize("second", ["same", "upper", "mixed"])
def test_duplicate_email_is_rejected_also_differing_only_by_case(db, second):
    local = f"dup-{uuid.uuid4().hex[:8]}"
    email = f"{local}@example.com"
    duplicate = {"same": email, "upper": email.upper(), "mixed": f"{local.title()}@Example.COM"}[second]
    with db.cursor() as cur:
        new_user(cur, email)
        with pytest.raises(errors.UniqueViolation):
            new_user(cur, duplicate)


def test_users_without_email_do_not_collide(db):
    with db.cursor() as cur:
        new_user(cur)
        new_user(cur)  # NULLs are distinct under a unique index


# --- Timestamps and version -------------------------------------------------------------------

def test_timestamps_are_set_by_the_database_and_an_update_advances_updated_at(db):
    db.autocommit = False
    try:
        with db.cursor() as cur:
            user_id = new_user(cur)
            cur.execute("INSERT INTO tasks (user_id, title) VALUES (%s, 'clock') "
                        "RETURNING id, created_at, updated_at, version, now()", (user_id,))
            task_id, created, updated, version, now = cur.fetchone()
        db.commit()
        # The transaction's own clock, not the client's; now() is aware, and an aware datetime
        # never equals a naive one, so this also proves the columns are timestamptz.
        assert created == updated == now
        assert version == 1

        time.sleep(0.01)
        with db.cursor() as cur:
            cur.execute("UPDATE tasks SET completed = true WHERE id = %s "
                        "RETURNING created_at, updated_at, version, now()", (task_id,))
            created_after, updated_after, version_after, now_after = cur.fetchone()
        db.commit()
    finally:
        db.rollback()
        db.autocommit = True
    assert created_after == created
    assert updated_after == now_after and updated_after > updated
    assert version_after == 2


def test_an_update_cannot_forge_the_clock_or_the_version(db):
    with db.cursor() as cur:
        user_id = new_user(cur)
        (task_id,) = insert_tasks(cur, user_id, 1)
        cur.execute("SELECT created_at FROM tasks WHERE id = %s", (task_id,))
        (created,) = cur.fetchone()
        cur.execute("UPDATE tasks SET created_at = '2000-01-01Z', updated_at = '2000-01-01Z', version = 40 "
                    "WHERE id = %s RETURNING created_at, updated_at > '2020-01-01Z', version", (task_id,))
        assert cur.fetchone() == (created, True, 2)
        cur.execute("UPDATE users SET created_at = '2000-01-01Z' WHERE id = %s RETURNING created_at > '2020-01-01Z'",
                    (user_id,))
        assert cur.fetchone() == (True,)


def test_user_updated_at_advances_on_update(db):
    with db.cursor() as cur:
        user_id = new_user(cur)
        cur.execute("SELECT created_at, updated_at FROM users WHERE id = %s", (user_id,))
        created, updated = cur.fetchone()
        assert created == updated and created.tzinfo is not None
        time.sleep(0.01)
        cur.execute("UPDATE users SET name = 'Renamed' WHERE id = %s RETURNING created_at, updated_at", (user_id,))
        created_after, updated_after = cur.fetchone()
    assert created_after == created and updated_after > updated


def test_timestamps_are_timezone_aware_through_the_models(app, db):
    from service.db.models import Task, User

    with db.cursor() as cur:
        user_id = new_user(cur)
        (task_id,) = insert_tasks(cur, user_id, 1)
        cur.execute("UPDATE tasks SET due_date = '2030-05-01T12:00:00+02:00' WHERE id = %s", (task_id,))
    db = app.extensions["database"]
    db.bind_user(user_id)
    try:
        # bind_ctx: other tests' apps may have re-pointed the models' shared proxy meanwhile.
        with db.bind_ctx([User, Task]), db.connection_context():
            task = Task.get((Task.user == user_id) & (Task.id == task_id))
            user = User.get_by_id(user_id)
    finally:
        db.unbind()
    for value in (task.created_at, task.updated_at, task.due_date, user.created_at, user.updated_at):
        assert value.tzinfo is not None and value.utcoffset() is not None, value
    assert task.due_date.isoformat() == "2030-05-01T10:00:00+00:00"
    assert task.version == 2 and task.updated_at > task.created_at


def test_rows_are_invisible_to_the_app_role_without_a_user(admin_url, database_name, db):
    with db.cursor() as cur:
        insert_tasks(cur, new_user(cur), 1)
    conn = psycopg2.connect(role_url(admin_url, database_name))
    try:
        with conn.cursor() as cur:
            assert rows(cur, "SELECT count(*) FROM tasks") == [(0,)]
    finally:
        conn.close()


# --- Plans: a user's task list reads an index in every sort --------------------------------------

SORT_INDEX = {"created": "tasks_user_created", "created_at": "tasks_user_created",
              "updated": "tasks_user_updated", "updated_at": "tasks_user_updated",
              "title": "tasks_user_title", "priority": "tasks_user_priority_order"}
BIG_USER = "plan-big"


@pytest.fixture(scope="module")
def planned(admin_url):
    """A fresh database with 40,000 tasks over 201 users, 3,000 of them one user's: a heavy user,
    yet a small share of the table as in production (a user owning half of a tiny table is rightly
    read by a sequential scan); vacuumed and analyzed;
    yields the app's kind of database object on it, as the ordinary (row-level secured) role."""
    from service.db import make_database
    from service.db.models import Task, User

    name = create_database(admin_url, prefix="todo_plan")
    url = role_url(admin_url, name)
    _router, migrated = migrate(url, make_config())
    migrated.close_all()
    conn = admin_connect(admin_url, name)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO users (id) SELECT 'plan-' || n FROM generate_series(1, 200) AS n")
        cur.execute("INSERT INTO users (id) VALUES (%s)", (BIG_USER,))
        cur.execute("""
            INSERT INTO tasks (user_id, title, description, completed, priority, due_date, created_at, updated_at)
            SELECT CASE WHEN n <= 3000 THEN %s ELSE 'plan-' || (n %% 200 + 1) END,
                   'task ' || md5(n::text),
                   CASE WHEN n %% 3 = 0 THEN 'about ' || md5(n::text) END,
                   n %% 4 = 0,
                   (ARRAY['low', 'medium', 'high'])[n %% 3 + 1],
                   CASE WHEN n %% 2 = 0 THEN now() + n * interval '1 hour' END,
                   now() - n * interval '1 minute', now() - n * interval '30 seconds'
            FROM generate_series(1, 40000) AS n""", (BIG_USER,))
        # As autovacuum leaves a table in service: statistics and a set visibility map.
        cur.execute("VACUUM (ANALYZE) users, tasks")
    conn.close()
    db = make_database(make_config(), url)
    with db.bind_ctx([User, Task]):
        yield db
    db.close_all()
    drop_database(admin_url, name)


def list_queries(db, user_id, sort, order):
    """The list queries the task store sends for `sort`/`order`: plain, filtered, and a cursor
    page; each a (label, sql, params), captured as the store sends them."""
    from werkzeug.datastructures import MultiDict

    from service.db import database
    from service.list_params import parse_list_params
    from service.store import tasks as store
    from service.vocabularies import DEFAULT_VOCABULARIES as VOCABULARIES

    def sent(args):
        """The statements store.page sends for `args`, and its answer."""
        statements = []
        original = db.execute_sql

        def record(sql, params=None, **options):
            statements.append((sql, params))
            return original(sql, params, **options)

        db.execute_sql = record
        previous = database.obj
        database.initialize(db)  # the store sends through the shared proxy
        db.open_for(user_id)
        try:
            return statements, store.page(user_id, parse_list_params(MultiDict(args), VOCABULARIES), VOCABULARIES)
        finally:
            db.release()
            del db.execute_sql
            database.initialize(previous)

    base = {"sort": sort, "order": order}
    first_sent, first_page = sent({**base, "limit": "10"})
    assert first_page["next_cursor"], "the user needs more than one page"
    variants = {
        "plain": base,
        "filtered": {**base, "status": "pending", "priority": "high", "search": "ab"},
        "cursor": {**base, "limit": "10", "cursor": first_page["next_cursor"]},
    }
    queries = []
    for label, args in variants.items():
        statements, _ = sent(args)
        assert len(statements) == 1, statements
        queries.append((label, *statements[0]))
    return queries


def explain(db, user_id, sql, params):
    """The plan of `sql` as `user_id` (app.user_id set, row-level security active)."""
    db.bind_user(user_id)
    try:
        with db.connection_context():
            return "\n".join(row[0] for row in db.execute_sql("EXPLAIN " + sql, params).fetchall())
    finally:
        db.unbind()


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort", ["created", "created_at", "updated", "updated_at", "title", "due_date",
                                  "priority"])
def test_task_list_reads_an_index_in_every_sort(planned, sort, order):
    from service.list_params import SORTS

    assert sort in SORTS
    expected = SORT_INDEX.get(sort) or ("tasks_user_due_desc" if order == "desc" else "tasks_user_due_asc")
    for user_id in (BIG_USER, "plan-7"):
        for label, sql, params in list_queries(planned, user_id, sort, order):
            plan = explain(planned, user_id, sql, params)
            where = f"{user_id} {label}:\n{plan}"
            assert "Seq Scan" not in plan, where
            # The policies read app.user_id once per statement, as an InitPlan (migration 004).
            assert re.search(r"\(InitPlan \d+\)\.col1|\$\d", plan), "row-level security not applied: " + where
            assert "Index Scan" in plan, where
            if user_id == BIG_USER and label != "filtered":
                # 3,000 rows: the page comes off the sort's own index, with no sort step. (With
                # selective filters a bitmap read of the user's rows and a small sort is fine.)
                assert f"using {expected} on tasks" in plan, where
                assert "Sort" not in plan.split("SubPlan")[0].split("InitPlan")[0], where


def test_every_offered_sort_is_checked():
    from service.list_params import SORTS

    assert set(SORTS) == set(SORT_INDEX) | {"due_date"}
