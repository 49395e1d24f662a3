"""Bulk data for benchmarks (`flask --app wsgi seed-bulk`): users with the richer task (time
zones, tags and links, categories, statuses, reminders, recurring tasks), written by COPY in one
transaction. bench/ reads the layout constants."""
import random

from .admin_db import admin_transaction, copy_lines, move_ids_past

# Bulk data ---------------------------------------------------------------------------------
# What the bulk seed writes, one knob per part of the task (bench/ reads the layout constants).
# Bump BULK_SEED_VERSION whenever what seed_bulk writes changes: bench/run re-seeds a database
# whose stored version differs.
BULK_SEED_VERSION = 2

VERBS = ("Buy", "Write", "Call", "Fix", "Plan", "Review", "Clean", "Email", "Book", "Read",
         "Prepare", "Check", "Update", "Pay", "Schedule", "Organise", "Test", "Ship")
NOUNS = ("groceries", "report", "dentist", "bike", "budget", "slides", "garage", "invoice",
         "flights", "contract", "newsletter", "backlog", "garden", "taxes", "release", "car",
         "meeting notes", "birthday gift", "insurance", "blog post")
CATEGORIES = ("work", "personal", "home", "health", "finance")  # and none, 40% of tasks
BULK_TAGS = (("work", "#3B82F6"), ("home", "#10B981"), ("errands", None), ("urgent", "#EF4444"),
             ("someday", None))  # every bulk user has these five
TAGS_PER_TASK_WEIGHTS = (40, 35, 20, 5)  # % of tasks with 0, 1, 2, 3 tags
RULES = ("FREQ=DAILY", "FREQ=WEEKLY", "FREQ=WEEKLY;BYDAY=MO,WE,FR", "FREQ=MONTHLY;BYMONTHDAY=1,15",
         "FREQ=DAILY;INTERVAL=2")
TIME_ZONES = ("UTC", "UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo")
# Every RECURRING_EVERY-th task of a user, from its RECURRING_AT-th (0-based, oldest first), is
# recurring and pending, in the first state: completing one creates its next occurrence. A
# benchmark finds them by arithmetic; the oldest task (0) is never one (it gets toggled).
RECURRING_EVERY, RECURRING_AT = 5, 2
SPREAD_SECONDS = 365 * 86400  # created_at values spread over the past year
CHUNK_TASKS = 50_000
NULL = r"\N"  # in COPY's text format


def bulk_user_id(prefix, number):
    """The id of bulk user `number` (1-based): predictable, so a benchmark can mint tokens."""
    return f"{prefix}-{number:05d}"


def heavy_user_id(prefix):
    """The id of the one user holding `--heavy-user-tasks` tasks."""
    return f"{prefix}-heavy"


def count_bulk_users(db, prefix):
    """How many users with ids under `prefix-` exist."""
    with admin_transaction(db) as cursor:
        cursor.execute("SELECT count(*) FROM users WHERE starts_with(id, %s)", (prefix + "-",))
        return cursor.fetchone()[0]


def is_recurring_slot(number):
    """Whether a bulk user's task `number` (0-based, oldest first) is one of its recurring tasks."""
    return number % RECURRING_EVERY == RECURRING_AT


class _Vocabulary:
    """The database's vocabularies as the seed draws from them (whatever the deployment configured)."""

    def __init__(self, cursor):
        cursor.execute("SELECT value FROM task_priorities ORDER BY rank")
        priorities = [value for (value,) in cursor.fetchall()]
        cursor.execute("SELECT value FROM task_statuses ORDER BY rank")
        statuses = [value for (value,) in cursor.fetchall()]
        self.priorities = (*priorities, priorities[len(priorities) // 2])  # the middle one twice as often
        self.first, self.done = statuses[0], statuses[-1]
        self.open = (statuses[0], *statuses[:-1])  # pending tasks: the first state twice as often


def _task_lines(rng, vocabulary, user_id, first_id, count, tag_ids, links):
    """COPY lines for `count` tasks of `user_id` with ids from `first_id`, oldest first so ids
    and created_at agree; the task-tag links go to `links` (COPY lines too)."""
    step = SPREAD_SECONDS // max(count, 1)
    for number in range(count):
        task_id = first_id + number
        title = f"{rng.choice(VERBS)} {rng.choice(NOUNS)} #{number + 1}"
        description = f"Bulk task {number + 1} of {user_id}" if rng.random() < 0.3 else NULL
        age = max(SPREAD_SECONDS - number * step - rng.randrange(max(step, 1)), 0)
        category = rng.choice(CATEGORIES) if rng.random() < 0.6 else NULL
        rule = remind = completed_age = NULL
        if is_recurring_slot(number):
            completed, status = "f", vocabulary.first
            due = rng.randint(-48, 14 * 24)
            rule = rng.choice(RULES)
            if rng.random() < 0.3:
                remind = str(due * 60 - 30)  # half an hour before it is due
        else:
            done = rng.random() < 0.3
            completed, status = ("t", vocabulary.done) if done else ("f", rng.choice(vocabulary.open))
            due = rng.randint(-720, 2160) if rng.random() < 0.5 else None
            if done:
                completed_age = str(rng.randrange(age + 1))  # completed some time after it was created
            elif rng.random() < 0.12:
                remind = str(rng.randint(-240 * 60, 120 * 60))  # two thirds of them due already
        due = NULL if due is None else str(due)
        for tag_id in rng.sample(tag_ids, rng.choices(range(4), TAGS_PER_TASK_WEIGHTS)[0]):
            links.append(f"{user_id}\t{task_id}\t{tag_id}\n")
        priority = rng.choice(vocabulary.priorities)
        yield (f"{task_id}\t{user_id}\t{title}\t{description}\t{completed}\t{status}\t{priority}"
               f"\t{category}\t{due}\t{remind}\t{rule}\t{age}\t{completed_age}\n")


def _chunks(plan):
    """Group [(user_id, task count)] into chunks of about CHUNK_TASKS tasks: (chunk, tasks in it)."""
    chunk, size = [], 0
    for user_id, count in plan:
        chunk.append((user_id, count))
        size += count
        if size >= CHUNK_TASKS:
            yield chunk, size
            chunk, size = [], 0
    if chunk:
        yield chunk, size


def _reserve_ids(cursor, table, count):
    """The first of `count` consecutive ids of `table` nobody else will take (the sequence moves
    past them; the caller holds a lock against concurrent inserts)."""
    first = move_ids_past(cursor, table)
    if count:
        cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, true)", (table, first + count - 1))
    return first


SEED_TASK_COLUMNS = ("id", "user_id", "title", "description", "completed", "status", "priority", "category",
                     "due_in_hours", "remind_in_minutes", "recurrence", "age_seconds", "completed_age_seconds")
# created_at = updated_at, as for a task created then (the touch trigger only fires on UPDATE);
# completed_at between then and now; due dates and reminders on the hour (or half hour).
INSERT_TASKS = """INSERT INTO tasks (id, user_id, title, description, completed, status, priority, category,
    due_date, remind_at, recurrence, completed_at, created_at, updated_at)
SELECT id, user_id, title, description, completed, status, priority, category,
    hour + due_in_hours * interval '1 hour', hour + remind_in_minutes * interval '1 minute', recurrence,
    now() - completed_age_seconds * interval '1 second',
    now() - age_seconds * interval '1 second', now() - age_seconds * interval '1 second'
FROM seed_tasks, date_trunc('hour', now()) AS hour"""


def seed_bulk(db, users, tasks_per_user, heavy_tasks=0, prefix="bench-user", replace=False,
              seed=1, progress=None):
    """Create `users` users (ids prefix-00001...) with `tasks_per_user` tasks each, plus one user
    prefix-heavy with `heavy_tasks` tasks when asked; all in one transaction.

    Each user has a time zone and the five BULK_TAGS; each task a title, priority, status
    (completed ones in the last state, with completed_at), often a category, a due date, tags,
    sometimes a reminder (some due), and every RECURRING_EVERY-th one a recurrence (see
    is_recurring_slot). `replace` first deletes the users under the prefix (their tasks go by
    cascade). `progress` is called with the number of tasks written after each chunk. Returns
    (users, tasks) added. Ids are consecutive per user (oldest task first) and the identity
    sequences end past them.
    """
    rng = random.Random(seed)  # noqa: S311 - sample data, not secrets
    plan = [(bulk_user_id(prefix, n), tasks_per_user) for n in range(1, users + 1)]
    if heavy_tasks:
        plan.append((heavy_user_id(prefix), heavy_tasks))
    with admin_transaction(db) as cursor:
        if replace:
            cursor.execute("DELETE FROM users WHERE starts_with(id, %s)", (prefix + "-",))
        # The ids are chosen here, so no other insert may take one meanwhile; reads go on.
        cursor.execute("LOCK TABLE tasks, tags IN SHARE ROW EXCLUSIVE MODE")
        vocabulary = _Vocabulary(cursor)
        task_id = _reserve_ids(cursor, "tasks", sum(count for _, count in plan))
        tag_base = _reserve_ids(cursor, "tags", len(plan) * len(BULK_TAGS))
        tag_ids = {uid: list(range(tag_base + n * len(BULK_TAGS), tag_base + (n + 1) * len(BULK_TAGS)))
                   for n, (uid, _) in enumerate(plan)}
        cursor.execute("CREATE TEMP TABLE seed_users (id text, email text, name text, timezone text) ON COMMIT DROP")
        copy_lines(cursor, "seed_users", ("id", "email", "name", "timezone"),
                   (f"{uid}\t{uid}@bench.example.com\tBench {uid}\t{rng.choice(TIME_ZONES)}\n" for uid, _ in plan))
        cursor.execute("INSERT INTO users (id, email, name, timezone) SELECT id, email, name, timezone FROM seed_users")
        cursor.execute("CREATE TEMP TABLE seed_tags (id bigint, user_id text, name text, color text) ON COMMIT DROP")
        copy_lines(cursor, "seed_tags", ("id", "user_id", "name", "color"),
                   (f"{tag_id}\t{uid}\t{name}\t{color or NULL}\n" for uid, _ in plan
                    for tag_id, (name, color) in zip(tag_ids[uid], BULK_TAGS, strict=True)))
        cursor.execute("INSERT INTO tags (id, user_id, name, color) SELECT id, user_id, name, color FROM seed_tags")
        cursor.execute("CREATE TEMP TABLE seed_tasks (id bigint, user_id text, title text, description text, "
                       "completed boolean, status text, priority text, category text, due_in_hours integer, "
                       "remind_in_minutes integer, recurrence text, age_seconds integer, "
                       "completed_age_seconds integer) ON COMMIT DROP")
        cursor.execute("CREATE TEMP TABLE seed_links (user_id text, task_id bigint, tag_id bigint) ON COMMIT DROP")
        total = analysed = 0
        for chunk, size in _chunks(plan):
            lines, links = [], []
            for user_id, count in chunk:
                lines.extend(_task_lines(rng, vocabulary, user_id, task_id, count, tag_ids[user_id], links))
                task_id += count
            copy_lines(cursor, "seed_tasks", SEED_TASK_COLUMNS, lines)
            cursor.execute(INSERT_TASKS)
            copy_lines(cursor, "seed_links", ("user_id", "task_id", "tag_id"), links)
            cursor.execute("INSERT INTO task_tags (user_id, task_id, tag_id) SELECT user_id, task_id, tag_id "
                           "FROM seed_links")
            cursor.execute("TRUNCATE seed_tasks, seed_links")
            total += size
            if total >= 2 * analysed:
                # The tag-limit trigger's plans are made once per session from the statistics of
                # then: planned for a table of a few rows, a check of a chunk's links would scan
                # all the links so far per link (minutes). Fresh statistics as the tables grow.
                cursor.execute("ANALYZE tasks, task_tags")
                analysed = total
            if progress:
                progress(size)
    # A bulk load leaves the visibility map unset, so counting a user's tasks would visit the
    # heap for every row rather than read the index alone; VACUUM sets it (and analyzes).
    # VACUUM cannot run in a transaction, nor in the scoped multi-statement prefix: raw cursor.
    with db.connection_context():
        db.connection().cursor().execute("VACUUM (ANALYZE) users, tags, tasks, task_tags")
    return len(plan), total
