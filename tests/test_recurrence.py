"""Recurring tasks (contract section 6, "Due dates, reminders, recurrence"): the rule, its checks
(in the service and in PostgreSQL itself), and the next occurrence a completion creates, in the
user's time zone, through every route that completes a task, in every route family."""
import time
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import psycopg2
import pytest

from service import recurrence
from tests.servers import race

PREFIXES = ["/api", "/api/{user}", "/api/v1", "/api/v1/{user}"]
# Every way a client completes a task: (method, path suffix, body).
COMPLETIONS = {
    "toggle": ("PATCH", "/complete", None),
    "complete-true": ("PATCH", "/complete", {"completed": True}),
    "status-route": ("PATCH", "/status", {"status": "done"}),
    "patch-completed": ("PATCH", "", {"completed": True}),
    "put-completed": ("PUT", "", {"completed": True}),
    "patch-status": ("PATCH", "", {"status": "done"}),
}


def tasks_url(caller, prefix="/api"):
    return prefix.format(user=caller.id) + "/tasks"


def set_zone(caller, zone):
    response = caller.patch("/api/users/me", json={"timezone": zone})
    assert response.status_code == 200, response.get_json()


def complete(caller, task_id, how="complete-true", prefix="/api", **kwargs):
    method, suffix, body = COMPLETIONS[how]
    extra = {"json": body} if body is not None else {}
    return caller.request(method, f"{tasks_url(caller, prefix)}/{task_id}{suffix}", **extra, **kwargs)


def completed(caller, task_id, **kwargs):
    """The body of a successful completion."""
    response = complete(caller, task_id, **kwargs)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def all_tasks(caller):
    return caller.get("/api/tasks?limit=500&sort=created&order=asc").get_json()["tasks"]


def local(instant, zone):
    """An ISO instant as (weekday, HH:MM) in `zone`."""
    moment = datetime.fromisoformat(instant).astimezone(ZoneInfo(zone))
    return moment.strftime("%a"), moment.strftime("%H:%M")


# --- The rule -------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["FREQ=WEEKLY;BYDAY=MO,WE", "FREQ=MONTHLY;BYMONTHDAY=1;COUNT=6",
                                  "freq=daily;interval=2", "RRULE:FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=-1",
                                  "FREQ=DAILY;UNTIL=20270101T000000Z", "FREQ=WEEKLY;UNTIL=20270101",
                                  "FREQ=MONTHLY;BYDAY=1MO;WKST=SU"])
def test_a_rule_is_returned_as_given(alice, rule):
    task = alice.create_task(recurrence=rule, due_date="2026-12-07T09:00:00Z")
    assert task["recurrence"] == rule
    assert alice.get(f"/api/tasks/{task['id']}").get_json()["recurrence"] == rule


def test_recurrence_defaults_to_null_and_null_clears_it(alice):
    assert alice.create_task()["recurrence"] is None
    task = alice.create_task(recurrence="FREQ=DAILY", due_date="2026-12-07T09:00:00Z")
    cleared = alice.patch(f"/api/tasks/{task['id']}", json={"recurrence": None})
    assert cleared.status_code == 200 and cleared.get_json()["recurrence"] is None
    # no longer recurring: completing it creates nothing
    assert "next_occurrence" not in completed(alice, task["id"])
    assert len(all_tasks(alice)) == 2


@pytest.mark.parametrize("rule, says", [
    ("FREQ=HOURLY", "FREQ must be one of DAILY, WEEKLY, MONTHLY, YEARLY"),
    ("INTERVAL=2", "FREQ must be one of"),
    ("FREQ=DAILY;BYHOUR=9", "BYHOUR is not supported"),
    ("FREQ=DAILY;FREQ=WEEKLY", "FREQ is given twice"),
    ("FREQ=DAILY;COUNT=0", "COUNT must be a whole number >= 1"),
    ("FREQ=DAILY;COUNT=two", "COUNT must be a whole number >= 1"),
    ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be a whole number >= 1"),
    ("FREQ=DAILY;COUNT=2;UNTIL=20270101T000000Z", "COUNT and UNTIL cannot both be given"),
    ("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY values must be -31..-1 or 1..31"),
    ("FREQ=YEARLY;BYMONTH=13", "BYMONTH values must be 1..12"),
    ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "never occurs"),
    ("FREQ=WEEKLY;BYDAY=XX", "BYDAY values must be MO, TU, WE, TH, FR, SA or SU"),
    ("FREQ=DAILY;WKST=XX", "is not a valid RRULE"),
    # ordinal weekdays that never come (dateutil would search to the year 9999 for them)
    ("FREQ=MONTHLY;BYDAY=6MO", "BYDAY ordinals must be 1..5 or -5..-1"),
    ("FREQ=YEARLY;BYMONTH=1;BYDAY=-6FR", "BYDAY ordinals must be 1..5 or -5..-1"),
    ("FREQ=YEARLY;BYDAY=54MO", "BYDAY ordinals must be 1..53 or -53..-1"),
    ("FREQ=MONTHLY;BYDAY=0MO", "BYDAY ordinals must be"),
    ("FREQ=MONTHLY;BYDAY=1MO;BYMONTHDAY=15", "never occurs: no listed ordinal weekday falls on a listed BYMONTHDAY"),
    ("FREQ=MONTHLY;BYDAY=-1FR;BYMONTHDAY=1,2,3", "never occurs"),
    ("FREQ=YEARLY;BYDAY=1MO;BYMONTHDAY=20", "never occurs"),
    ("FREQ=DAILY;UNTIL=tomorrow", "is not a valid RRULE"),
    ("FREQ=DAILY;UNTIL=20200101T000000Z", "has no occurrence"),
    ("FREQ=DAILY;", "is not NAME=VALUE"),
    ("", "must be an RRULE"),
    ("FREQ=DAILY;" + "INTERVAL=1;" * 50, "at most 500 characters"),
    (5, "must be a string"),
])
def test_a_bad_rule_is_422_saying_why(alice, rule, says):
    response = alice.post("/api/tasks", json={"title": "x", "due_date": "2026-12-07T09:00:00Z", "recurrence": rule})
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert [e["field"] for e in errors] == ["recurrence"]
    assert says in errors[0]["message"], errors
    assert all_tasks(alice) == []


def test_a_bad_rule_on_update_is_422_and_changes_nothing(alice):
    task = alice.create_task(due_date="2026-12-07T09:00:00Z")
    response = alice.patch(f"/api/tasks/{task['id']}", json={"recurrence": "FREQ=SECONDLY"})
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "recurrence"
    assert alice.get(f"/api/tasks/{task['id']}").get_json() == task


@pytest.mark.parametrize("body", [{"recurrence": "FREQ=DAILY"}, {"recurrence": "FREQ=DAILY", "due_date": None}])
def test_creating_a_recurring_task_without_a_due_date_is_422(alice, body):
    response = alice.post("/api/tasks", json={"title": "x", **body})
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == ["recurrence"]
    assert "due_date" in response.get_json()["errors"][0]["message"]


def test_making_a_task_without_a_due_date_recurring_is_422(alice):
    task = alice.create_task()
    response = alice.patch(f"/api/tasks/{task['id']}", json={"recurrence": "FREQ=DAILY"})
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == ["recurrence"]
    assert alice.get(f"/api/tasks/{task['id']}").get_json() == task


def test_a_recurring_task_cannot_lose_its_due_date(alice):
    task = alice.create_task(recurrence="FREQ=DAILY", due_date="2026-12-07T09:00:00Z")
    response = alice.patch(f"/api/tasks/{task['id']}", json={"due_date": None})
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == ["recurrence"]
    assert alice.get(f"/api/tasks/{task['id']}").get_json() == task
    both = alice.patch(f"/api/tasks/{task['id']}", json={"due_date": None, "recurrence": None})
    assert both.status_code == 200 and (both.get_json()["due_date"], both.get_json()["recurrence"]) == (None, None)


# --- What the database refuses by itself --------------------------------------------------

@pytest.fixture
def owner(admin_db):
    """A user inserted by the superuser; yields (cursor, user id)."""
    with admin_db.cursor() as cur:
        user_id = f"user-raw-{uuid.uuid4().hex[:12]}"
        cur.execute("INSERT INTO users (id) VALUES (%s)", (user_id,))
        yield cur, user_id


def test_the_database_refuses_a_recurring_task_without_a_due_date(owner):
    cur, user_id = owner
    with pytest.raises(psycopg2.errors.CheckViolation) as refused:
        cur.execute("INSERT INTO tasks (user_id, title, recurrence) VALUES (%s, 'x', 'FREQ=DAILY')", (user_id,))
    assert refused.value.diag.constraint_name == "tasks_recurrence_needs_due_date"
    cur.execute("INSERT INTO tasks (user_id, title, recurrence, due_date) VALUES (%s, 'x', 'FREQ=DAILY', now()) "
                "RETURNING id", (user_id,))
    task_id = cur.fetchone()[0]
    with pytest.raises(psycopg2.errors.CheckViolation) as refused:
        cur.execute("UPDATE tasks SET due_date = NULL WHERE id = %s", (task_id,))
    assert refused.value.diag.constraint_name == "tasks_recurrence_needs_due_date"


@pytest.mark.parametrize("rule", ["FREQ=HOURLY", "BYDAY=MO", "FREQ=DAILY;BYHOUR=9", "FREQ=DAILY;", "",
                                  "FREQ=DAILY;COUNT", "FREQ=DAILY;COUNT==3", "DAILY",
                                  "FREQ=DAILY;" + "INTERVAL=1;" * 50 + "COUNT=2"])
def test_the_database_refuses_a_malformed_rule(owner, rule):
    cur, user_id = owner
    with pytest.raises(psycopg2.errors.CheckViolation) as refused:
        cur.execute("INSERT INTO tasks (user_id, title, recurrence, due_date) VALUES (%s, 'x', %s, now())",
                    (user_id, rule))
    assert refused.value.diag.constraint_name == "tasks_recurrence_rule"


@pytest.mark.parametrize("rule", ["FREQ=DAILY", "RRULE:FREQ=WEEKLY;BYDAY=MO,WE", "freq=monthly;bymonthday=1;count=6",
                                  "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;UNTIL=20300101T000000Z"])
def test_the_database_accepts_a_well_formed_rule(owner, rule):
    cur, user_id = owner
    cur.execute("INSERT INTO tasks (user_id, title, recurrence, due_date) VALUES (%s, 'x', %s, now()) "
                "RETURNING recurrence", (user_id, rule))
    assert cur.fetchone() == (rule,)


# --- The next occurrence ----------------------------------------------------------------------

@pytest.mark.parametrize("rule, due, following", [
    # daily
    ("FREQ=DAILY", "2026-03-02T09:00:00Z", "2026-03-03T09:00:00+00:00"),
    ("FREQ=DAILY;INTERVAL=3", "2026-03-02T09:00:00Z", "2026-03-05T09:00:00+00:00"),
    ("FREQ=DAILY", "2026-12-31T23:30:00Z", "2027-01-01T23:30:00+00:00"),
    # weekly, by day
    ("FREQ=WEEKLY", "2026-03-03T09:00:00Z", "2026-03-10T09:00:00+00:00"),
    ("FREQ=WEEKLY;BYDAY=MO,WE,FR", "2026-03-02T09:00:00Z", "2026-03-04T09:00:00+00:00"),
    ("FREQ=WEEKLY;BYDAY=MO,WE,FR", "2026-03-06T09:00:00Z", "2026-03-09T09:00:00+00:00"),
    ("FREQ=WEEKLY;BYDAY=MO", "2026-03-03T09:00:00Z", "2026-03-09T09:00:00+00:00"),  # due off the rule
    ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE", "2026-03-04T09:00:00Z", "2026-03-16T09:00:00+00:00"),
    # monthly, by day of the month and by weekday
    ("FREQ=MONTHLY;BYMONTHDAY=1", "2026-12-01T08:00:00Z", "2027-01-01T08:00:00+00:00"),
    ("FREQ=MONTHLY;BYMONTHDAY=15", "2026-03-20T08:00:00Z", "2026-04-15T08:00:00+00:00"),
    ("FREQ=MONTHLY;BYMONTHDAY=31", "2026-01-31T08:00:00Z", "2026-03-31T08:00:00+00:00"),  # February has none
    ("FREQ=MONTHLY;BYMONTHDAY=-1", "2026-01-31T08:00:00Z", "2026-02-28T08:00:00+00:00"),
    ("FREQ=MONTHLY;BYDAY=1MO", "2026-03-02T09:00:00Z", "2026-04-06T09:00:00+00:00"),
    ("FREQ=MONTHLY;INTERVAL=3", "2026-01-15T09:00:00Z", "2026-04-15T09:00:00+00:00"),
    # yearly
    ("FREQ=YEARLY", "2026-07-04T12:00:00Z", "2027-07-04T12:00:00+00:00"),
    ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "2026-03-01T09:00:00Z", "2028-02-29T09:00:00+00:00"),
    ("FREQ=YEARLY;INTERVAL=10", "2026-07-04T12:00:00Z", "2036-07-04T12:00:00+00:00"),  # at the horizon
])
def test_completing_creates_the_next_occurrence_strictly_after_the_due_date(alice, rule, due, following):
    task = alice.create_task(title="repeat", recurrence=rule, due_date=due)
    body = completed(alice, task["id"])
    assert body["next_occurrence"]["due_date"] == following
    assert body["next_occurrence"]["recurrence"] == rule


def test_a_rule_whose_next_occurrence_is_beyond_ten_years_has_ended(alice):
    task = alice.create_task(recurrence="FREQ=YEARLY;INTERVAL=11", due_date="2026-07-04T12:00:00Z")
    assert completed(alice, task["id"])["next_occurrence"] is None
    assert len(all_tasks(alice)) == 1


def test_the_next_occurrence_carries_the_tasks_fields_in_the_first_state(alice):
    task = alice.create_task(title="Water the plants", description="both balconies", priority="high",
                             category="home", tags=["Garden", "chores"], recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=3",
                             due_date="2026-03-02T09:00:00Z", remind_at="2026-03-02T08:30:00Z")
    moved = alice.patch(f"/api/tasks/{task['id']}/status", json={"status": "in_progress"})
    assert moved.status_code == 200
    response = complete(alice, task["id"])
    assert response.status_code == 200
    body = response.get_json()
    following = body.pop("next_occurrence")
    # the response is the completed task itself, its rule unchanged
    assert (body["id"], body["completed"], body["status"]) == (task["id"], True, "done")
    assert body["completed_at"] is not None and body["recurrence"] == "FREQ=WEEKLY;BYDAY=MO;COUNT=3"
    assert response.headers["ETag"] == '"3"'
    assert body == alice.get(f"/api/tasks/{task['id']}").get_json()
    # the next occurrence: a new task with the same fields, COUNT one less, in the first state
    assert following["id"] > task["id"]
    assert {key: following[key] for key in ("user_id", "title", "description", "priority", "category")} == \
        {"user_id": alice.id, "title": "Water the plants", "description": "both balconies", "priority": "high",
         "category": "home"}
    assert [tag["name"] for tag in following["tags"]] == ["chores", "Garden"]
    assert [tag["id"] for tag in following["tags"]] == [tag["id"] for tag in task["tags"]]
    assert following["recurrence"] == "FREQ=WEEKLY;BYDAY=MO;COUNT=2"
    assert (following["status"], following["completed"], following["is_completed"], following["completed_at"]) == \
        ("todo", False, False, None)
    assert following["due_date"] == "2026-03-09T09:00:00+00:00"
    assert following["remind_at"] == "2026-03-09T08:30:00+00:00"
    assert following["created_at"] == following["updated_at"]
    # it is stored as the response shows it
    stored = alice.get(f"/api/tasks/{following['id']}")
    assert stored.get_json() == following and stored.headers["ETag"] == '"1"'
    assert [t["id"] for t in all_tasks(alice)] == [task["id"], following["id"]]


def test_the_next_occurrence_without_a_reminder_has_none(alice):
    task = alice.create_task(recurrence="FREQ=DAILY", due_date="2026-03-02T09:00:00Z")
    assert completed(alice, task["id"])["next_occurrence"]["remind_at"] is None


def test_a_change_sent_with_the_completion_is_carried_to_the_next_occurrence(alice):
    task = alice.create_task(title="old", recurrence="FREQ=DAILY", due_date="2026-03-02T09:00:00Z")
    response = alice.patch(f"/api/tasks/{task['id']}", json={"title": "new", "priority": "low", "completed": True})
    assert response.status_code == 200
    body = response.get_json()
    assert (body["title"], body["priority"], body["completed"]) == ("new", "low", True)
    assert (body["next_occurrence"]["title"], body["next_occurrence"]["priority"]) == ("new", "low")


def test_completing_with_tags_in_the_body_sets_them_and_carries_them_on(alice):
    task = alice.create_task(tags=["a"], recurrence="FREQ=DAILY", due_date="2026-03-02T09:00:00Z")
    response = alice.patch(f"/api/tasks/{task['id']}", json={"tags": ["b", "c"], "completed": True})
    assert response.status_code == 200
    body = response.get_json()
    assert [t["name"] for t in body["tags"]] == ["b", "c"] and body["completed"] is True
    assert [t["name"] for t in body["next_occurrence"]["tags"]] == ["b", "c"]


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("how", COMPLETIONS)
def test_every_completion_creates_the_next_occurrence(alice, prefix, how):
    task = alice.create_task(title="every way", recurrence="FREQ=DAILY;COUNT=5", due_date="2026-03-02T09:00:00Z")
    response = complete(alice, task["id"], how=how, prefix=prefix)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["completed"], body["status"]) == (True, "done")
    following = body["next_occurrence"]
    assert (following["title"], following["due_date"], following["recurrence"]) == \
        ("every way", "2026-03-03T09:00:00+00:00", "FREQ=DAILY;COUNT=4")
    assert [t["id"] for t in all_tasks(alice)] == [task["id"], following["id"]]


@pytest.mark.parametrize("how", ["complete-true", "status-route", "patch-completed", "patch-status"])
def test_completing_an_already_completed_task_creates_nothing(alice, how):
    task = alice.create_task(recurrence="FREQ=DAILY", due_date="2026-03-02T09:00:00Z")
    first = completed(alice, task["id"])["next_occurrence"]
    again = completed(alice, task["id"], how=how)
    assert again["completed"] is True and again["next_occurrence"] is None
    assert again["completed_at"] == alice.get(f"/api/tasks/{task['id']}").get_json()["completed_at"]
    assert [t["id"] for t in all_tasks(alice)] == [task["id"], first["id"]]


@pytest.mark.parametrize("how", [("PATCH", "/complete", None), ("PATCH", "/complete", {"completed": False}),
                                 ("PATCH", "", {"completed": False}), ("PATCH", "/status", {"status": "todo"}),
                                 ("PATCH", "", {"status": "in_progress"})])
def test_un_completing_deletes_nothing(alice, how):
    method, suffix, body = how
    task = alice.create_task(recurrence="FREQ=DAILY", due_date="2026-03-02T09:00:00Z")
    first = completed(alice, task["id"])["next_occurrence"]
    response = alice.request(method, f"/api/tasks/{task['id']}{suffix}", **({"json": body} if body else {}))
    assert response.status_code == 200
    assert response.get_json()["completed"] is False and response.get_json()["completed_at"] is None
    assert [t["id"] for t in all_tasks(alice)] == [task["id"], first["id"]]
    assert alice.get(f"/api/tasks/{first['id']}").get_json() == first


def test_count_one_less_each_time_until_the_rule_ends(alice):
    task = alice.create_task(recurrence="FREQ=DAILY;COUNT=3", due_date="2026-03-02T09:00:00Z")
    second = completed(alice, task["id"])["next_occurrence"]
    assert (second["recurrence"], second["due_date"]) == ("FREQ=DAILY;COUNT=2", "2026-03-03T09:00:00+00:00")
    third = completed(alice, second["id"])["next_occurrence"]
    assert (third["recurrence"], third["due_date"]) == ("FREQ=DAILY;COUNT=1", "2026-03-04T09:00:00+00:00")
    last = completed(alice, third["id"])
    assert last["completed"] is True and last["next_occurrence"] is None
    assert len(all_tasks(alice)) == 3


@pytest.mark.parametrize("rule, lowered", [("freq=weekly;byday=mo;count=3", "freq=weekly;byday=mo;count=2"),
                                           ("RRULE:COUNT=2;FREQ=DAILY", "RRULE:COUNT=1;FREQ=DAILY")])
def test_count_one_less_keeps_the_rule_as_written(alice, rule, lowered):
    task = alice.create_task(recurrence=rule, due_date="2026-03-02T09:00:00Z")
    assert completed(alice, task["id"])["next_occurrence"]["recurrence"] == lowered


def test_count_1_is_the_last_occurrence(alice):
    task = alice.create_task(recurrence="FREQ=DAILY;COUNT=1", due_date="2026-03-02T09:00:00Z")
    assert completed(alice, task["id"])["next_occurrence"] is None
    assert len(all_tasks(alice)) == 1


def test_until_in_utc_ends_the_rule_inclusively(alice):
    task = alice.create_task(recurrence="FREQ=DAILY;UNTIL=20260304T090000Z", due_date="2026-03-03T09:00:00Z")
    following = completed(alice, task["id"])["next_occurrence"]
    assert following["due_date"] == "2026-03-04T09:00:00+00:00"  # UNTIL itself is an occurrence
    assert following["recurrence"] == "FREQ=DAILY;UNTIL=20260304T090000Z"
    assert completed(alice, following["id"])["next_occurrence"] is None


def test_until_without_z_is_a_local_time_of_the_users_zone(alice):
    set_zone(alice, "America/New_York")  # 09:00 EST = 14:00Z
    local_until = alice.create_task(recurrence="FREQ=DAILY;UNTIL=20260304T100000", due_date="2026-03-03T14:00:00Z")
    assert completed(alice, local_until["id"])["next_occurrence"]["due_date"] == "2026-03-04T14:00:00+00:00"
    utc_until = alice.create_task(recurrence="FREQ=DAILY;UNTIL=20260304T100000Z", due_date="2026-03-03T14:00:00Z")
    assert completed(alice, utc_until["id"])["next_occurrence"] is None  # 10:00Z is before 14:00Z


def test_an_until_date_covers_that_whole_local_day(alice):
    set_zone(alice, "Pacific/Auckland")  # 2026-03-04 22:00 NZDT = 09:00Z
    task = alice.create_task(recurrence="FREQ=DAILY;UNTIL=20260304", due_date="2026-03-03T09:00:00Z")
    assert completed(alice, task["id"])["next_occurrence"]["due_date"] == "2026-03-04T09:00:00+00:00"
    # due at 00:00 on the 4th: the next one, on the 5th, is past the 4th
    task = alice.create_task(recurrence="FREQ=DAILY;UNTIL=20260304", due_date="2026-03-03T11:00:00Z")
    assert completed(alice, task["id"])["next_occurrence"] is None


# --- Daylight saving: occurrences are computed in the user's zone -------------------------------

@pytest.mark.parametrize("zone, due, following", [
    ("Europe/Berlin", "2026-03-23T08:00:00Z", "2026-03-30T07:00:00+00:00"),     # spring: CET -> CEST
    ("Europe/Berlin", "2026-10-19T07:00:00Z", "2026-10-26T08:00:00+00:00"),     # autumn: CEST -> CET
    ("America/New_York", "2026-03-02T14:00:00Z", "2026-03-09T13:00:00+00:00"),  # spring: EST -> EDT
    ("America/New_York", "2026-10-26T13:00:00Z", "2026-11-02T14:00:00+00:00"),  # autumn: EDT -> EST
    ("Australia/Sydney", "2026-03-29T22:00:00Z", "2026-04-05T23:00:00+00:00"),  # autumn in April: AEDT -> AEST
    ("UTC", "2026-03-23T09:00:00Z", "2026-03-30T09:00:00+00:00"),
])
def test_every_monday_at_nine_stays_at_nine_local_across_daylight_saving(alice, zone, due, following):
    set_zone(alice, zone)
    assert local(due, zone) == ("Mon", "09:00")
    task = alice.create_task(recurrence="FREQ=WEEKLY;BYDAY=MO", due_date=due)
    nxt = completed(alice, task["id"])["next_occurrence"]
    assert nxt["due_date"] == following
    assert local(nxt["due_date"], zone) == ("Mon", "09:00")


@pytest.mark.parametrize("zone, due, remind, following, reminded", [
    ("Europe/Berlin", "2026-03-28T08:00:00Z", "2026-03-28T07:30:00Z",
     "2026-03-29T07:00:00+00:00", "2026-03-29T06:30:00+00:00"),
    ("America/New_York", "2026-10-31T13:00:00Z", "2026-10-31T12:30:00Z",
     "2026-11-01T14:00:00+00:00", "2026-11-01T13:30:00+00:00"),
])
def test_daily_across_the_change_keeps_the_local_time_and_the_reminder_shifts_with_it(
        alice, zone, due, remind, following, reminded):
    set_zone(alice, zone)
    task = alice.create_task(recurrence="FREQ=DAILY", due_date=due, remind_at=remind)
    nxt = completed(alice, task["id"])["next_occurrence"]
    assert (nxt["due_date"], nxt["remind_at"]) == (following, reminded)
    assert local(due, zone)[1] == local(nxt["due_date"], zone)[1] == "09:00"
    assert local(nxt["remind_at"], zone)[1] == "08:30"


def test_the_zone_at_completion_time_is_the_one_used(alice):
    task = alice.create_task(recurrence="FREQ=WEEKLY;BYDAY=MO", due_date="2026-10-19T07:00:00Z")
    set_zone(alice, "Europe/Berlin")  # changed after creation: 09:00 Berlin it is
    assert completed(alice, task["id"])["next_occurrence"]["due_date"] == "2026-10-26T08:00:00+00:00"


def test_a_remind_at_after_the_due_date_shifts_by_the_same_amount(alice):
    task = alice.create_task(recurrence="FREQ=MONTHLY;BYMONTHDAY=1", due_date="2026-01-01T09:00:00Z",
                             remind_at="2026-01-02T10:15:00Z")
    nxt = completed(alice, task["id"])["next_occurrence"]
    assert (nxt["due_date"], nxt["remind_at"]) == ("2026-02-01T09:00:00+00:00", "2026-02-02T10:15:00+00:00")


# --- Concurrency and If-Match ------------------------------------------------------------------

@pytest.mark.parametrize("how", ["complete-true", "status-route", "patch-status"])
def test_a_concurrent_double_completion_creates_exactly_one_occurrence(app, alice, how):
    task = alice.create_task(title="race", recurrence="FREQ=DAILY", due_date="2026-03-02T09:00:00Z")
    method, suffix, body = COMPLETIONS[how]
    responses = race(app, alice, [(method, f"/api/tasks/{task['id']}{suffix}", {"json": body})] * 8)
    assert [r.status_code for r in responses] == [200] * 8, [r.get_json() for r in responses]
    created = [r.get_json()["next_occurrence"] for r in responses if r.get_json()["next_occurrence"]]
    assert len(created) == 1, [r.get_json() for r in responses]
    assert all(r.get_json()["completed"] is True for r in responses)
    assert [t["id"] for t in all_tasks(alice)] == [task["id"], created[0]["id"]]
    assert created[0]["due_date"] == "2026-03-03T09:00:00+00:00"


def test_concurrent_completions_through_every_route_family_create_one_occurrence(app, alice):
    task = alice.create_task(recurrence="FREQ=DAILY", due_date="2026-03-02T09:00:00Z")
    requests = [(COMPLETIONS[how][0], f"{tasks_url(alice, prefix)}/{task['id']}{COMPLETIONS[how][1]}",
                 {"json": COMPLETIONS[how][2]})
                for prefix in PREFIXES for how in ("complete-true", "patch-status")]
    responses = race(app, alice, requests)
    assert [r.status_code for r in responses] == [200] * len(requests)
    assert sum(1 for r in responses if r.get_json()["next_occurrence"]) == 1
    assert len(all_tasks(alice)) == 2


def test_concurrent_completions_with_the_same_if_match_one_wins_the_rest_are_412(app, alice):
    task = alice.create_task(recurrence="FREQ=DAILY", due_date="2026-03-02T09:00:00Z")
    responses = race(app, alice, [("PATCH", f"/api/tasks/{task['id']}/complete",
                                   {"json": {"completed": True}, "headers": {"If-Match": '"1"'}})] * 6)
    assert sorted(r.status_code for r in responses) == [200] + [412] * 5
    winner = next(r for r in responses if r.status_code == 200)
    assert winner.get_json()["next_occurrence"] is not None
    assert {r.headers["ETag"] for r in responses} == {'"2"'}
    assert len(all_tasks(alice)) == 2


@pytest.mark.parametrize("how", COMPLETIONS)
def test_a_stale_if_match_on_a_recurring_completion_is_412_and_creates_nothing(alice, how):
    task = alice.create_task(recurrence="FREQ=DAILY", due_date="2026-03-02T09:00:00Z")
    assert alice.patch(f"/api/tasks/{task['id']}", json={"title": "edited"}).status_code == 200
    stale = complete(alice, task["id"], how=how, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.headers["ETag"] == '"2"'
    assert len(all_tasks(alice)) == 1 and all_tasks(alice)[0]["completed"] is False
    fresh = complete(alice, task["id"], how=how, headers={"If-Match": '"2"'})
    assert fresh.status_code == 200 and fresh.headers["ETag"] == '"3"'
    assert fresh.get_json()["next_occurrence"]["title"] == "edited"
    assert len(all_tasks(alice)) == 2


def test_another_users_recurring_task_is_404_and_nothing_is_created(alice, bob):
    task = alice.create_task(recurrence="FREQ=DAILY", due_date="2026-03-02T09:00:00Z")
    for how in COMPLETIONS:
        assert complete(bob, task["id"], how=how).status_code == 404
    assert all_tasks(bob) == []
    assert len(all_tasks(alice)) == 1 and all_tasks(alice)[0]["completed"] is False


def test_a_toggle_that_un_completes_carries_no_next_occurrence(alice):
    task = alice.create_task(recurrence="FREQ=DAILY", due_date="2026-03-02T09:00:00Z")
    assert completed(alice, task["id"], how="toggle")["next_occurrence"] is not None
    undone = completed(alice, task["id"], how="toggle")
    assert undone["completed"] is False and "next_occurrence" not in undone
    assert len(all_tasks(alice)) == 2


def test_a_completion_that_also_ends_the_rule_creates_nothing(alice):
    task = alice.create_task(recurrence="FREQ=DAILY", due_date="2026-03-02T09:00:00Z")
    body = alice.patch(f"/api/tasks/{task['id']}", json={"completed": True, "recurrence": None}).get_json()
    assert (body["completed"], body["recurrence"], body["next_occurrence"]) == (True, None, None)
    assert len(all_tasks(alice)) == 1


def test_a_completion_that_also_moves_the_due_date_follows_the_new_one(alice):
    task = alice.create_task(recurrence="FREQ=DAILY", due_date="2026-03-02T09:00:00Z",
                             remind_at="2026-03-02T08:00:00Z")
    body = alice.patch(f"/api/tasks/{task['id']}", json={"completed": True, "due_date": "2026-03-10T09:00:00Z",
                                                         "remind_at": "2026-03-10T07:00:00Z"}).get_json()
    assert body["due_date"] == "2026-03-10T09:00:00+00:00"
    assert (body["next_occurrence"]["due_date"], body["next_occurrence"]["remind_at"]) == \
        ("2026-03-11T09:00:00+00:00", "2026-03-11T07:00:00+00:00")


def test_a_completion_that_also_changes_the_rule_follows_the_new_rule(alice):
    task = alice.create_task(recurrence="FREQ=DAILY", due_date="2026-03-02T09:00:00Z")
    body = alice.patch(f"/api/tasks/{task['id']}",
                       json={"status": "done", "recurrence": "FREQ=WEEKLY;COUNT=2"}).get_json()
    assert body["recurrence"] == "FREQ=WEEKLY;COUNT=2"
    assert (body["next_occurrence"]["due_date"], body["next_occurrence"]["recurrence"]) == \
        ("2026-03-09T09:00:00+00:00", "FREQ=WEEKLY;COUNT=1")


def test_a_completion_that_drops_the_due_date_of_a_recurring_task_is_422(alice):
    task = alice.create_task(recurrence="FREQ=DAILY", due_date="2026-03-02T09:00:00Z")
    response = alice.patch(f"/api/tasks/{task['id']}", json={"completed": True, "due_date": None})
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "recurrence"
    assert all_tasks(alice) == [task]


def test_a_local_time_that_occurs_twice_in_autumn_is_its_first_and_keeps_its_wall_clock_time(alice):
    set_zone(alice, "Europe/Berlin")  # 25 October 2026: 02:30 happens in CEST, then again in CET
    task = alice.create_task(recurrence="FREQ=DAILY", due_date="2026-10-24T00:30:00Z")  # 02:30 CEST
    on_the_day = completed(alice, task["id"])["next_occurrence"]
    assert on_the_day["due_date"] == "2026-10-25T00:30:00+00:00"  # the first 02:30
    after = completed(alice, on_the_day["id"])["next_occurrence"]
    assert after["due_date"] == "2026-10-26T01:30:00+00:00" and local(after["due_date"], "Europe/Berlin")[1] == "02:30"


def test_a_local_time_skipped_in_spring_takes_the_offset_before_the_gap(alice):
    set_zone(alice, "Europe/Berlin")  # 29 March 2026: clocks jump from 02:00 to 03:00
    task = alice.create_task(recurrence="FREQ=DAILY", due_date="2026-03-28T01:30:00Z")  # 02:30 CET
    # 02:30 does not exist that day; as RFC 5545 says, it is taken with the offset before the gap
    assert completed(alice, task["id"])["next_occurrence"]["due_date"] == "2026-03-29T01:30:00+00:00"


def test_completing_again_after_un_completing_creates_another_occurrence(alice):
    task = alice.create_task(recurrence="FREQ=DAILY", due_date="2026-03-02T09:00:00Z")
    first = completed(alice, task["id"])["next_occurrence"]
    completed(alice, task["id"], how="toggle")  # un-completed: deletes nothing
    second = completed(alice, task["id"])["next_occurrence"]
    assert second["id"] != first["id"] and second["due_date"] == first["due_date"]
    assert len(all_tasks(alice)) == 3


def test_a_recurring_task_created_completed_creates_no_occurrence(alice):
    task = alice.create_task(recurrence="FREQ=DAILY", due_date="2026-03-02T09:00:00Z", completed=True)
    assert task["completed"] is True and "next_occurrence" not in task
    assert len(all_tasks(alice)) == 1


@pytest.mark.parametrize("rule, due, following", [
    ("FREQ=MONTHLY;BYDAY=1MO;BYMONTHDAY=7", "2026-01-06T09:00:00Z", "2026-09-07T09:00:00+00:00"),  # 1st Monday, the 7th
    ("FREQ=MONTHLY;BYDAY=-1FR;BYMONTHDAY=-1", "2026-01-06T09:00:00Z", "2026-07-31T09:00:00+00:00"),
    ("FREQ=YEARLY;BYDAY=1MO;BYMONTHDAY=3", "2026-01-06T09:00:00Z", "2028-01-03T09:00:00+00:00"),
    ("FREQ=YEARLY;BYDAY=20MO;BYMONTHDAY=15", "2026-01-06T09:00:00Z", "2028-05-15T09:00:00+00:00"),
    # cycles that fix the weekday, the months or the years: they hold for some due dates
    ("FREQ=DAILY;INTERVAL=7;BYDAY=TU", "2026-01-06T09:00:00Z", "2026-01-13T09:00:00+00:00"),
    ("FREQ=MONTHLY;INTERVAL=2;BYMONTH=2,4,6,8,10,12", "2026-02-10T09:00:00Z", "2026-04-10T09:00:00+00:00"),
    ("FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29", "2028-02-29T09:00:00Z", "2032-02-29T09:00:00+00:00"),
])
def test_rare_rules_are_accepted_and_expanded(alice, rule, due, following):
    task = alice.create_task(recurrence=rule, due_date=due)
    assert completed(alice, task["id"])["next_occurrence"]["due_date"] == following


@pytest.mark.parametrize("rule, due", [
    ("FREQ=DAILY;INTERVAL=7;BYDAY=TU", "2026-01-05T09:00:00Z"),  # a Monday: every 7 days is a Monday
    ("FREQ=MONTHLY;INTERVAL=2;BYMONTH=2,4,6,8,10,12", "2026-01-10T09:00:00Z"),  # odd months only
    ("FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29", "2026-02-28T09:00:00Z"),  # never a leap year
])
def test_a_rule_whose_cycle_cannot_meet_its_filter_from_the_due_date_has_ended(alice, rule, due):
    task = alice.create_task(recurrence=rule, due_date=due)
    assert completed(alice, task["id"])["next_occurrence"] is None
    assert len(all_tasks(alice)) == 1


PATHOLOGICAL = ["FREQ=MONTHLY;BYDAY=6MO", "FREQ=MONTHLY;BYDAY=1MO;BYMONTHDAY=15", "FREQ=YEARLY;BYDAY=1MO;BYMONTHDAY=20",
                "FREQ=DAILY;INTERVAL=7;BYDAY=TU", "FREQ=DAILY;INTERVAL=14;BYDAY=TU,WE,TH,FR,SA,SU",
                "FREQ=MONTHLY;INTERVAL=2;BYMONTH=2,4,6,8,10,12", "FREQ=MONTHLY;INTERVAL=12;BYMONTH=3",
                "FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29", "FREQ=YEARLY;BYMONTH=1;BYDAY=-53MO"]


def test_rules_that_never_meet_cost_no_search_to_the_year_9999():
    # Each of these made dateutil walk every day, week or month to the year 9999 (0.1 to 1 s of
    # CPU a request); checked or short-cut now, they all take milliseconds.
    started = time.perf_counter()
    for rule in PATHOLOGICAL:
        try:
            recurrence.validate(rule)
        except ValueError:
            continue
        for due in (datetime(2026, 1, 5, 9, tzinfo=UTC), datetime(2026, 1, 6, 9, tzinfo=UTC)):
            recurrence.next_occurrence(rule, due, "Europe/Berlin")
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize("rule, following", [("FREQ=DAILY", "2028-03-01T09:00:00+00:00"),
                                             ("FREQ=YEARLY", "2032-02-29T09:00:00+00:00"),
                                             ("FREQ=MONTHLY", "2028-03-29T09:00:00+00:00")])
def test_a_task_due_on_29_february_recurs(alice, rule, following):
    task = alice.create_task(recurrence=rule, due_date="2028-02-29T09:00:00Z")  # ten years on has no 29 February
    assert completed(alice, task["id"])["next_occurrence"]["due_date"] == following
