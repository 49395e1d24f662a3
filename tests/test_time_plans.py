"""The time queries read indexes (contract section 6; issue 12): the due-date filters, the due
reminders and the statistics statement, as the store sends them, EXPLAINed as the ordinary role
with row-level security on, for a heavy user (a few thousand tasks among many users' tens of
thousands): an index serves each, and no plan scans `tasks` sequentially."""
import re

import pytest
from werkzeug.datastructures import MultiDict

from service.db import database, make_database
from service.db.models import Task, User
from service.list_params import due_bound, parse_list_params
from service.store import reminders, stats
from service.store import tasks as store
from service.vocabularies import DEFAULT_VOCABULARIES as VOCABULARIES
from tests.conftest import admin_connect, create_database, drop_database, make_config, migrate, role_url

HEAVY = "time-heavy"
LIGHT = "time-11"  # n = 200k + 10: due dates and reminders, none completed


@pytest.fixture(scope="module")
def planned(admin_url):
    """A fresh database: 40,000 tasks over 201 users, 3,000 of them one user's, with due dates,
    reminders, completions spread over a year and some recurring; vacuumed and analyzed. Yields
    the app's kind of database object on it, as the ordinary (row-level secured) role."""
    name = create_database(admin_url, prefix="todo_time_plan")
    url = role_url(admin_url, name)
    _router, migrated = migrate(url, make_config())
    migrated.close_all()
    conn = admin_connect(admin_url, name)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO users (id, timezone) SELECT 'time-' || n, "
                    "(ARRAY['UTC', 'Europe/Berlin', 'Pacific/Auckland'])[n % 3 + 1] FROM generate_series(1, 200) AS n")
        cur.execute("INSERT INTO users (id, timezone) VALUES (%s, 'America/New_York')", (HEAVY,))
        cur.execute("""
            INSERT INTO tasks (user_id, title, completed, status, completed_at, priority, category, due_date,
                               remind_at, recurrence, created_at, updated_at)
            SELECT CASE WHEN n <= 3000 THEN %s ELSE 'time-' || (n %% 200 + 1) END,
                   'task ' || md5(n::text),
                   n %% 4 = 0, CASE WHEN n %% 4 = 0 THEN 'done' WHEN n %% 4 = 1 THEN 'in_progress' ELSE 'todo' END,
                   CASE WHEN n %% 4 = 0 THEN now() - (n %% 365) * interval '1 day' END,
                   (ARRAY['low', 'medium', 'high'])[n %% 3 + 1],
                   CASE WHEN n %% 5 = 0 THEN 'work' WHEN n %% 5 = 1 THEN 'home' END,
                   CASE WHEN n %% 2 = 0 THEN now() + (n %% 3000 - 1500) * interval '1 hour' END,
                   CASE WHEN n %% 10 = 0 THEN now() + (n %% 3000 - 1500) * interval '1 hour' END,
                   CASE WHEN n %% 20 = 0 THEN 'FREQ=WEEKLY;BYDAY=MO' END,
                   now() - n * interval '1 minute', now() - n * interval '30 seconds'
            FROM generate_series(1, 40000) AS n""", (HEAVY,))
        cur.execute("VACUUM (ANALYZE) users, tasks")
    conn.close()
    db = make_database(make_config(), url)
    with db.bind_ctx([User, Task]):
        yield db
    db.close_all()
    drop_database(admin_url, name)


def sent(db, user_id, call):
    """The statements `call()` sends through the shared database proxy as `user_id`, and its answer."""
    statements = []
    original = db.execute_sql

    def record(sql, params=None, **options):
        statements.append((sql, params))
        return original(sql, params, **options)

    db.execute_sql = record
    previous = database.obj
    database.initialize(db)
    db.open_for(user_id)
    try:
        return statements, call()
    finally:
        db.release()
        del db.execute_sql
        database.initialize(previous)


def explain(db, user_id, sql, params):
    """The plan of `sql` as `user_id` (app.user_id set, row-level security active)."""
    db.bind_user(user_id)
    try:
        with db.connection_context():
            return "\n".join(row[0] for row in db.execute_sql("EXPLAIN " + sql, params).fetchall())
    finally:
        db.unbind()


def assert_indexed(db, user_id, statements, index=None):
    assert len(statements) == 1, statements
    plan = explain(db, user_id, *statements[0])
    assert "Seq Scan on tasks" not in plan, plan
    assert re.search(r"\(InitPlan \d+\)\.col1|\$\d", plan), "row-level security not applied:\n" + plan
    assert re.search(r"Index (Only )?Scan|Bitmap Index Scan", plan), plan
    if index is not None:
        assert re.search(rf"(on|using) {index}\b", plan), plan
    return plan


FILTERS = [{"due_before": "2026-12-01T09:00:00Z"}, {"due_before": "2026-12-01"},
           {"due_after": "2026-12-01T09:00:00Z"}, {"due_after": "2026-12-01"},
           {"due_after": "2026-11-01", "due_before": "2026-12-01"},
           {"overdue": "true"}, {"overdue": "false"}, {"has_due_date": "true"}, {"has_due_date": "false"}]


@pytest.mark.parametrize("user_id", [HEAVY, LIGHT])
@pytest.mark.parametrize("sort", ["created", "due_date"])
@pytest.mark.parametrize("params", FILTERS, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()))
def test_the_due_filters_read_an_index(planned, user_id, sort, params):
    args = MultiDict({**params, "sort": sort, "limit": "20"})
    statements, page = sent(planned, user_id, lambda: store.page(
        user_id, parse_list_params(args, VOCABULARIES), VOCABULARIES))
    if user_id == HEAVY:
        assert page["count"] > 0
    assert_indexed(planned, user_id, statements)


@pytest.mark.parametrize("bounds", [("2026-11-20T00:00:00Z", "2026-12-10T00:00:00Z"), ("2026-11-20", "2026-12-10")])
def test_a_due_date_range_sorted_by_due_date_is_an_index_range(planned, bounds):
    args = MultiDict({"due_after": bounds[0], "due_before": bounds[1], "sort": "due_date", "order": "asc"})
    statements, _ = sent(planned, HEAVY, lambda: store.page(HEAVY, parse_list_params(args, VOCABULARIES),
                                                            VOCABULARIES))
    plan = assert_indexed(planned, HEAVY, statements)
    # the range is the index's condition (not a filter over every task of the user)
    assert re.search(r"tasks_user_due_(asc|desc)[^\n]*\n\s*Index Cond: \(\(user_id = 'time-heavy'::text\) "
                     r"AND \(due_date < .*\) AND \(due_date >= ", plan), plan


@pytest.mark.parametrize("user_id", [HEAVY, LIGHT])
@pytest.mark.parametrize("until", [None, "2030-01-01T00:00:00Z", "2026-12-01"])
def test_due_reminders_read_their_partial_index(planned, user_id, until):
    bound = due_bound(until) if until else None
    statements, body = sent(planned, user_id, lambda: reminders.due(user_id, bound))
    assert body["count"] > 0
    assert_indexed(planned, user_id, statements, "tasks_user_reminders")


@pytest.mark.parametrize("user_id", [HEAVY, LIGHT])
@pytest.mark.parametrize("zone", [None, "Asia/Tokyo"])
def test_the_statistics_statement_reads_indexes_only(planned, user_id, zone):
    statements, body = sent(planned, user_id, lambda: stats.of(user_id, VOCABULARIES, zone))
    assert body["statistics"]["total_tasks"] > 0
    plan = assert_indexed(planned, user_id, statements)
    # The week and the streaks: the counters in the user's own zone, the tasks in another.
    assert ("tasks_user_completed_at" if zone else "task_completion_days_pkey") in plan, plan
