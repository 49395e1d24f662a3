"""The due-date list parameters (contract section 6, "List parameters added"): `due_before`
(exclusive) and `due_after` (inclusive), each an instant or a date meaning that day's start in the
user's time zone; `overdue`; `has_due_date`. At their bounds, in every route family."""
from datetime import UTC, datetime, timedelta

import pytest

PREFIXES = ["/api", "/api/{user}", "/api/v1", "/api/v1/{user}"]


def listed(caller, prefix="/api", **params):
    """The titles the list shows for `params`, in due-date order, checked against its counts."""
    response = caller.get(prefix.format(user=caller.id) + "/tasks",
                          query_string={"sort": "due_date", "order": "asc", "limit": "500", **params})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["count"] == body["total"] == len(body["tasks"])
    return [task["title"] for task in body["tasks"]]


def set_zone(caller, zone):
    assert caller.patch("/api/users/me", json={"timezone": zone}).status_code == 200


@pytest.fixture
def around(alice):
    """Alice's tasks due around 2026-12-01T11:00Z (midnight of 2 December in Auckland, NZDT)."""
    for title, due in (("a", "2026-12-01T10:59:59Z"), ("b", "2026-12-01T11:00:00Z"),
                       ("c", "2026-12-01T23:59:59.999999Z"), ("d", "2026-12-02T00:00:00Z"), ("none", None)):
        alice.create_task(title=title, due_date=due)
    return alice


@pytest.mark.parametrize("prefix", PREFIXES)
def test_due_before_an_instant_is_exclusive_and_due_after_inclusive(around, prefix):
    assert listed(around, prefix, due_before="2026-12-01T11:00:00Z") == ["a"]
    assert listed(around, prefix, due_after="2026-12-01T11:00:00Z") == ["b", "c", "d"]
    assert listed(around, prefix, due_after="2026-12-01T10:59:59Z", due_before="2026-12-02T00:00:00Z") == \
        ["a", "b", "c"]
    assert listed(around, prefix, due_after="2026-12-01T11:00:00Z", due_before="2026-12-01T11:00:00Z") == []


def test_an_instant_may_carry_any_offset_and_without_one_is_utc(around):
    assert listed(around, due_before="2026-12-01T12:00:00+01:00") == ["a"]
    assert listed(around, due_after="2026-12-01T06:00:00-05:00") == ["b", "c", "d"]
    assert listed(around, due_before="2026-12-01T11:00:00") == ["a"]
    assert listed(around, due_after="2026-12-01T23:59:59.999999Z") == ["c", "d"]


def test_a_date_is_that_days_start_in_utc_for_a_utc_user(around):
    assert listed(around, due_before="2026-12-02") == ["a", "b", "c"]
    assert listed(around, due_after="2026-12-02") == ["d"]
    assert listed(around, due_after="2026-12-01", due_before="2026-12-02") == ["a", "b", "c"]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_date_is_that_days_start_in_the_users_zone(around, prefix):
    set_zone(around, "Pacific/Auckland")  # 2 December starts at 2026-12-01T11:00Z
    assert listed(around, prefix, due_before="2026-12-02") == ["a"]
    assert listed(around, prefix, due_after="2026-12-02") == ["b", "c", "d"]
    assert listed(around, prefix, due_after="2026-12-01", due_before="2026-12-02") == ["a"]
    set_zone(around, "America/Los_Angeles")  # 2 December starts at 08:00Z
    assert listed(around, prefix, due_before="2026-12-02") == ["a", "b", "c", "d"]
    assert listed(around, prefix, due_after="2026-12-02") == []
    assert listed(around, prefix, due_after="2026-12-01") == ["a", "b", "c", "d"]  # 1 Dec 08:00Z


def test_dates_follow_daylight_saving_in_the_users_zone(alice):
    set_zone(alice, "Europe/Berlin")
    for title, due in (("sat-late", "2026-03-28T22:59:59Z"), ("sun-start", "2026-03-28T23:00:00Z"),
                       ("sun-late", "2026-03-29T21:59:59Z"), ("mon-start", "2026-03-29T22:00:00Z")):
        alice.create_task(title=title, due_date=due)
    # Sunday 29 March 2026 starts at 00:00 CET (23:00Z) and Monday at 00:00 CEST (22:00Z)
    assert listed(alice, due_after="2026-03-29", due_before="2026-03-30") == ["sun-start", "sun-late"]
    assert listed(alice, due_before="2026-03-29") == ["sat-late"]
    assert listed(alice, due_after="2026-03-30") == ["mon-start"]


def test_the_date_of_another_users_zone_does_not_apply(around, bob):
    set_zone(bob, "Pacific/Auckland")
    bob.create_task(title="bob's", due_date="2026-12-01T10:00:00Z")
    assert listed(around, due_before="2026-12-02") == ["a", "b", "c"]  # alice is still UTC
    assert listed(bob, due_before="2026-12-02") == ["bob's"]


@pytest.fixture
def dated(alice):
    """Alice's tasks: overdue, due in the past but completed, due in the future, due in the future
    but completed, and without a due date."""
    now = datetime.now(UTC)
    for title, due, done in (("late", now - timedelta(hours=1), False), ("late-done", now - timedelta(days=2), True),
                             ("soon", now + timedelta(hours=1), False), ("soon-done", now + timedelta(days=1), True),
                             ("undated", None, False), ("undated-done", None, True)):
        alice.create_task(title=title, due_date=due and due.isoformat(), completed=done)
    return alice


@pytest.mark.parametrize("prefix", PREFIXES)
def test_overdue_true_is_due_before_now_and_not_completed_false_is_every_other_task(dated, prefix):
    assert listed(dated, prefix, overdue="true") == ["late"]
    assert sorted(listed(dated, prefix, overdue="false")) == ["late-done", "soon", "soon-done", "undated",
                                                             "undated-done"]
    assert listed(dated, prefix, overdue="TRUE") == ["late"]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_has_due_date(dated, prefix):
    assert listed(dated, prefix, has_due_date="true") == ["late-done", "late", "soon", "soon-done"]
    assert sorted(listed(dated, prefix, has_due_date="false")) == ["undated", "undated-done"]


def test_the_due_filters_combine_with_each_other_and_the_counts(dated):
    assert listed(dated, overdue="false", has_due_date="true") == ["late-done", "soon", "soon-done"]
    assert listed(dated, overdue="true", has_due_date="false") == []
    body = dated.get("/api/tasks", query_string={"has_due_date": "true", "status": "pending"}).get_json()
    assert [t["title"] for t in body["tasks"]] == ["soon", "late"]  # newest first
    assert (body["count"], body["completed_count"], body["pending_count"]) == (2, 2, 2)
    soon = datetime.now(UTC) + timedelta(minutes=30)
    assert listed(dated, due_after=soon.isoformat(), has_due_date="true") == ["soon", "soon-done"]


def test_another_users_tasks_never_match(dated, bob):
    assert listed(bob, overdue="false") == []
    assert listed(bob, has_due_date="true") == []


@pytest.mark.parametrize("name, value", [
    ("due_before", "tomorrow"), ("due_before", "2026-13-01"), ("due_after", "2026-12-01T25:00:00Z"),
    ("due_after", "1 December"), ("due_before", "2026-12-01T10:00:00+24:00"), ("overdue", "yes"),
    ("overdue", "1"), ("has_due_date", "maybe"), ("has_due_date", "0"),
])
@pytest.mark.parametrize("prefix", ["/api", "/api/{user}"])
def test_a_bad_value_is_422_naming_the_parameter(alice, name, value, prefix):
    response = alice.get(prefix.format(user=alice.id) + "/tasks", query_string={name: value})
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == [name]
