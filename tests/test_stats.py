"""Statistics (contract section 6): GET /api/stats (also /api/statistics, /api/{user_id}/stats and
/api/{user_id}/statistics, and under /api/v1), the exact shape and values on prepared data. Tasks
are inserted by the superuser with chosen `completed_at`, to build streaks and weeks; days are the
user's (their time zone, or `tz`)."""
import json
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

ROUTES = ["/api/stats", "/api/statistics", "/api/{user}/stats", "/api/{user}/statistics",
          "/api/v1/stats", "/api/v1/statistics", "/api/v1/{user}/stats", "/api/v1/{user}/statistics"]


def stats(caller, route="/api/stats", **params):
    response = caller.get(route.format(user=caller.id), query_string=params)
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "application/json"
    return json.loads(response.get_data(as_text=True))  # keeps the members' order


def today_in(zone):
    return datetime.now(ZoneInfo(zone)).date()


def at(day, zone, hour=0, minute=1):
    """An instant on `day` in `zone` (just after its start by default)."""
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(zone))


def week_of(day, counts=None):
    """The `weekly` member for the ISO week holding `day`, with {date: count}."""
    start = day - timedelta(days=day.weekday())
    days = [{"date": (start + timedelta(days=n)).isoformat(),
             "completed_count": (counts or {}).get(start + timedelta(days=n), 0)} for n in range(7)]
    return {"week_start": start.isoformat(), "days": days, "total": sum(d["completed_count"] for d in days)}


class Tasks:
    """Inserts a user's tasks as the superuser, completed at chosen instants."""

    def __init__(self, admin_db, caller):
        caller.get("/api/users/me")  # provisions the user
        self.conn, self.user = admin_db, caller.id

    def add(self, completed_at=None, status=None, priority="medium", category=None, due=None):
        status = status or ("done" if completed_at else "todo")
        with self.conn.cursor() as cur:
            cur.execute("INSERT INTO tasks (user_id, title, completed, status, completed_at, priority, category, "
                        "due_date) VALUES (%s, 'prepared', %s, %s, %s, %s, %s, %s) RETURNING completed_at",
                        (self.user, completed_at is not None, status, completed_at, priority, category, due))
            assert cur.fetchone()[0] == completed_at  # the database kept the chosen moment

    def completions(self, *instants):
        for instant in instants:
            self.add(completed_at=instant)


@pytest.fixture
def tasks(admin_db, alice):
    return Tasks(admin_db, alice)


def test_a_user_without_tasks_has_the_whole_shape_with_zeros(alice):
    body = stats(alice)
    assert body == {
        "statistics": {"total_tasks": 0, "completed_tasks": 0, "pending_tasks": 0, "overdue_tasks": 0,
                       "completion_rate": 0, "total_completions": 0},
        "by_priority": {"low": 0, "medium": 0, "high": 0},
        "by_status": {"todo": 0, "in_progress": 0, "done": 0},
        "by_category": {"none": 0},
        "streak": {"current_streak": 0, "longest_streak": 0, "last_completion_date": None},
        "weekly": week_of(today_in("UTC")),
    }
    assert list(body) == ["statistics", "by_priority", "by_status", "by_category", "streak", "weekly"]


def test_prepared_data_gives_exact_values(alice, tasks):
    today = today_in("UTC")
    past, future = datetime.now(UTC) - timedelta(days=3), datetime.now(UTC) + timedelta(days=3)
    # seven completions on six days: today (2), yesterday, then a gap, then four days in a row
    done_days = [today, today, today - timedelta(1), *(today - timedelta(n) for n in (4, 5, 6, 7))]
    for number, day in enumerate(done_days):
        tasks.add(completed_at=at(day, "UTC", hour=0, minute=number), priority=("low", "medium")[number % 2],
                  category="work" if number < 3 else None, due=past if number == 0 else None)
    tasks.add(status="todo", priority="low", category="work", due=past)          # overdue
    tasks.add(status="in_progress", priority="medium", category="home", due=past)  # overdue
    tasks.add(status="in_progress", priority="medium", due=future)
    tasks.add(status="todo", priority="low", category="work")
    tasks.add(status="todo", priority="medium")
    body = stats(alice)
    assert body["statistics"] == {"total_tasks": 12, "completed_tasks": 7, "pending_tasks": 5, "overdue_tasks": 2,
                                  "completion_rate": 58.3, "total_completions": 7}
    assert body["by_priority"] == {"low": 6, "medium": 6, "high": 0}
    assert list(body["by_priority"]) == ["low", "medium", "high"]  # the vocabulary's order
    assert body["by_status"] == {"todo": 3, "in_progress": 2, "done": 7}
    assert list(body["by_status"]) == ["todo", "in_progress", "done"]
    assert body["by_category"] == {"home": 1, "work": 5, "none": 6}
    assert body["streak"] == {"current_streak": 2, "longest_streak": 4, "last_completion_date": today.isoformat()}
    counts = {}
    for day in done_days:
        counts[day] = counts.get(day, 0) + 1
    assert body["weekly"] == week_of(today, counts)


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_answers_the_same(alice, tasks, route):
    tasks.completions(datetime.now(UTC) - timedelta(hours=1))
    tasks.add(category="errands")
    assert stats(alice, route) == stats(alice)
    assert stats(alice, route)["statistics"]["total_tasks"] == 2


@pytest.mark.parametrize("route", ["/api/{other}/stats", "/api/{other}/statistics", "/api/v1/{other}/stats"])
def test_another_ids_statistics_are_403(alice, bob, route):
    response = alice.get(route.format(other=bob.id))
    assert response.status_code == 403 and response.get_json()["code"] == "forbidden"


def test_statistics_need_a_token(client):
    assert client.get("/api/stats").status_code == 401


def test_another_users_tasks_never_count(alice, bob, admin_db):
    Tasks(admin_db, bob).completions(datetime.now(UTC))
    bob.create_task(category="bob's")
    assert stats(alice)["statistics"]["total_tasks"] == 0
    assert stats(alice)["by_category"] == {"none": 0}
    assert stats(alice)["streak"]["last_completion_date"] is None
    assert stats(bob)["statistics"]["total_tasks"] == 2


@pytest.mark.parametrize("done, total, rate", [(1, 3, 33.3), (2, 3, 66.7), (1, 1, 100), (0, 2, 0), (1, 8, 12.5),
                                               (1, 6, 16.7), (5, 12, 41.7)])
def test_completion_rate_is_a_percentage_with_one_decimal(alice, tasks, done, total, rate):
    for n in range(total):
        tasks.add(completed_at=datetime.now(UTC) if n < done else None)
    response = alice.get("/api/stats")
    body = response.get_json()["statistics"]
    assert body["completion_rate"] == rate
    assert body["total_completions"] == body["completed_tasks"] == done
    assert body["pending_tasks"] == total - done
    written = re.search(r'"completion_rate"\s*:\s*([0-9.]+)', response.get_data(as_text=True)).group(1)
    assert written == f"{rate:.1f}"  # one decimal, as written in the body


def test_by_category_lists_each_category_in_use_and_always_none(alice):
    for category in ("work", "work", "shopping", "Work"):
        alice.create_task(category=category)
    assert stats(alice)["by_category"] == {"Work": 1, "shopping": 1, "work": 2, "none": 0}


# --- Streaks -------------------------------------------------------------------------------

def test_a_current_streak_may_end_yesterday(alice, tasks):
    today = today_in("UTC")
    tasks.completions(*(at(today - timedelta(n), "UTC") for n in (1, 2, 3)))
    assert stats(alice)["streak"] == {"current_streak": 3, "longest_streak": 3,
                                      "last_completion_date": (today - timedelta(1)).isoformat()}


def test_a_streak_ending_two_days_ago_is_not_current(alice, tasks):
    today = today_in("UTC")
    tasks.completions(*(at(today - timedelta(n), "UTC") for n in (2, 3)))
    assert stats(alice)["streak"] == {"current_streak": 0, "longest_streak": 2,
                                      "last_completion_date": (today - timedelta(2)).isoformat()}


def test_several_completions_on_one_day_count_one_day(alice, tasks):
    today = today_in("UTC")
    tasks.completions(*(at(today, "UTC", minute=n) for n in range(5)))
    assert stats(alice)["streak"] == {"current_streak": 1, "longest_streak": 1,
                                      "last_completion_date": today.isoformat()}


def test_pending_tasks_alone_have_no_streak(alice, tasks):
    tasks.add(status="in_progress")
    assert stats(alice)["streak"] == {"current_streak": 0, "longest_streak": 0, "last_completion_date": None}


def test_un_completing_a_task_takes_its_day_out_of_the_streak(alice):
    task = alice.create_task()
    alice.patch(f"/api/tasks/{task['id']}/complete")
    assert stats(alice)["streak"]["current_streak"] == 1
    alice.patch(f"/api/tasks/{task['id']}/complete")
    assert stats(alice)["streak"] == {"current_streak": 0, "longest_streak": 0, "last_completion_date": None}


def test_the_longest_streak_may_be_in_the_past(alice, tasks):
    today = today_in("UTC")
    tasks.completions(*(at(today - timedelta(n), "UTC") for n in (0, 10, 11, 12, 13, 14, 20, 21)))
    assert stats(alice)["streak"] == {"current_streak": 1, "longest_streak": 5,
                                      "last_completion_date": today.isoformat()}


# --- Days in the user's zone, or tz --------------------------------------------------------

def expected_days(instants, zone):
    """What the streak and the week must be for completions at `instants`, days in `zone`."""
    days = sorted({instant.astimezone(ZoneInfo(zone)).date() for instant in instants})
    today = today_in(zone)
    runs = []
    for day in days:
        if runs and day - runs[-1][0] == timedelta(days=1):
            runs[-1] = (day, runs[-1][1] + 1)
        else:
            runs.append((day, 1))
    current = runs[-1][1] if runs and runs[-1][0] >= today - timedelta(days=1) else 0
    counts = {}
    for instant in instants:
        day = instant.astimezone(ZoneInfo(zone)).date()
        counts[day] = counts.get(day, 0) + 1
    streak = {"current_streak": current, "longest_streak": max((n for _, n in runs), default=0),
              "last_completion_date": days[-1].isoformat() if days else None}
    return streak, week_of(today, counts)


@pytest.fixture
def across_midnight(tasks):
    """Completions just either side of midnight in UTC, Auckland and Los Angeles, over two weeks."""
    now = datetime.now(UTC)
    instants = []
    for zone in ("UTC", "Pacific/Auckland", "America/Los_Angeles"):
        for days_back in (0, 1, 2, 6, 8):
            midnight = at(today_in(zone) - timedelta(days=days_back), zone, minute=0)
            instants += [m for m in (midnight - timedelta(minutes=1), midnight + timedelta(minutes=1)) if m <= now]
    tasks.completions(*instants)
    return instants


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Auckland", "America/Los_Angeles", "Asia/Kolkata"])
def test_days_are_the_users_time_zones(alice, across_midnight, zone):
    alice.patch("/api/users/me", json={"timezone": zone})
    body = stats(alice)
    streak, weekly = expected_days(across_midnight, zone)
    assert (body["streak"], body["weekly"]) == (streak, weekly)
    assert body["weekly"]["total"] == sum(d["completed_count"] for d in weekly["days"])


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Auckland", "America/Los_Angeles"])
def test_tz_overrides_the_users_zone(alice, across_midnight, zone):
    alice.patch("/api/users/me", json={"timezone": "Asia/Kolkata"})
    body = stats(alice, tz=zone)
    assert (body["streak"], body["weekly"]) == expected_days(across_midnight, zone)
    own = stats(alice)
    assert (own["streak"], own["weekly"]) == expected_days(across_midnight, "Asia/Kolkata")


def test_the_same_completion_falls_on_different_days_by_zone(alice, tasks):
    today = today_in("UTC")
    instant = datetime.combine(today, time(0, 30), tzinfo=UTC) - timedelta(hours=1)  # yesterday 23:30Z
    tasks.completions(instant)
    utc = stats(alice)["streak"]["last_completion_date"]
    auckland = stats(alice, tz="Pacific/Auckland")["streak"]["last_completion_date"]
    assert utc == (today - timedelta(1)).isoformat()
    assert auckland == instant.astimezone(ZoneInfo("Pacific/Auckland")).date().isoformat() == today.isoformat()


def test_the_week_is_the_current_iso_week_monday_first(alice):
    weekly = stats(alice)["weekly"]
    start = date.fromisoformat(weekly["week_start"])
    assert start.isoweekday() == 1 and start.isocalendar()[:2] == today_in("UTC").isocalendar()[:2]
    assert [d["date"] for d in weekly["days"]] == [(start + timedelta(n)).isoformat() for n in range(7)]


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "localtime", "+05:00", "utc ", "Europe/Berlin\x00"])
@pytest.mark.parametrize("route", ["/api/stats", "/api/{user}/statistics", "/api/v1/stats"])
def test_a_bad_tz_is_422_naming_it(alice, zone, route):
    response = alice.get(route.format(user=alice.id), query_string={"tz": zone})
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["code"] == "validation_failed"
    assert [e["field"] for e in problem["errors"]] == ["tz"]
