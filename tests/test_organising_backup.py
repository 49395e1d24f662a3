"""Export and import (format 2) carry section 6's data: statuses, categories, completion times, tags
and their links, identical after a round trip (next ids included), with default and custom
vocabularies; a version-1 file (before tags and statuses) still imports; the per-user export
carries it too."""
import json

import pytest

from service.ops.admin_db import next_id
from tests.organising import CUSTOM, VocabularyDatabase

TABLES = {"users": "id", "tags": "id", "tasks": "id", "task_tags": "task_id, tag_id"}


@pytest.fixture
def fresh(admin_url):
    """Databases of the test's own (`fresh(**env)`: vocabularies), dropped afterwards."""
    made = []

    def make(**env):
        made.append(VocabularyDatabase(admin_url, **env))
        return made[-1]

    yield make
    for item in made:
        item.close()


def populate(db, states):
    """Two users with tags (coloured, renamed, one deleted: the next tag id is past the last),
    tasks in every state, with categories and several tags, one re-completed, one deleted."""
    first, middle, last = states[0], states[1], states[-1]
    alice, bob = db.caller("backup-alice"), db.caller("backup-bob")
    home = alice.post("/api/tags", json={"name": "Home", "color": "#00AA00"}).get_json()
    alice.patch(f"/api/tags/{home['id']}", json={"name": "home"})
    doomed = alice.post("/api/tags", json={"name": "doomed"}).get_json()
    made = [alice.create_task(title="work one", category="Work", tags=["home", "urgent", "doomed"], status=middle),
            alice.create_task(title="done", category="errands", tags=["home"], status=last),
            alice.create_task(title="plain", status=first),
            alice.create_task(title="tab\tand \\N", category="x" * 50, tags=["ünïcode ✓", "urgent"], priority="high")]
    alice.patch(f"/api/tasks/{made[2]['id']}/complete")
    alice.patch(f"/api/tasks/{made[2]['id']}/complete")
    alice.patch(f"/api/tasks/{made[2]['id']}/complete")  # completed again: completed_at is the latest
    alice.delete(f"/api/tags/{doomed['id']}")
    gone = alice.create_task(title="deleted", tags=["home"])
    alice.delete(f"/api/tasks/{gone['id']}")
    bob.create_task(title="bob's", tags=["home"], category="Work", completed=True)
    bob.post("/api/tags", json={"name": "unused", "color": "#ffffff"})
    last = bob.post("/api/tags", json={"name": "the last, deleted"}).get_json()
    bob.delete(f"/api/tags/{last['id']}")


def rows(db, table):
    return db.query(f"SELECT * FROM {table} ORDER BY {TABLES[table]}")  # noqa: S608 - constants


def following_ids(db):
    with db.admin.cursor() as cursor:
        return next_id(cursor, "tasks"), next_id(cursor, "tags")


def round_trip(fresh, tmp_path, env):
    source = fresh(**env)
    populate(source, source.config.vocabularies.status.values)
    dump = tmp_path / "todo.jsonl"
    exported = source.app.test_cli_runner().invoke(args=["export", str(dump)])
    assert exported.exit_code == 0, exported.output
    target = fresh(**env)
    imported = target.app.test_cli_runner().invoke(args=["import", str(dump)])
    assert imported.exit_code == 0, imported.output
    return source, target, dump


@pytest.mark.parametrize("env", [{}, CUSTOM], ids=["default", "custom"])
def test_export_then_import_keeps_statuses_categories_tags_and_links(fresh, tmp_path, env):
    source, target, dump = round_trip(fresh, tmp_path, env)
    for table in TABLES:
        expected = rows(source, table)
        assert expected, f"{table} should not be empty"
        assert rows(target, table) == expected, table
    assert following_ids(target) == following_ids(source)
    tags_max = source.query("SELECT max(id) FROM tags")[0][0]
    assert following_ids(source)[1] > tags_max + 1  # the deleted tag's id stays unused
    for user in ("backup-alice", "backup-bob"):
        assert target.caller(user).get("/api/tasks").get_json() == source.caller(user).get("/api/tasks").get_json()
        assert target.caller(user).get("/api/tags").get_json() == source.caller(user).get("/api/tags").get_json()
    meta = json.loads(dump.read_text().splitlines()[0])
    assert (meta["version"], meta["tags"], meta["tasks"]) == (2, 5, 5)
    # the service carries on where the source would have, for tasks and tags
    for db in (source, target):
        db.caller("backup-alice").create_task(title="after", tags=["brand new"])
    for table in ("tags", "tasks"):
        assert [row[:2] for row in rows(target, table)] == [row[:2] for row in rows(source, table)], table


def test_the_file_carries_the_section_6_fields(fresh, tmp_path):
    source, _target, dump = round_trip(fresh, tmp_path, {})
    records = [json.loads(line) for line in dump.read_text().splitlines()]
    tasks = {record["title"]: record for record in records if record["type"] == "task"}
    tags = {record["id"]: record["name"] for record in records if record["type"] == "tag"}
    work = tasks["work one"]
    assert (work["status"], work["category"], work["completed_at"]) == ("in_progress", "Work", None)
    assert sorted(tags[tag_id] for tag_id in work["tag_ids"]) == ["home", "urgent"]
    assert tasks["plain"]["status"] == "done" and tasks["plain"]["completed_at"]
    assert "tags" not in work and "is_completed" not in work  # computed members are not stored
    assert {record["type"] for record in records} == {"meta", "user", "tag", "task"}


def test_a_file_whose_status_the_configuration_lacks_is_refused(fresh, tmp_path):
    source, _target, dump = round_trip(fresh, tmp_path, CUSTOM)
    target = fresh()
    result = target.app.test_cli_runner().invoke(args=["import", str(dump)])
    assert result.exit_code == 1
    assert "status must be one of todo, in_progress, done" in result.output
    assert target.query("SELECT count(*) FROM tasks") == [(0,)]
    assert source.query("SELECT count(*) FROM tasks")[0][0] == 5


@pytest.mark.parametrize("bad, message", [
    ({"tag_ids": [99]}, "tag_ids names a tag that is not the task's user's"),
    ({"tag_ids": "1"}, "tag_ids must be a list"),
    ({"tag_ids": [1] * 21 + list(range(2, 22))}, "tag_ids must be a list of at most 20"),
    ({"category": " padded"}, "category must not start or end with whitespace"),
    ({"status": "IN PROGRESS"}, "status must be one of"),
])
def test_a_bad_task_line_stops_the_import(fresh, tmp_path, bad, message):
    lines = version_2_file()
    task = json.loads(lines[-1])
    task.update(bad)
    lines[-1] = json.dumps(task)
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    target = fresh()
    result = target.app.test_cli_runner().invoke(args=["import", str(path)])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert f"line {len(lines)}" in result.output or "refused" in result.output
    assert target.query("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM tags)") == [(0, 0)]


def version_2_file():
    return [json.dumps(record) for record in (
        {"type": "meta", "format": "todo-service-export", "version": 2, "exported_at": "2026-12-01T00:00:00+00:00",
         "users": 1, "tags": 1, "tasks": 1, "next_task_id": 5, "next_tag_id": 3},
        {"type": "user", "id": "v2-user", "email": None, "name": None,
         "created_at": "2026-11-01T00:00:00+00:00", "updated_at": "2026-11-01T00:00:00+00:00"},
        {"type": "tag", "id": 2, "user_id": "v2-user", "name": "home", "color": None,
         "created_at": "2026-11-01T00:00:00+00:00", "updated_at": "2026-11-01T00:00:00+00:00"},
        {"type": "task", "id": 4, "user_id": "v2-user", "title": "t", "description": None, "completed": False,
         "priority": "medium", "status": "in_progress", "completed_at": None, "category": "Work", "due_date": None,
         "version": 3, "created_at": "2026-11-01T00:00:00+00:00", "updated_at": "2026-11-02T00:00:00+00:00",
         "tag_ids": [2]},
    )]


def test_a_version_1_file_still_imports(fresh, tmp_path):
    """Before tags and statuses: a completed task lands in the last state, the others in the first."""
    records = [
        {"type": "meta", "format": "todo-service-export", "version": 1, "exported_at": "2026-11-30T00:00:00+00:00",
         "users": 1, "tasks": 2, "next_task_id": 10},
        {"type": "user", "id": "v1-user", "email": "v1@example.com", "name": "Old",
         "created_at": "2026-01-01T00:00:00+00:00", "updated_at": "2026-01-02T00:00:00+00:00"},
        {"type": "task", "id": 3, "user_id": "v1-user", "title": "open", "description": None, "completed": False,
         "priority": "high", "due_date": None, "version": 2,
         "created_at": "2026-02-01T00:00:00+00:00", "updated_at": "2026-02-02T00:00:00+00:00"},
        {"type": "task", "id": 7, "user_id": "v1-user", "title": "finished", "description": "d", "completed": True,
         "priority": "low", "due_date": "2026-03-01T00:00:00+00:00", "version": 4,
         "created_at": "2026-03-01T00:00:00+00:00", "updated_at": "2026-03-05T10:00:00+00:00"},
    ]
    path = tmp_path / "v1.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    target = fresh(**CUSTOM)
    result = target.app.test_cli_runner().invoke(args=["import", str(path)])
    assert result.exit_code == 0, result.output
    found = target.query("SELECT id, status, completed, completed_at::text, category, version, updated_at::text "
                         "FROM tasks ORDER BY id")
    # completed_at: the moment it was last changed, as migration 005 does for tasks it finds completed
    assert found == [(3, "backlog", False, None, None, 2, "2026-02-02 00:00:00+00"),
                     (7, "done", True, "2026-03-05 10:00:00+00", None, 4, "2026-03-05 10:00:00+00")]
    assert following_ids(target)[0] == 10
    listed = target.caller("v1-user").get("/api/tasks").get_json()
    assert [(t["status"], t["tags"]) for t in listed["tasks"]] == [("done", []), ("backlog", [])]


def test_the_per_user_export_carries_tags_and_the_section_6_fields(fresh):
    db = fresh()
    alice = db.caller("export-alice")
    task = alice.create_task(title="mine", tags=["b", "A"], category="Work", status="in_progress")
    db.caller("export-bob").create_task(title="not mine", tags=["bobs"])
    response = alice.get("/api/users/me/export")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment")
    body = response.get_json()
    assert [tag["name"] for tag in body["tags"]] == ["A", "b"]
    assert body["tasks"] == [alice.get(f"/api/tasks/{task['id']}").get_json()]
    exported = body["tasks"][0]
    assert (exported["status"], exported["category"], exported["completed_at"], [t["name"] for t in exported["tags"]]) \
        == ("in_progress", "Work", None, ["A", "b"])
    assert "bobs" not in response.get_data(as_text=True)
