"""`flask --app wsgi doctor`: all green on a good database; each fact broken in a scratch database
of its own (a dropped index, a dropped or loosened policy, NO FORCE, disabled row-level security,
a pending migration, a superuser or BYPASSRLS role, a missing column, a disabled trigger, too
many connections) is named by the check it breaks, and the exit status is non-zero."""
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from peewee_migrate import Router
from psycopg2 import sql
from psycopg2.extensions import parse_dsn

from service.db import embedded, make_database
from tests.conftest import (
    MIGRATIONS,
    PROJECT,
    SECRET,
    admin_connect,
    create_database,
    drop_database,
    make_config,
    migrate,
    role_url,
)
from tests.servers import fresh_app
from tests.test_pgbouncer import bouncer_url, pgbouncer_binary  # noqa: F401 - fixtures

STEPS = sorted(path.stem for path in MIGRATIONS.glob("[0-9][0-9][0-9]_*.py"))
FLASK = Path(sys.executable).with_name("flask")


def run_doctor(url, *args):
    """(exit code, {check name: check}) of `doctor --json` against `url`, in this process."""
    with fresh_app(url) as app:
        result = app.test_cli_runner().invoke(args=["doctor", "--json", *args])
    document = json.loads(result.output)
    checks = {check["name"]: check for check in document["checks"]}
    assert document["ok"] is (result.exit_code == 0), result.output
    return result.exit_code, checks


def failing(checks):
    return {name: check["detail"] for name, check in checks.items() if check["status"] == "fail"}


@pytest.fixture
def scratch(admin_url):
    """A freshly migrated database of this test's own: (name, app-role URL, superuser connection)."""
    name = create_database(admin_url, prefix="todo_doctor")
    url = role_url(admin_url, name)
    _router, db = migrate(url, make_config())
    db.close_all()
    conn = admin_connect(admin_url, name)
    yield name, url, conn
    conn.close()
    drop_database(admin_url, name)


def break_with(conn, *statements):
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


def test_a_good_database_passes_every_check_and_the_doctor_changes_nothing(scratch):
    name, url, conn = scratch
    code, checks = run_doctor(url)
    assert code == 0, failing(checks)
    assert {check["status"] for check in checks.values()} == {"pass"}
    assert {"server version", "connection latency", "time zone", "migrations", "tables", "columns", "types",
            "constraints", "indexes", "triggers", "functions", "row-level-security policies",
            "row-level security", "service role", "list plan", "connections", "pooler"} == set(checks)
    assert "tasks_user_title" in checks["list plan"]["detail"]
    assert "no transaction pooler" in checks["pooler"]["detail"]
    with conn.cursor() as cur:
        cur.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'doctor%'")
        assert cur.fetchall() == [], "the scratch schema outlived the doctor's transaction"
        cur.execute("SELECT count(*) FROM migratehistory")
        assert cur.fetchone()[0] == len(STEPS)


def test_a_dropped_index_is_named(scratch):
    _name, url, conn = scratch
    break_with(conn, "DROP INDEX tasks_user_title")
    code, checks = run_doctor(url)
    assert code == 1
    assert failing(checks) == {"indexes": "missing: tasks_user_title on tasks"}


def test_a_dropped_policy_is_named(scratch):
    _name, url, conn = scratch
    break_with(conn, "DROP POLICY tasks_owner ON tasks")
    code, checks = run_doctor(url)
    assert code == 1
    assert failing(checks) == {"row-level-security policies": "missing: tasks_owner on tasks"}


def test_a_loosened_policy_and_an_extra_permissive_one_are_named(scratch):
    _name, url, conn = scratch
    break_with(conn, "ALTER POLICY users_owner ON users USING (true)",
               "CREATE POLICY everyone ON tasks USING (true)")
    code, checks = run_doctor(url)
    assert code == 1
    detail = failing(checks)["row-level-security policies"]
    assert "differs from the migrations: users_owner on users" in detail
    assert "not in the migrations: everyone on tasks" in detail


@pytest.mark.parametrize(("statement", "reason"), [
    ("ALTER TABLE tasks NO FORCE ROW LEVEL SECURITY", "tasks: not FORCEd"),
    ("ALTER TABLE users DISABLE ROW LEVEL SECURITY", "users: row-level security is disabled"),
])
def test_row_level_security_not_forced_or_disabled_is_named(scratch, statement, reason):
    _name, url, conn = scratch
    break_with(conn, statement)
    code, checks = run_doctor(url)
    assert code == 1
    assert set(failing(checks)) == {"row-level security"}
    assert failing(checks)["row-level security"].startswith(reason)


def test_a_missing_column_and_a_changed_type_are_named(scratch):
    _name, url, conn = scratch
    break_with(conn, "ALTER TABLE tasks DROP COLUMN description",
               "ALTER TABLE users ALTER COLUMN name TYPE varchar(100)")
    code, checks = run_doctor(url)
    assert code == 1
    assert failing(checks)["columns"] == ("missing: description on tasks; "
                                          "differs from the migrations: name on users")


def test_a_disabled_trigger_is_named(scratch):
    _name, url, conn = scratch
    break_with(conn, "ALTER TABLE tasks DISABLE TRIGGER tasks_touch")
    code, checks = run_doctor(url)
    assert code == 1
    assert failing(checks) == {"triggers": "differs from the migrations: tasks_touch on tasks"}


def test_a_pending_migration_is_named(admin_url):
    name = create_database(admin_url, prefix="todo_doctor")
    try:
        url = role_url(admin_url, name)
        db = make_database(make_config(), url)
        Router(db, migrate_dir=MIGRATIONS, ignore=["basemodel"]).run(STEPS[-2])
        db.close_all()
        code, checks = run_doctor(url)
    finally:
        drop_database(admin_url, name)
    assert code == 1
    assert checks["migrations"]["status"] == "fail"
    assert checks["migrations"]["detail"] == f"pending: {STEPS[-1]} (run pw_migrate migrate)"


def test_an_empty_database_says_to_migrate(admin_url):
    name = create_database(admin_url, prefix="todo_doctor")
    try:
        code, checks = run_doctor(role_url(admin_url, name))
    finally:
        drop_database(admin_url, name)
    assert code == 1
    assert "run pw_migrate migrate" in checks["migrations"]["detail"]
    # Every table the migrations create, each named (from the migrations, not a list kept here).
    assert checks["tables"]["detail"] == ("missing: idempotency_keys, tags, task_completion_days, task_priorities, "
                                          "task_statuses, task_tags, task_tallies, tasks, users")
    assert checks["indexes"]["detail"].endswith(" missing with their tables")  # not listed twice


def test_a_superuser_role_is_named(scratch, admin_url):
    name, _url, _conn = scratch
    superuser = embedded.role_url(admin_url, name, parse_dsn(admin_url).get("user", "postgres"))
    code, checks = run_doctor(superuser)
    assert code == 1
    assert set(failing(checks)) == {"service role"}
    assert "is a superuser" in checks["service role"]["detail"]


def test_a_bypassrls_role_is_named(admin_url):
    role = f"todo_doctor_bypass_{uuid.uuid4().hex[:6]}"
    name = f"todo_doctor_{uuid.uuid4().hex[:10]}"
    embedded.ensure_database(admin_url, name, role)
    conn = admin_connect(admin_url)
    try:
        break_with(conn, sql.SQL("ALTER ROLE {} BYPASSRLS").format(sql.Identifier(role)))
        url = role_url(admin_url, name, role)
        _router, db = migrate(url, make_config())
        db.close_all()
        code, checks = run_doctor(url)
    finally:
        drop_database(admin_url, name)
        break_with(conn, sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
        conn.close()
    assert code == 1
    assert failing(checks) == {"service role": f"{role} is BYPASSRLS: row-level security does not apply "
                                               "to it; connect as an ordinary role"}


def test_more_pooled_connections_than_the_server_allows_fail(scratch):
    _name, url, _conn = scratch
    code, checks = run_doctor(url, "--workers", "200", "--instances", "3")  # 2400 > max_connections
    assert code == 1
    assert set(failing(checks)) == {"connections"}
    assert checks["connections"]["detail"].startswith(
        "200 workers x 4 connections (pool 10, 4 threads) x 3 instance(s) = 2400 at most")


def test_an_unreachable_database_is_one_failing_line(tmp_path):
    code, checks = run_doctor(f"postgresql://nobody@/todo?host={tmp_path}&port=1")
    assert code == 1
    assert list(checks) == ["connection"]
    assert checks["connection"]["detail"].startswith("cannot connect:")


def test_transaction_pooling_is_detected_through_pgbouncer(bouncer_url):  # noqa: F811 - the fixture
    code, checks = run_doctor(bouncer_url)
    assert "transaction pooling detected" in checks["pooler"]["detail"]
    assert checks["pooler"]["status"] == "pass"
    assert code == 0, failing(checks)


def test_the_command_from_the_project_root_prints_a_checklist_and_exits_by_it(scratch):
    _name, url, conn = scratch
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "PG"))},
           "DATABASE_URL": url, "BETTER_AUTH_SECRET": SECRET}

    def doctor():
        return subprocess.run([str(FLASK), "--app", "wsgi", "doctor"], cwd=PROJECT, env=env,
                              capture_output=True, text=True, timeout=120)

    good = doctor()
    assert good.returncode == 0, good.stdout + good.stderr
    lines = good.stdout.strip().splitlines()
    assert all(line.startswith("PASS  ") for line in lines[:-1]), good.stdout
    assert lines[-1] == f"{len(lines) - 1} checks: {len(lines) - 1} pass, 0 warn, 0 fail"
    break_with(conn, "DROP INDEX tasks_user_created")
    bad = doctor()
    assert bad.returncode == 1
    assert "FAIL  indexes" in bad.stdout and "tasks_user_created on tasks" in bad.stdout
    assert "Traceback" not in bad.stderr
