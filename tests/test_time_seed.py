"""`flask seed` (contract section 5) with the time features: each demo user has a recurring task
with a due date and a due reminder; a rerun changes nothing."""
from tests.test_cli import fresh  # noqa: F401 - the fixture


def test_seed_gives_each_demo_user_a_recurring_task_and_a_due_reminder(fresh):  # noqa: F811
    db = fresh()
    assert db.run("seed").exit_code == 0
    for user_id in ("demo-alice", "demo-bob"):
        demo = db.caller(user_id)
        recurring = [t for t in demo.get("/api/tasks").get_json()["tasks"] if t["recurrence"]]
        assert len(recurring) == 1 and recurring[0]["due_date"] and not recurring[0]["completed"]
        due = demo.get("/api/reminders").get_json()
        assert due["count"] == 1 and due["tasks"][0]["completed"] is False
        following = demo.patch(f"/api/tasks/{recurring[0]['id']}/complete").get_json()["next_occurrence"]
        assert following["title"] == recurring[0]["title"]


def test_a_rerun_of_seed_changes_no_task(fresh):  # noqa: F811
    db = fresh()
    assert db.run("seed").exit_code == 0
    before = db.query("SELECT * FROM tasks ORDER BY id")
    assert sum(1 for row in db.query("SELECT recurrence FROM tasks") if row[0]) == 2
    assert db.query("SELECT count(*) FROM tasks WHERE remind_at <= now() AND NOT completed") == [(2,)]
    again = db.run("seed")
    assert again.exit_code == 0 and "Seeded 0 users and 0 tasks" in again.output
    assert db.query("SELECT * FROM tasks ORDER BY id") == before
