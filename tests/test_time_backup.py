"""Export and import carry the time fields (contract section 6): `remind_at`, `recurrence`,
`completed_at` and the user's `timezone` survive `export` then `import` into a fresh database
identically, and the per-user export (GET /api/users/me/export) shows them."""
import pytest

from tests.test_backup import assert_same_data
from tests.test_cli import FreshDatabase


@pytest.fixture
def fresh(admin_url):
    made = []

    def make():
        made.append(FreshDatabase(admin_url))
        return made[-1]

    yield make
    for item in made:
        item.close()


def populate(db):
    """Users in several zones with reminders, recurring tasks (completed, so with a next occurrence),
    completions and their tags."""
    assert db.run("seed").exit_code == 0
    alice, bob = db.caller("time-alice"), db.caller("time-bob")
    assert alice.patch("/api/users/me", json={"timezone": "Europe/Berlin"}).status_code == 200
    assert bob.patch("/api/users/me", json={"timezone": "Pacific/Chatham"}).status_code == 200
    weekly = alice.create_task(title="stand-up", recurrence="FREQ=WEEKLY;BYDAY=MO,WE;COUNT=5", tags=["work"],
                               due_date="2026-03-23T08:00:00Z", remind_at="2026-03-23T07:45:00.123456Z")
    assert alice.patch(f"/api/tasks/{weekly['id']}/complete").get_json()["next_occurrence"]
    alice.create_task(title="rent", recurrence="RRULE:FREQ=MONTHLY;BYMONTHDAY=-1;UNTIL=20271231",
                      due_date="2026-12-31T17:00:00+01:00")
    alice.create_task(title="call", remind_at="2026-12-01T09:00:00+05:30")
    done = bob.create_task(title="done", completed=True)
    bob.patch(f"/api/tasks/{done['id']}", json={"title": "done, then edited"})  # completed_at stays
    db.caller("time-carol").get("/api/users/me")  # default zone
    gone = bob.create_task(title="deleted", remind_at="2026-12-01T09:00:00Z")
    assert bob.delete(f"/api/tasks/{gone['id']}").status_code == 200  # the next id is past max(id)


def test_export_then_import_keeps_the_time_fields_identically(fresh, tmp_path):
    source = fresh()
    populate(source)
    dump = tmp_path / "time.jsonl"
    exported = source.run("export", str(dump))
    assert exported.exit_code == 0, exported.output
    target = fresh()
    imported = target.run("import", str(dump))
    assert imported.exit_code == 0, imported.output
    assert_same_data(source, target)
    query = ("SELECT u.id, u.timezone, t.title, t.remind_at, t.recurrence, t.completed_at, t.due_date FROM users u "
             "LEFT JOIN tasks t ON t.user_id = u.id WHERE u.id LIKE 'time-%%' ORDER BY u.id, t.id")
    rows = target.query(query)
    assert rows == source.query(query)
    # what the comparison covered: every time field, set
    assert {row[1] for row in rows} == {"Europe/Berlin", "Pacific/Chatham", "UTC"}
    recurring = [row for row in rows if row[4]]
    assert [row[4] for row in recurring] == ["FREQ=WEEKLY;BYDAY=MO,WE;COUNT=5", "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4",
                                             "RRULE:FREQ=MONTHLY;BYMONTHDAY=-1;UNTIL=20271231"]
    assert sum(1 for row in rows if row[3] is not None) == 3 and sum(1 for row in rows if row[5] is not None) == 2
    assert str(rows[0][3]) == "2026-03-23 07:45:00.123456+00:00"  # microseconds kept
    # the service goes on with them: the next occurrence of the imported stand-up
    alice = target.caller("time-alice")
    following = next(t for t in alice.get("/api/tasks").get_json()["tasks"]
                     if (t["recurrence"] or "").endswith("COUNT=4"))
    nxt = alice.patch(f"/api/tasks/{following['id']}/complete").get_json()["next_occurrence"]
    assert (nxt["due_date"], nxt["recurrence"]) == ("2026-03-30T07:00:00+00:00", "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=3")
    assert [tag["name"] for tag in nxt["tags"]] == ["work"]


def test_the_per_user_export_shows_the_time_fields(fresh):
    source = fresh()
    populate(source)
    body = source.caller("time-alice").get("/api/users/me/export").get_json()
    assert body["user"]["timezone"] == "Europe/Berlin"
    by_title = {}
    for task in body["tasks"]:
        by_title.setdefault(task["title"], []).append(task)
    first, second = by_title["stand-up"]
    assert (first["recurrence"], first["remind_at"], first["completed"]) == \
        ("FREQ=WEEKLY;BYDAY=MO,WE;COUNT=5", "2026-03-23T07:45:00.123456+00:00", True)
    assert first["completed_at"] is not None
    assert (second["recurrence"], second["due_date"], second["remind_at"], second["completed_at"]) == \
        ("FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4", "2026-03-25T08:00:00+00:00", "2026-03-25T07:45:00.123456+00:00", None)
    assert by_title["call"][0]["remind_at"] == "2026-12-01T03:30:00+00:00"
