"""Reminders (contract section 6): `remind_at`, and GET /api/reminders listing the caller's tasks
not completed whose reminder is at or before now (or `until`), earliest first, with their count.
A frontend clears or snoozes one by setting `remind_at`."""
from datetime import UTC, datetime, timedelta

import pytest

PREFIXES = ["/api", "/api/{user}", "/api/v1", "/api/v1/{user}"]


def reminders(caller, prefix="/api", **params):
    response = caller.get(prefix.format(user=caller.id) + "/reminders", query_string=params)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert set(body) == {"tasks", "count"}
    return body


def titles(body):
    return [task["title"] for task in body["tasks"]]


def ago(**delta):
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


@pytest.fixture
def reminded(alice):
    """Alice's reminders: three due (out of order), one due on a completed task, one to come, none."""
    alice.create_task(title="second", remind_at=ago(hours=2))
    alice.create_task(title="third", remind_at=ago(minutes=1))
    alice.create_task(title="first", remind_at=ago(days=3))
    alice.create_task(title="done", remind_at=ago(days=4), completed=True)
    alice.create_task(title="later", remind_at=ago(hours=-5))
    alice.create_task(title="never")
    return alice


def test_remind_at_is_stored_returned_in_utc_and_cleared_with_null(alice):
    task = alice.create_task(remind_at="2026-12-01T09:30:00+01:00")
    assert task["remind_at"] == "2026-12-01T08:30:00+00:00"
    assert alice.create_task()["remind_at"] is None
    cleared = alice.patch(f"/api/tasks/{task['id']}", json={"remind_at": None})
    assert cleared.status_code == 200 and cleared.get_json()["remind_at"] is None
    bad = alice.patch(f"/api/tasks/{task['id']}", json={"remind_at": "soon"})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "remind_at"


@pytest.mark.parametrize("prefix", PREFIXES)
def test_due_reminders_earliest_first_never_completed_nor_future(reminded, prefix):
    body = reminders(reminded, prefix)
    assert titles(body) == ["first", "second", "third"]
    assert body["count"] == 3
    assert body["tasks"][0] == reminded.get(f"/api/tasks/{body['tasks'][0]['id']}").get_json()


def test_until_replaces_now_and_is_inclusive(alice):
    for title, at in (("a", "2026-12-01T08:00:00Z"), ("b", "2026-12-01T09:00:00Z"),
                      ("c", "2026-12-01T09:00:00.000001Z"), ("d", "2030-01-01T00:00:00Z")):
        alice.create_task(title=title, remind_at=at)
    assert titles(reminders(alice, until="2026-12-01T09:00:00Z")) == ["a", "b"]
    assert titles(reminders(alice, until="2026-12-01T10:00:00+01:00")) == ["a", "b"]
    assert titles(reminders(alice, until="2026-12-01T07:59:59Z")) == []
    assert titles(reminders(alice, until="2030-01-01T00:00:00Z")) == ["a", "b", "c", "d"]
    assert titles(reminders(alice)) == ["a", "b", "c"]  # now: 2030 is still to come


def test_reminders_at_the_same_moment_are_ordered_by_id(alice):
    ids = [alice.create_task(title=f"same {n}", remind_at="2026-01-01T00:00:00Z")["id"] for n in range(3)]
    assert [t["id"] for t in reminders(alice)["tasks"]] == ids


def test_count_is_every_due_reminder_and_limit_caps_the_tasks(alice):
    for n in range(5):
        alice.create_task(title=f"r{n}", remind_at=ago(minutes=10 - n))
    body = reminders(alice, limit="2")
    assert titles(body) == ["r0", "r1"] and body["count"] == 5
    assert titles(reminders(alice, limit="500")) == ["r0", "r1", "r2", "r3", "r4"]


def test_no_reminders_is_an_empty_list(alice):
    alice.create_task(title="never")
    assert reminders(alice) == {"tasks": [], "count": 0}


def test_completing_a_task_takes_it_off_and_un_completing_puts_it_back(reminded):
    first = reminders(reminded)["tasks"][0]
    reminded.patch(f"/api/tasks/{first['id']}/complete")
    assert titles(reminders(reminded)) == ["second", "third"]
    reminded.patch(f"/api/tasks/{first['id']}/complete")
    assert titles(reminders(reminded)) == ["first", "second", "third"]
    done = reminded.get("/api/tasks", query_string={"search": "done"}).get_json()["tasks"][0]
    reminded.patch(f"/api/tasks/{done['id']}/status", json={"status": "in_progress"})
    assert titles(reminders(reminded)) == ["done", "first", "second", "third"]


def test_snoozing_and_clearing_by_setting_remind_at(reminded):
    first, second, _ = reminders(reminded)["tasks"]
    snoozed = reminded.patch(f"/api/tasks/{first['id']}", json={"remind_at": ago(minutes=-10)})
    assert snoozed.status_code == 200
    assert titles(reminders(reminded)) == ["second", "third"]
    assert titles(reminders(reminded, until=ago(minutes=-11))) == ["second", "third", "first"]
    reminded.patch(f"/api/tasks/{second['id']}", json={"remind_at": None})
    assert titles(reminders(reminded)) == ["third"]


def test_another_users_reminders_are_never_listed(reminded, bob):
    assert reminders(bob) == {"tasks": [], "count": 0}
    bob.create_task(title="bob's", remind_at=ago(days=10))
    assert titles(reminders(reminded)) == ["first", "second", "third"]
    assert titles(reminders(bob)) == ["bob's"]


@pytest.mark.parametrize("name, value", [("until", "tomorrow"), ("until", "2026-12-01T25:00:00Z"),
                                         ("until", "12/01/2026"), ("until", "2026-12-01T00:00:00+24:00"),
                                         ("limit", "0"), ("limit", "501"), ("limit", "ten"), ("limit", "-1")])
@pytest.mark.parametrize("prefix", ["/api", "/api/{user}", "/api/v1"])
def test_a_bad_parameter_is_422_naming_it(alice, name, value, prefix):
    response = alice.get(prefix.format(user=alice.id) + "/reminders", query_string={name: value})
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["code"] == "validation_failed"
    assert [e["field"] for e in problem["errors"]] == [name]


def test_another_ids_reminders_are_403_and_need_a_token(client, alice, bob):
    assert alice.get(f"/api/{bob.id}/reminders").status_code == 403
    assert alice.get(f"/api/v1/{bob.id}/reminders").status_code == 403
    assert client.get("/api/reminders").status_code == 401


def test_a_recurring_tasks_next_occurrence_brings_its_reminder_back(alice):
    task = alice.create_task(title="weekly", recurrence="FREQ=WEEKLY", due_date=ago(days=1),
                             remind_at=ago(days=1, hours=1))
    assert titles(reminders(alice)) == ["weekly"]
    following = alice.patch(f"/api/tasks/{task['id']}/complete").get_json()["next_occurrence"]
    assert reminders(alice) == {"tasks": [], "count": 0}  # next week's reminder is still to come
    assert titles(reminders(alice, until=following["remind_at"])) == ["weekly"]


def test_until_may_also_be_a_date_meaning_that_days_start_in_the_users_zone(alice):
    alice.patch("/api/users/me", json={"timezone": "Pacific/Auckland"})  # 2 December starts at 11:00Z
    alice.create_task(title="before", remind_at="2026-12-01T10:59:59Z")
    alice.create_task(title="at", remind_at="2026-12-01T11:00:00Z")
    alice.create_task(title="after", remind_at="2026-12-01T11:00:01Z")
    assert titles(reminders(alice, until="2026-12-02")) == ["before", "at"]
