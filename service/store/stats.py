"""Statistics (`GET /api/stats`): one statement reads the counters, Python shapes the answer.

Days are the user's (their time zone, or the `tz` asked for). A streak counts consecutive days
with at least one completion (by `completed_at`) ending today or yesterday; the week is the
current ISO week, Monday first. Every vocabulary value is listed, zeros included, in the
vocabulary's order; `by_category` lists each category in use and always `none`.

The counts come from the counters the database keeps (migration 007): task_tallies for the
totals and the breakdowns, task_completion_days for the streaks and the week, so a user with
100,000 tasks costs what a user with 100 does. Only the overdue count reads tasks (an index of
the open tasks' due dates: it depends on the clock), and a `tz` other than the user's own counts
completion days from the tasks themselves. The statement is a few plain reads (quick to plan);
the streaks and the week are a few dozen rows, shaped here.
"""
from datetime import date, timedelta

from ..db import database

ROWS_SQL = """
WITH me AS (SELECT %s::text AS id),
own AS (SELECT coalesce((SELECT timezone FROM users WHERE id = (SELECT id FROM me)), 'UTC') AS zone),
zone AS (SELECT coalesce(%s, (SELECT zone FROM own)) AS name)
SELECT 'zone', (SELECT name FROM zone), (now() AT TIME ZONE (SELECT name FROM zone))::date::text, 0
UNION ALL
SELECT 'overdue', NULL, NULL, count(*) FROM tasks
 WHERE user_id = (SELECT id FROM me) AND NOT completed AND due_date < now()
UNION ALL
SELECT 'tally', priority || ' ' || status, category, n FROM task_tallies
 WHERE user_id = (SELECT id FROM me) AND n > 0
UNION ALL
SELECT 'day', day::text, NULL, n FROM task_completion_days
 WHERE user_id = (SELECT id FROM me) AND n > 0 AND (SELECT name FROM zone) = (SELECT zone FROM own)
UNION ALL
SELECT 'day', (completed_at AT TIME ZONE (SELECT name FROM zone))::date::text, NULL, count(*) FROM tasks
 WHERE user_id = (SELECT id FROM me) AND completed_at IS NOT NULL AND (SELECT name FROM zone) <> (SELECT zone FROM own)
 GROUP BY 2"""


def of(user, vocabularies, zone=None):
    """The statistics of `user`'s tasks, days in `zone` (an IANA name) or the user's own."""
    tallies, days, overdue, today = [], {}, 0, None
    for kind, key, extra, n in database.execute_sql(ROWS_SQL, (user, zone)).fetchall():
        if kind == "tally":
            priority, status = key.split(" ", 1)
            tallies.append((priority, status, extra, n))
        elif kind == "day":
            days[date.fromisoformat(key)] = n
        elif kind == "overdue":
            overdue = n
        else:
            today = date.fromisoformat(extra)
    total = sum(n for *_, n in tallies)
    completed = sum(n for _, status, _, n in tallies if status == vocabularies.done)
    return {
        "statistics": {"total_tasks": total, "completed_tasks": completed, "pending_tasks": total - completed,
                       "overdue_tasks": overdue,
                       "completion_rate": round(completed * 100 / total, 1) if total else 0,
                       "total_completions": completed},
        "by_priority": _by(vocabularies.priority.values, ((p, n) for p, _, _, n in tallies)),
        "by_status": _by(vocabularies.status.values, ((s, n) for _, s, _, n in tallies)),
        "by_category": _by_category(tallies),
        "streak": _streak(days, today),
        "weekly": _week(days, today),
    }


def _by(values, counted):
    found = dict.fromkeys(values, 0)
    for value, n in counted:
        if value in found:
            found[value] += n
    return found


def _by_category(tallies):
    found = {}
    for _, _, category, n in tallies:
        name = category or "none"
        found[name] = found.get(name, 0) + n
    return {name: found[name] for name in sorted(found) if name != "none"} | {"none": found.get("none", 0)}


def _streak(days, today):
    """Consecutive days with a completion: the run ending today or yesterday, and the longest."""
    current = longest = run = 0
    previous = None
    for day in sorted(days):
        run = run + 1 if previous is not None and day - previous == timedelta(days=1) else 1
        longest, previous = max(longest, run), day
    if previous is not None and previous >= today - timedelta(days=1):
        current = run
    return {"current_streak": current, "longest_streak": longest,
            "last_completion_date": previous.isoformat() if previous else None}


def _week(days, today):
    """The current ISO week, Monday first, all seven days."""
    monday = today - timedelta(days=today.weekday())
    week = [{"date": day.isoformat(), "completed_count": days.get(day, 0)}
            for day in (monday + timedelta(days=n) for n in range(7))]
    return {"week_start": monday.isoformat(), "days": week, "total": sum(day["completed_count"] for day in week)}
