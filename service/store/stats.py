"""Statistics (`GET /api/stats`): one statement, its JSON built by PostgreSQL.

Days are the user's (their time zone, or the `tz` asked for). A streak counts consecutive days
with at least one completion (by `completed_at`) ending today or yesterday; the week is the
current ISO week, Monday first. Every vocabulary value is listed, zeros included, in the
vocabulary's order; `by_category` lists each category in use and always `none`.

The counts come from the counters the database keeps (migration 007): task_tallies for the
totals and the breakdowns, task_completion_days for the streaks and the week, so a user with
100,000 tasks costs what a user with 100 does. Only the overdue count reads tasks (an index of
the open tasks' due dates: it depends on the clock), and a `tz` other than the user's own counts
completion days from the tasks themselves.
"""
from ..db import database

STATS_SQL = """
WITH me AS (SELECT %s::text AS id),
own_zone AS (SELECT coalesce((SELECT timezone FROM users WHERE id = (SELECT id FROM me)), 'UTC') AS name),
zone AS (SELECT coalesce(%s, (SELECT name FROM own_zone)) AS name),
today AS (SELECT (now() AT TIME ZONE (SELECT name FROM zone))::date AS day),
done AS (SELECT value FROM task_statuses ORDER BY rank DESC LIMIT 1),
tallies AS (SELECT priority, status, category, n FROM task_tallies WHERE user_id = (SELECT id FROM me)),
totals AS (
    SELECT coalesce(sum(n), 0) AS total,
           coalesce(sum(n) FILTER (WHERE status = (SELECT value FROM done)), 0) AS completed,
           (SELECT count(*) FROM tasks WHERE user_id = (SELECT id FROM me) AND NOT completed AND due_date < now())
               AS overdue
    FROM tallies),
completions AS (  -- completions per day: counted by the database in the user's zone, else from the tasks
    SELECT day, n FROM task_completion_days
    WHERE user_id = (SELECT id FROM me) AND n > 0 AND (SELECT name FROM zone) = (SELECT name FROM own_zone)
    UNION ALL
    SELECT (completed_at AT TIME ZONE (SELECT name FROM zone))::date, count(*) FROM tasks
    WHERE user_id = (SELECT id FROM me) AND completed_at IS NOT NULL
      AND (SELECT name FROM zone) <> (SELECT name FROM own_zone) GROUP BY 1),
runs AS (  -- consecutive days: day minus its position is constant along a run
    SELECT max(day) AS last, count(*) AS length
    FROM (SELECT day, day - (row_number() OVER (ORDER BY day))::int AS run FROM completions) numbered GROUP BY run),
week AS (SELECT date_trunc('week', (SELECT day FROM today))::date AS first)
SELECT json_build_object(
  'statistics', (SELECT json_build_object(
      'total_tasks', total, 'completed_tasks', completed, 'pending_tasks', total - completed,
      'overdue_tasks', overdue,
      'completion_rate', CASE WHEN total = 0 THEN 0 ELSE round(completed * 100.0 / total, 1) END,
      'total_completions', completed) FROM totals),
  'by_priority', (SELECT json_object_agg(p.value, coalesce(c.n, 0) ORDER BY p.rank) FROM task_priorities p
      LEFT JOIN (SELECT priority, sum(n) AS n FROM tallies GROUP BY priority) c ON c.priority = p.value),
  'by_status', (SELECT json_object_agg(s.value, coalesce(c.n, 0) ORDER BY s.rank) FROM task_statuses s
      LEFT JOIN (SELECT status, sum(n) AS n FROM tallies GROUP BY status) c ON c.status = s.value),
  'by_category', (SELECT json_object_agg(category, n ORDER BY category = 'none', category) FROM (
      SELECT category, sum(n) AS n FROM (
          SELECT CASE WHEN category = '' THEN 'none' ELSE category END AS category, n FROM tallies WHERE n > 0
          UNION ALL SELECT 'none', 0) counted GROUP BY category) categories),
  'streak', json_build_object(
      'current_streak', coalesce((SELECT length FROM runs WHERE last >= (SELECT day FROM today) - 1
                                  ORDER BY last DESC LIMIT 1), 0),
      'longest_streak', coalesce((SELECT max(length) FROM runs), 0),
      'last_completion_date', (SELECT max(day) FROM completions)),
  'weekly', (SELECT json_build_object(
      'week_start', (SELECT first FROM week),
      'days', json_agg(json_build_object('date', day, 'completed_count', n) ORDER BY day),
      'total', sum(n))
    FROM (SELECT d::date AS day, coalesce((SELECT sum(n) FROM completions WHERE completions.day = d::date), 0) AS n
          FROM generate_series((SELECT first FROM week)::timestamp, ((SELECT first FROM week) + 6)::timestamp,
                               interval '1 day') AS d) week_days)
)::text"""


def of(user, zone=None):
    """The statistics of `user`'s tasks as JSON text, days in `zone` (an IANA name) or the user's own."""
    return database.execute_sql(STATS_SQL, (user, zone)).fetchone()[0]
