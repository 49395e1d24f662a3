"""Demo data for a newcomer (`flask --app wsgi seed`); bulk data for benchmarks is bulk_seed.py's."""
from ..vocabularies import TABLES, fold
from .admin_db import admin_transaction

DEMO_USERS = (
    ("demo-alice", "alice@example.com", "Alice Demo"),
    ("demo-bob", "bob@example.com", "Bob Demo"),
)
# (user id, name, colour): a few labels each
DEMO_TAGS = (
    ("demo-alice", "home", "#4CAF50"),
    ("demo-alice", "errands", "#FF9800"),
    ("demo-alice", "Urgent", "#F44336"),
    ("demo-bob", "home", "#2196F3"),
    ("demo-bob", "money", None),
    ("demo-bob", "weekend", "#9C27B0"),
)
# (user id, title, description, state, priority, due in days or None, category, tag names);
# the state is "todo", "in_progress" or "done", the priority "low", "medium" or "high": both are
# read against the database's vocabularies (see _configured).
DEMO_TASKS = (
    ("demo-alice", "Buy groceries", "Milk, eggs, bread", "todo", "medium", 1, "shopping", ("errands", "home")),
    ("demo-alice", "Write the quarterly report", None, "in_progress", "high", 3, "work", ("Urgent",)),
    ("demo-alice", "Book dentist appointment", None, "done", "low", None, "personal", ()),
    ("demo-alice", "Renew passport", "Photos first", "todo", "high", 14, "personal", ("errands", "Urgent")),
    ("demo-alice", "Water the plants", None, "done", "low", None, None, ("home",)),
    ("demo-bob", "Fix the bike", "Rear brake squeaks", "in_progress", "medium", 7, "personal", ("weekend",)),
    ("demo-bob", "Call mum", None, "todo", "high", 0, "family", ()),
    ("demo-bob", "Read 'The Pragmatic Programmer'", None, "todo", "low", None, None, ("weekend", "home")),
    ("demo-bob", "File taxes", "Deadline!", "todo", "high", 30, "admin", ("money",)),
    ("demo-bob", "Clean the garage", None, "done", "medium", None, "home", ("home", "weekend")),
)
RELATIVE = {"low": 0.0, "medium": 0.5, "high": 1.0, "todo": 0.0, "in_progress": 0.5, "done": 1.0}


def _configured(cursor, table):
    """{demo word: value} for a vocabulary as the database holds it (the release phase applied the
    configuration's): the value spelled like the word (folded), else the one at the same relative
    place (low: the lowest, medium: the middle, high: the highest). States: todo is always the
    first and done the last (the database completes exactly the tasks there)."""
    cursor.execute(f"SELECT array_agg(value ORDER BY rank) FROM {table}")  # noqa: S608 - a constant
    (values,) = cursor.fetchone()
    by_key = {fold(value): value for value in values}
    found = {word: by_key.get(word, values[int(place * (len(values) - 1))]) for word, place in RELATIVE.items()}
    return {**found, "todo": values[0], "done": values[-1]}


def seed_demo(db):
    """Insert the demo users, tags and tasks that are missing; returns (users added, tasks added).

    A task counts as present when its owner already has a task with the same title, and a tag when
    they have one of that name (ignoring case), so running this again adds nothing. New tasks get
    their tags; a task that was there keeps the tags it has.
    """
    users_added = tasks_added = 0
    with admin_transaction(db) as cursor:
        priority, status = _configured(cursor, TABLES["priority"]), _configured(cursor, TABLES["status"])
        for user_id, email, name in DEMO_USERS:
            cursor.execute("INSERT INTO users (id, email, name) VALUES (%s, %s, %s) "
                           "ON CONFLICT (id) DO NOTHING", (user_id, email, name))
            users_added += cursor.rowcount
        for user_id, name, color in DEMO_TAGS:
            cursor.execute("INSERT INTO tags (user_id, name, color) VALUES (%s, %s, %s) "
                           "ON CONFLICT (user_id, lower(name)) DO NOTHING", (user_id, name, color))
        for number, (user_id, title, description, state, importance, due_days, category, tags) in enumerate(DEMO_TASKS):
            age = len(DEMO_TASKS) - number
            # Created a minute apart (the first listed is the oldest), so the default newest-first
            # order shows something. The database keeps `completed` with the status.
            cursor.execute(
                "INSERT INTO tasks (user_id, title, description, status, completed, priority, due_date, category, "
                "created_at, updated_at, completed_at) "
                "SELECT %s, %s, %s, %s, %s, %s, date_trunc('hour', now()) + %s * interval '1 day', %s, "
                "now() - %s * interval '1 minute', now() - %s * interval '1 minute', "
                "now() - %s * interval '1 minute' "  # completed when created (ignored unless completed)
                "WHERE NOT EXISTS (SELECT 1 FROM tasks WHERE user_id = %s AND title = %s) RETURNING id",
                (user_id, title, description, status[state], state == "done", priority[importance], due_days,
                 category, age, age, age, user_id, title))
            added = cursor.fetchone()
            if added is None:
                continue
            tasks_added += 1
            cursor.execute("INSERT INTO task_tags (user_id, task_id, tag_id) SELECT %s, %s, id FROM tags "
                           "WHERE user_id = %s AND lower(name) = ANY(ARRAY(SELECT lower(wanted) "
                           "FROM unnest(%s::text[]) AS wanted))", (user_id, added[0], user_id, list(tags)))
        _demo_time(cursor)
    return users_added, tasks_added


# Time (contract section 6): per demo user, one task recurs (it has a due date) and one reminder is
# due now, so GET /api/reminders shows something. Set on the demo tasks themselves (still ten),
# only where unset: a rerun changes nothing, and a completed task is left alone.
DEMO_RECURRING = (("demo-alice", "Buy groceries", "FREQ=WEEKLY"),
                  ("demo-bob", "Call mum", "FREQ=WEEKLY;COUNT=10"))
DEMO_REMINDERS = (("demo-alice", "Write the quarterly report"), ("demo-bob", "File taxes"))


def _demo_time(cursor):
    for user_id, title, rule in DEMO_RECURRING:
        cursor.execute("UPDATE tasks SET recurrence = %s WHERE user_id = %s AND title = %s AND recurrence IS NULL "
                       "AND due_date IS NOT NULL AND NOT completed", (rule, user_id, title))
    for user_id, title in DEMO_REMINDERS:
        cursor.execute("UPDATE tasks SET remind_at = date_trunc('hour', now()) WHERE user_id = %s AND title = %s "
                       "AND remind_at IS NULL AND NOT completed", (user_id, title))
