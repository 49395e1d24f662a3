"""The operator commands (`flask --app wsgi seed | seed-bulk | token | export | import`), each run
on a fresh database of its own so counts are exact."""
import json
import os
import subprocess
import sys

import jwt
import pytest

from service import create_app
from tests.conftest import (
    PROJECT,
    SECRET,
    Caller,
    admin_connect,
    create_database,
    drop_database,
    make_config,
    migrate,
    role_url,
)

COMMANDS = ("seed", "seed-bulk", "token", "export", "import")


class FreshDatabase:
    """A new database (migrated unless told otherwise) with an app on it, and a superuser
    connection for checks."""

    def __init__(self, admin_url, migrated=True, **config_overrides):
        self.admin_url = admin_url
        self.name = create_database(admin_url)
        self.url = role_url(admin_url, self.name)
        if migrated:
            _router, db = migrate(self.url, make_config())
            db.close_all()
        self.app = create_app(make_config(**config_overrides), database_url=self.url)
        self.app.config["TESTING"] = True
        self.admin = admin_connect(admin_url, self.name)

    def run(self, *args, input=None):
        """Invoke a CLI command on this app; returns click's Result."""
        return self.app.test_cli_runner().invoke(args=list(args), input=input)

    def query(self, sql, params=None):
        """All rows of `sql`, run as the superuser (no row-level security)."""
        with self.admin.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def caller(self, user_id):
        """A signed-in API user of this app."""
        return Caller(self.app.test_client(), user_id)

    def close(self):
        self.admin.close()
        self.app.extensions["database"].close_all()
        drop_database(self.admin_url, self.name)


@pytest.fixture
def fresh(admin_url):
    """A fresh database with its own app (dropped afterwards)."""
    made = []

    def make(**overrides):
        made.append(FreshDatabase(admin_url, **overrides))
        return made[-1]

    yield make
    for item in made:
        item.close()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(fresh, command):
    result = fresh().run(command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_seed_adds_two_users_and_ten_tasks_and_a_rerun_adds_nothing(fresh):
    db = fresh()
    first = db.run("seed")
    assert first.exit_code == 0, first.output
    assert db.query("SELECT count(*) FROM users") == [(2,)]
    assert db.query("SELECT count(*) FROM tasks") == [(10,)]
    second = db.run("seed")
    assert second.exit_code == 0, second.output
    assert "Seeded 0 users and 0 tasks" in second.output
    assert db.query("SELECT count(*) FROM users") == [(2,)]
    assert db.query("SELECT count(*) FROM tasks") == [(10,)]


def test_seed_gives_tags_categories_and_statuses_and_a_rerun_adds_none(fresh):
    db = fresh()
    assert db.run("seed").exit_code == 0
    counts = "SELECT (SELECT count(*) FROM tags), (SELECT count(*) FROM task_tags), (SELECT count(*) FROM tasks)"
    first = db.query(counts)
    tags_per_user = dict(db.query("SELECT user_id, count(*) FROM tags GROUP BY user_id"))
    assert tags_per_user == {"demo-alice": 3, "demo-bob": 3}
    several = db.query("SELECT count(*) FROM (SELECT task_id FROM task_tags GROUP BY task_id HAVING count(*) > 1) t")
    assert several[0][0] >= 3
    statuses = dict(db.query("SELECT status, count(*) FROM tasks GROUP BY status"))
    assert statuses == {"todo": 5, "in_progress": 2, "done": 3}
    assert db.query("SELECT count(*) FROM tasks WHERE completed") == [(3,)]
    assert db.query("SELECT count(DISTINCT category) FROM tasks")[0][0] >= 4
    assert db.query("SELECT count(*) FROM tasks WHERE category IS NULL")[0][0] >= 1
    second = db.run("seed")
    assert second.exit_code == 0, second.output
    assert db.query(counts) == first
    listed = db.caller("demo-alice").get("/api/tasks?tag=errands&tag=urgent").get_json()
    assert [task["title"] for task in listed["tasks"]] == ["Renew passport"]
    assert [tag["name"] for tag in listed["tasks"][0]["tags"]] == ["errands", "Urgent"]


@pytest.mark.parametrize("env, expected", [
    ({"TASK_STATUSES": "TO_DO,IN_PROGRESS,DONE", "TASK_PRIORITIES": "LOW,MEDIUM,HIGH,URGENT"},
     ({"TO_DO": 5, "IN_PROGRESS": 2, "DONE": 3}, {"LOW", "MEDIUM", "HIGH"})),
    ({"TASK_STATUSES": "backlog,doing,review,shipped", "TASK_PRIORITIES": "minor,major,blocker"},
     ({"backlog": 5, "doing": 2, "shipped": 3}, {"minor", "major", "blocker"})),
    ({"TASK_STATUSES": "open,closed", "TASK_PRIORITIES": "p1,p2"}, ({"open": 7, "closed": 3}, {"p1", "p2"})),
], ids=["uppercase", "other-words", "two-each"])
def test_seed_follows_the_databases_vocabularies(admin_url, env, expected):
    from tests.organising import vocabulary_database

    with vocabulary_database(admin_url, **env) as db:
        result = db.app.test_cli_runner().invoke(args=["seed"])
        assert result.exit_code == 0, result.output
        assert (dict(db.query("SELECT status, count(*) FROM tasks GROUP BY status")),
                {row[0] for row in db.query("SELECT DISTINCT priority FROM tasks")}) == expected
        assert db.query("SELECT count(*) FROM tasks WHERE completed") == [(3,)]


def test_seeded_demo_user_lists_their_tasks_through_the_api(fresh):
    db = fresh()
    db.run("seed")
    response = db.caller("demo-alice").get("/api/tasks")
    assert response.status_code == 200
    assert response.get_json()["count"] == 5


def test_seed_bulk_creates_predictable_users_and_identity_task_ids(fresh):
    db = fresh()
    result = db.run("seed-bulk", "--users", "20", "--tasks-per-user", "5", "--heavy-user-tasks", "300")
    assert result.exit_code == 0, result.output
    per_user = dict(db.query("SELECT user_id, count(*) FROM tasks GROUP BY user_id"))
    assert len(per_user) == 21
    assert per_user["bench-user-00001"] == per_user["bench-user-00020"] == 5
    assert per_user["bench-user-heavy"] == 300
    assert db.query("SELECT min(id), max(id), count(*) FROM tasks") == [(1, 400, 400)]
    # vacuumed after loading: the visibility map lets a user's count read the index alone
    assert db.query("SELECT relallvisible > 0 FROM pg_class WHERE relname = 'tasks'") == [(True,)]
    # created_at = updated_at, version 1, as for freshly created tasks
    assert db.query("SELECT count(*) FROM tasks WHERE created_at <> updated_at OR version <> 1") == [(0,)]
    # the identity sequence moved with the rows: the API's next task gets the next id
    created = db.caller("bench-user-00001").create_task(title="after the bulk seed")
    assert created["id"] == 401
    listed = db.caller("bench-user-heavy").get("/api/tasks?limit=1").get_json()
    assert listed["count"] == 300


def test_seed_bulk_refuses_an_existing_prefix_unless_replace(fresh):
    db = fresh()
    assert db.run("seed-bulk", "--users", "3", "--tasks-per-user", "2").exit_code == 0
    again = db.run("seed-bulk", "--users", "3", "--tasks-per-user", "2")
    assert again.exit_code != 0
    assert "--replace" in again.output
    assert db.query("SELECT count(*) FROM tasks") == [(6,)]
    replaced = db.run("seed-bulk", "--users", "4", "--tasks-per-user", "1", "--replace")
    assert replaced.exit_code == 0, replaced.output
    assert db.query("SELECT count(*) FROM users") == [(4,)]
    assert db.query("SELECT count(*) FROM tasks") == [(4,)]


def test_token_is_accepted_by_the_service(fresh):
    db = fresh()
    result = db.run("token", "cli-user-1", "--email", "cli1@example.com", "--name", "Cli One")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    client = db.app.test_client()
    me = client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.get_json()
    assert me.get_json()["id"] == "cli-user-1"
    assert me.get_json()["email"] == "cli1@example.com"


def test_token_expires_after_ttl(fresh):
    db = fresh()
    token = db.run("token", "cli-user-2", "--ttl", "1").stdout.strip()
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 1


def test_token_refuses_clearly_without_a_secret(fresh):
    db = fresh(BETTER_AUTH_SECRET="")
    result = db.run("token", "someone")
    assert result.exit_code != 0
    assert "BETTER_AUTH_SECRET is not set" in result.output
    assert "Traceback" not in result.output


def test_import_refuses_a_database_holding_data_unless_merge(fresh, tmp_path):
    source = fresh()
    source.run("seed")
    path = tmp_path / "export.jsonl"
    assert source.run("export", str(path)).exit_code == 0
    target = fresh()
    target.run("seed-bulk", "--users", "1", "--tasks-per-user", "1")
    refused = target.run("import", str(path))
    assert refused.exit_code != 0
    assert "--merge" in refused.output
    assert "holds 1 users and 1 tasks" in refused.output
    assert target.query("SELECT count(*) FROM users") == [(1,)]


def test_import_merge_refuses_a_task_id_held_by_another_user(fresh, tmp_path):
    source = fresh()
    source.run("seed")
    path = tmp_path / "export.jsonl"
    source.run("export", str(path))
    target = fresh()
    target.run("seed-bulk", "--users", "1", "--tasks-per-user", "1")
    clash = target.run("import", str(path), "--merge")
    assert clash.exit_code != 0
    assert "another user's task" in clash.output
    assert target.query("SELECT count(*) FROM users") == [(1,)]


def test_import_merge_keeps_existing_rows_and_skips_their_ids(fresh, tmp_path):
    source = fresh()
    source.run("seed")
    path = tmp_path / "export.jsonl"
    source.run("export", str(path))
    target = fresh()
    assert target.run("import", str(path)).exit_code == 0
    target.query("UPDATE tasks SET title = 'changed here' WHERE id = 1 RETURNING id")
    again = target.run("import", str(path), "--merge")
    assert again.exit_code == 0, again.output
    assert "kept 2 users and 10 tasks" in again.output
    assert target.query("SELECT count(*) FROM tasks") == [(10,)]
    assert target.query("SELECT title FROM tasks WHERE id = 1") == [("changed here",)]


def _lines(*records):
    return "".join(json.dumps(r) + "\n" for r in records)


USER = {"type": "user", "id": "imp-user", "email": None, "name": "Imp",
        "created_at": "2020-01-02T03:04:05.123456+00:00", "updated_at": "2021-01-02T03:04:05+00:00"}


def _task(task_id, **fields):
    return {"type": "task", "id": task_id, "user_id": "imp-user", "title": f"t{task_id}",
            "created_at": "2020-05-05T05:05:05.000001+00:00",
            "updated_at": "2020-06-06T06:06:06+00:00", **fields}


@pytest.mark.parametrize(("bad", "message"), [
    ("{not json", "not valid JSON"),
    ('["a list"]', "must be a JSON object"),
    ('{"type": "task", "id": 9, "user_id": "imp-user"}', "title is required"),
    ('{"type": "task", "id": 9, "user_id": "imp-user", "title": "x", "priority": "urgent"}', "priority"),
    ('{"type": "task", "id": 9, "user_id": "imp-user", "title": "x", "due_date": "tomorrow"}', "due_date"),
    ('{"type": "task", "id": 9, "user_id": "nobody", "title": "x"}', "names no user"),
    ('{"type": "task", "id": 1, "user_id": "imp-user", "title": "twice"}', "appears twice"),
    ('{"type": "gadget"}', "type must be"),
])
def test_a_malformed_line_stops_the_import_with_its_number_and_changes_nothing(fresh, tmp_path, bad, message):
    db = fresh()
    path = tmp_path / "bad.jsonl"
    path.write_text(_lines(USER, _task(1), _task(2)) + bad + "\n" + _lines(_task(3)))
    result = db.run("import", str(path))
    assert result.exit_code != 0
    assert "line 4" in result.output, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert db.query("SELECT count(*) FROM users") == [(0,)]
    assert db.query("SELECT count(*) FROM tasks") == [(0,)]


def test_import_keeps_ids_versions_timestamps_and_moves_the_sequence_past_them(fresh, tmp_path):
    db = fresh()
    path = tmp_path / "in.jsonl"
    path.write_text(_lines(USER, _task(7, version=4, completed=True, priority="high",
                                       due_date="2030-01-01T00:00:00+02:00"), _task(500)))
    result = db.run("import", str(path))
    assert result.exit_code == 0, result.output
    rows = db.query("SELECT id, version, completed, priority, due_date::text, created_at::text, "
                    "updated_at::text FROM tasks ORDER BY id")
    assert [r[:4] for r in rows] == [(7, 4, True, "high"), (500, 1, False, "medium")]
    assert db.query("SELECT created_at = '2020-05-05T05:05:05.000001+00:00', "
                    "updated_at = '2020-06-06T06:06:06+00:00', due_date = '2029-12-31T22:00:00+00:00' "
                    "FROM tasks WHERE id = 7") == [(True, True, True)]
    assert db.query("SELECT created_at = '2020-01-02T03:04:05.123456+00:00' FROM users") == [(True,)]
    created = db.caller("imp-user").create_task(title="next")
    assert created["id"] == 501


def test_import_honours_the_exported_next_task_id(fresh, tmp_path):
    db = fresh()
    path = tmp_path / "in.jsonl"
    meta = {"type": "meta", "format": "todo-service-export", "version": 1, "next_task_id": 900}
    path.write_text(_lines(meta, USER, _task(3)))
    assert db.run("import", str(path)).exit_code == 0
    assert db.caller("imp-user").create_task(title="next")["id"] == 900


def test_commands_run_through_the_flask_entry_point(fresh):
    db = fresh()
    env = {**os.environ, "DATABASE_URL": db.url, "BETTER_AUTH_SECRET": SECRET}
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    seeded = subprocess.run([*flask, "seed"], cwd=PROJECT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert seeded.returncode == 0, seeded.stderr
    token = subprocess.run([*flask, "token", "demo-bob"], cwd=PROJECT, env=env, capture_output=True,
                           text=True, timeout=60)
    assert token.returncode == 0, token.stderr
    response = db.app.test_client().get("/api/tasks", headers={
        "Authorization": f"Bearer {token.stdout.strip()}"})
    assert response.get_json()["count"] == 5


def test_export_to_stdout_writes_json_lines(fresh):
    db = fresh()
    db.run("seed")
    result = db.run("export", "-")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[0]["type"] == "meta" and (records[0]["tasks"], records[0]["tags"]) == (10, 6)
    assert [r["type"] for r in records[1:]] == ["user"] * 2 + ["tag"] * 6 + ["task"] * 10


def test_a_failed_export_leaves_no_file_and_says_why_in_one_line(tmp_path):
    app = create_app(make_config(DATABASE_CONNECT_TIMEOUT="2"), database_url="postgresql://nobody@127.0.0.1:1/none")
    path = tmp_path / "out.jsonl"
    result = app.test_cli_runner().invoke(args=["export", str(path)])
    assert result.exit_code == 1
    assert "database error" in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_command_on_an_unmigrated_database_says_to_migrate(admin_url):
    db = FreshDatabase(admin_url, migrated=False)
    try:
        result = db.run("seed")
        assert result.exit_code == 1
        assert "pw_migrate migrate" in result.output
        assert "Traceback" not in result.output
    finally:
        db.close()


def test_seeded_completed_tasks_were_completed_when_last_changed(fresh):
    db = fresh()
    db.run("seed")
    assert db.query("SELECT count(*) FROM tasks WHERE completed AND completed_at = updated_at") == [(3,)]
    assert db.query("SELECT count(*) FROM tasks WHERE completed_at IS NOT NULL") == [(3,)]
