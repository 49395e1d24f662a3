"""Plans of the section 6 list filters (tag, category, status): read through indexes, with no
sequential scan of tasks, task_tags or tags, for a heavy user among many (as the ordinary role,
row-level security applied)."""
import re

import orjson
import pytest
from werkzeug.datastructures import MultiDict

from tests.conftest import admin_connect, create_database, drop_database, make_config, migrate, role_url
from tests.test_schema import explain

HEAVY = "plan-heavy"
SEQUENTIAL = re.compile(r"Seq Scan on (tasks|task_tags|tags)\b")


@pytest.fixture(scope="module")
def organised(admin_url):
    """A fresh database: 200 users with 10 tags each and one heavy user with 30, 40,000 tasks of
    which 3,000 are the heavy user's, in three states and four categories (one null), about two
    tags each; vacuumed and analyzed. Yields the app's kind of database object (ordinary role)."""
    from service.db import make_database
    from service.db.models import Tag, Task, TaskTag, User

    name = create_database(admin_url, prefix="todo_orgplan")
    url = role_url(admin_url, name)
    _router, migrated = migrate(url, make_config())
    migrated.close_all()
    conn = admin_connect(admin_url, name)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO users (id) SELECT 'plan-' || n FROM generate_series(1, 200) AS n")
        cur.execute("INSERT INTO users (id) VALUES (%s)", (HEAVY,))
        cur.execute("INSERT INTO tags (user_id, name) SELECT 'plan-' || u, 'tag-' || k "
                    "FROM generate_series(1, 200) AS u, generate_series(1, 10) AS k")
        cur.execute("INSERT INTO tags (user_id, name) SELECT %s, 'tag-' || k FROM generate_series(1, 30) AS k",
                    (HEAVY,))
        cur.execute("""
            INSERT INTO tasks (user_id, title, status, priority, category, created_at, updated_at)
            SELECT CASE WHEN n <= 3000 THEN %s ELSE 'plan-' || (n %% 200 + 1) END,
                   'task ' || md5(n::text),
                   CASE WHEN (n / 7) %% 4 = 0 THEN 'done' WHEN (n / 7) %% 3 = 0 THEN 'in_progress' ELSE 'todo' END,
                   (ARRAY['low', 'medium', 'high'])[n %% 3 + 1],
                   (ARRAY['work', 'Home', 'errands', NULL])[(n / 3) %% 4 + 1],
                   now() - n * interval '1 minute', now() - n * interval '30 seconds'
            FROM generate_series(1, 40000) AS n""", (HEAVY,))
        cur.execute("""
            INSERT INTO task_tags (user_id, task_id, tag_id)
            SELECT t.user_id, t.id, g.id FROM tasks t JOIN tags g ON g.user_id = t.user_id
               AND g.name IN ('tag-' || (t.id % 10 + 1), 'tag-' || (t.id % 7 + 1))""")
        cur.execute("VACUUM (ANALYZE) users, tasks, tags, task_tags")
    conn.close()
    db = make_database(make_config(), url)
    with db.bind_ctx([User, Task, Tag, TaskTag]):
        yield db
    db.close_all()
    drop_database(admin_url, name)


def sent(db, user_id, args):
    """The one statement the task store sends for the list query `args`, and the list's body."""
    from service.db import database
    from service.list_params import parse_list_params
    from service.store import tasks as store
    from service.vocabularies import DEFAULT_VOCABULARIES as VOCABULARIES

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
        body = store.page(user_id, parse_list_params(MultiDict(args), VOCABULARIES), VOCABULARIES)
    finally:
        db.release()
        del db.execute_sql
        database.initialize(previous)
    assert len(statements) == 1, statements
    return statements[0], body


FILTERS = {
    "one tag": [("tag", "tag-3")],
    "two tags": [("tag", "TAG-9"), ("tag", "tag-3")],
    "comma tags by priority": [("tags", "tag-9, tag-4"), ("sort", "priority")],
    "category": [("category", "Work")],
    "category by title": [("category", "home"), ("sort", "title")],
    "state": [("status", "in_progress")],
    "state and category": [("status", "done"), ("category", "work")],
    "pending and tag": [("status", "pending"), ("tag", "tag-9")],
}
# (A category by title is read off the title index, filtered: its counts come from the counters.)
INDEXES = {"one tag": "tags_user_name_key", "two tags": "tags_user_name_key", "category": "tasks_user_category",
           "state": "tasks_user_status"}


@pytest.mark.parametrize("user_id", [HEAVY, "plan-9"])
@pytest.mark.parametrize("label", list(FILTERS))
def test_section_6_filters_read_indexes(organised, user_id, label):
    (sql, params), body = sent(organised, user_id, FILTERS[label])
    assert body["count"] > 0, "the filter should match some tasks"
    plan = explain(organised, user_id, sql, params)
    where = f"{user_id} {label}:\n{plan}"
    assert not SEQUENTIAL.search(plan), where
    assert re.search(r"\(InitPlan \d+\)\.col1|\$\d", plan), "row-level security not applied: " + where
    if user_id == HEAVY and label in INDEXES:
        assert INDEXES[label] in plan, where


def test_the_filters_find_what_the_data_holds(organised):
    """The plans above are of queries that answer right."""
    heavy = range(1, 3001)  # the heavy user's task ids
    _, body = sent(organised, HEAVY, [("tag", "tag-7"), ("tag", "TAG-3"), ("limit", "500")])
    assert body["count"] == sum(1 for n in heavy if {7, 3} <= {n % 10 + 1, n % 7 + 1})
    tasks = orjson.loads(orjson.dumps(body["tasks"]))
    assert all({"tag-7", "tag-3"} <= {tag["name"] for tag in task["tags"]} for task in tasks)
    _, body = sent(organised, HEAVY, [("category", "WORK")])
    assert body["count"] == sum(1 for n in heavy if (n // 3) % 4 == 0)
    _, body = sent(organised, HEAVY, [("status", "in_progress")])
    done = sum(1 for n in heavy if (n // 7) % 4 == 0)
    in_progress = sum(1 for n in heavy if (n // 7) % 4 and (n // 7) % 3 == 0)
    assert (body["count"], body["completed_count"], body["pending_count"]) == (in_progress, done, 3000 - done)
