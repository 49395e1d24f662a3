"""The thin reference's SQL, written by hand as a careful Flask + psycopg2 app would (not taken
from the service's statement log): plain columns that psycopg2 decodes, each task's tags
aggregated in the same statement by a correlated json_agg, a list's counts with
count(*) FILTER in the same statement (a LEFT JOIN LATERAL keeps them when the page is empty),
the statistics as plain aggregates over the user's rows (GROUPING SETS: one scan).

Every statement is sent with the same row-level-security scope prefix as the service's
(service/db/pool.py), in the same message, because the reference connects as the same ordinary
role: without it the policies would hide every row.
"""

SCOPE = ("SELECT set_config('app.user_id', %(user)s, true), set_config('app.bypass_rls', 'off', true), "
         "set_config('statement_timeout', %(timeout)s, true), set_config('TimeZone', 'UTC', true); ")

# A task's columns, in the order reference_app.task_json reads them, then its tags.
COLUMNS = ("{t}.id, {t}.user_id, {t}.title, {t}.description, {t}.completed, {t}.priority, {t}.status, "
           "{t}.completed_at, {t}.category, {t}.due_date, {t}.remind_at, {t}.recurrence, {t}.version, "
           "{t}.created_at, {t}.updated_at")
WIDTH = 16  # the columns above plus the tags
TAGS = ("(SELECT coalesce(json_agg(json_build_object('id', g.id, 'user_id', g.user_id, 'name', g.name, "
        "'color', g.color, 'created_at', g.created_at, 'updated_at', g.updated_at) "
        "ORDER BY lower(g.name), g.id), '[]') "
        "FROM task_tags tt JOIN tags g ON g.id = tt.tag_id WHERE tt.task_id = {t}.id)")


def task_columns(table="t"):
    return COLUMNS.format(t=table) + ", " + TAGS.format(t=table)


TAGGED = ("EXISTS (SELECT 1 FROM task_tags tt JOIN tags g ON g.id = tt.tag_id "
          "WHERE tt.task_id = t.id AND g.user_id = %(user)s AND lower(g.name) = %(tag)s)")
AFTER = "(t.created_at, t.id) < (%(after_at)s, %(after_id)s)"


def list_sql(tagged, after):
    """The page (newest first) and its counts; one row of counts with NULL task columns when
    the page is empty."""
    where = "t.user_id = %(user)s" + (" AND " + TAGGED if tagged else "")
    page_where = where + (" AND " + AFTER if after else "")
    return (SCOPE + "SELECT c.total, c.done, p.* FROM "
            f"(SELECT count(*) AS total, count(*) FILTER (WHERE t.completed) AS done FROM tasks t WHERE {where}) c "
            f"LEFT JOIN LATERAL (SELECT {task_columns()} FROM tasks t WHERE {page_where} "
            "ORDER BY t.created_at DESC, t.id DESC LIMIT %(fetch)s) p ON true")


GET = SCOPE + f"SELECT {task_columns()} FROM tasks t WHERE t.user_id = %(user)s AND t.id = %(id)s"

CREATE = (SCOPE + "INSERT INTO tasks AS t (user_id, title, priority) VALUES (%(user)s, %(title)s, 'medium') "
          f"RETURNING {COLUMNS.format(t='t')}")

# Completing or toggling: the task as it was and, unless that would complete a recurring task
# (whose next occurrence must be computed first), the task as written. `{value}` is the new
# completion: NOT t.completed (toggle), true or false.
COMPLETE = (SCOPE + "WITH was AS (SELECT t.completed, t.recurrence, t.due_date, t.remind_at, t.version, "
            "u.timezone FROM tasks t JOIN users u ON u.id = t.user_id WHERE t.user_id = %(user)s AND t.id = %(id)s), "
            "written AS (UPDATE tasks t SET completed = {value} WHERE t.user_id = %(user)s AND t.id = %(id)s "
            "AND (t.recurrence IS NULL OR t.completed OR NOT ({value})) "
            f"RETURNING {task_columns()}) "
            "SELECT was.*, written.* FROM was LEFT JOIN written ON true")
# A recurring task completed and its next occurrence inserted, in one statement (so one
# transaction), at the version read; the occurrence takes the task's tags.
COMPLETE_RECURRING = (
    SCOPE + "WITH done AS (UPDATE tasks t SET completed = true WHERE t.user_id = %(user)s AND t.id = %(id)s "
    f"AND t.version = %(version)s AND NOT t.completed RETURNING {task_columns()}), "
    "following AS (INSERT INTO tasks AS n (user_id, title, description, priority, category, recurrence, due_date, "
    "remind_at) SELECT user_id, title, description, priority, category, %(rule)s, %(due)s, %(remind)s FROM done "
    f"RETURNING {COLUMNS.format(t='n')}), "
    "linked AS (INSERT INTO task_tags (user_id, task_id, tag_id) SELECT f.user_id, f.id, tt.tag_id "
    "FROM following f, task_tags tt WHERE tt.task_id = %(id)s) "
    "SELECT done.*, following.* FROM done LEFT JOIN following ON true")
# ... and when its rule has ended: completed, nothing follows.
COMPLETE_LAST = (SCOPE + "UPDATE tasks t SET completed = true WHERE t.user_id = %(user)s AND t.id = %(id)s "
                 f"AND t.version = %(version)s AND NOT t.completed RETURNING {task_columns()}")

REMINDERS = (SCOPE + "SELECT c.n, p.* FROM (SELECT count(*) AS n FROM tasks t WHERE t.user_id = %(user)s "
             "AND NOT t.completed AND t.remind_at <= now()) c "
             f"LEFT JOIN LATERAL (SELECT {task_columns()} FROM tasks t WHERE t.user_id = %(user)s "
             "AND NOT t.completed AND t.remind_at <= now() ORDER BY t.remind_at, t.id LIMIT %(limit)s) p ON true")

# One scan of the user's tasks, grouped five ways: () for the totals, by priority, by status,
# by category, by the local day of completion; `today` in the user's zone rides along. The empty
# grouping set gives its row even for a user without tasks.
STATS = (SCOPE + "WITH zone AS (SELECT coalesce(%(tz)s, (SELECT timezone FROM users WHERE id = %(user)s)) AS name) "
         "SELECT grouping(t.priority, t.status, coalesce(t.category, 'none'), "
         "(t.completed_at AT TIME ZONE zone.name)::date) AS sets, "
         "t.priority, t.status, coalesce(t.category, 'none'), (t.completed_at AT TIME ZONE zone.name)::date, "
         "count(*), count(*) FILTER (WHERE t.completed), "
         "count(*) FILTER (WHERE NOT t.completed AND t.due_date < now()), "
         "(SELECT (now() AT TIME ZONE name)::date FROM zone) "
         "FROM tasks t, zone WHERE t.user_id = %(user)s "
         "GROUP BY GROUPING SETS ((), (t.priority), (t.status), (coalesce(t.category, 'none')), "
         "((t.completed_at AT TIME ZONE zone.name)::date))")
VOCABULARIES = "SELECT (SELECT array_agg(value ORDER BY rank) FROM task_priorities), " \
               "(SELECT array_agg(value ORDER BY rank) FROM task_statuses)"
