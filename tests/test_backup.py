"""Backup and restore round trips (docs/backup.md): `export` then `import` into a fresh,
migrated database, and `pg_dump` then `pg_restore` run as the app role; afterwards every row
and the next task id compare equal."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from service.db import embedded
from service.ops.admin_db import next_id
from tests.test_cli import FreshDatabase

TABLES = {"users": "id", "tasks": "id", "idempotency_keys": "user_id, key"}


@pytest.fixture
def fresh(admin_url):
    """Make fresh migrated databases with an app each (dropped afterwards)."""
    made = []

    def make(migrated=True):
        made.append(FreshDatabase(admin_url, migrated=migrated))
        return made[-1]

    yield make
    for item in made:
        item.close()


def populate(db):
    """Demo, bulk and hand-made data with the awkward cases: edited tasks (version > 1, updated_at
    after created_at), deleted ids at the end (the next id is past max(id)), text that COPY must
    escape, nulls, idempotency keys."""
    assert db.run("seed").exit_code == 0
    assert db.run("seed-bulk", "--users", "5", "--tasks-per-user", "20").exit_code == 0
    alice = db.caller("backup-alice")
    assert alice.post("/api/users", json={"name": "Ålice \\ \"quoted\"\ttab"}).status_code == 201
    alice.post("/api/tasks", json={"title": "idempotent"}, headers={"Idempotency-Key": "backup-key-1"})
    made = [alice.create_task(title=f"round trip {n}", description="line one\nline two\r\n\\N tab\there ✓",
                              priority="high", due_date="2031-02-03T04:05:06.789+01:00") for n in range(5)]
    alice.patch(f"/api/tasks/{made[0]['id']}", json={"title": "edited once", "description": None})
    alice.patch(f"/api/tasks/{made[1]['id']}/complete")
    for task in made[3:]:
        assert alice.delete(f"/api/tasks/{task['id']}").status_code == 200
    db.caller("backup-bob-no-email").get("/api/users/me")


def rows(db, table):
    return db.query(f"SELECT * FROM {table} ORDER BY {TABLES[table]}")  # noqa: S608 - constants


def following_id(db):
    with db.admin.cursor() as cursor:
        return next_id(cursor)


def assert_same_data(source, target, tables=("users", "tasks")):
    for table in tables:
        expected = rows(source, table)
        assert expected, f"{table} should not be empty"
        assert rows(target, table) == expected, table
    assert following_id(target) == following_id(source)
    assert following_id(source) > source.query("SELECT max(id) FROM tasks")[0][0] + 1  # deleted ids stay unused


def test_export_then_import_into_a_fresh_database_keeps_every_row_and_the_next_id(fresh, tmp_path):
    source = fresh()
    populate(source)
    dump = tmp_path / "todo.jsonl"
    exported = source.run("export", str(dump))
    assert exported.exit_code == 0, exported.output
    target = fresh()
    imported = target.run("import", str(dump))
    assert imported.exit_code == 0, imported.output
    assert_same_data(source, target)
    # and the service carries on where the source would have
    assert (target.caller("backup-alice").create_task(title="after restore")["id"]
            == source.caller("backup-alice").create_task(title="after restore")["id"])


def server_major(db):
    return int(db.query("SHOW server_version_num")[0][0]) // 10000


def client_bin_dir(major):
    """A folder with pg_dump/pg_restore of the server's major version (the embedded server's,
    or a Debian postgresql-client's), or None."""
    candidates = [embedded.bin_dir(), Path(f"/usr/lib/postgresql/{major}/bin")]
    if shutil.which("pg_restore"):
        candidates.append(Path(shutil.which("pg_restore")).parent)
    for folder in candidates:
        tool = folder / "pg_restore"
        if tool.exists():
            version = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False).stdout
            found = re.search(r"(\d+)", version)
            if found and int(found.group(1)) == major:
                return folder
    return None


def test_pg_dump_and_pg_restore_as_the_app_role_keep_every_row_and_the_next_id(fresh, tmp_path):
    source = fresh()
    populate(source)
    folder = client_bin_dir(server_major(source))
    if folder is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"no pg_dump/pg_restore for PostgreSQL {server_major(source)}")
        pytest.skip(f"no pg_dump/pg_restore for PostgreSQL {server_major(source)} on this machine")
    dump = tmp_path / "todo.dump"
    # The commands of docs/backup.md, as the app role (not a superuser).
    backup = subprocess.run(
        [folder / "pg_dump", "--enable-row-security", "--format=custom", "--no-owner", "--no-privileges",
         "--file", dump, source.url],
        env={**os.environ, "PGOPTIONS": "-c app.bypass_rls=on"}, capture_output=True, text=True, timeout=120)
    assert backup.returncode == 0, backup.stderr
    target = fresh(migrated=False)  # empty: the dump brings the schema and the migration history
    restore = subprocess.run(
        [folder / "pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
         "--dbname", target.url, dump], capture_output=True, text=True, timeout=120)
    assert restore.returncode == 0, restore.stderr
    assert_same_data(source, target, tables=("users", "tasks", "idempotency_keys"))
    assert target.app.test_client().get("/readyz").status_code == 200
    # row-level security came back with the schema: the app role sees nothing unscoped
    assert target.caller("backup-alice").get("/api/tasks").get_json()["count"] == 4
