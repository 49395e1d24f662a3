"""The benchmark's databases: created on the embedded PostgreSQL (or BENCH_DATABASE_URL's
server), owned by an ordinary role so row-level security applies exactly as in production,
migrated with pw_migrate and seeded with the service's own `seed-bulk` command."""
import contextlib
import json
import os
import subprocess
import sys

import psycopg2
from psycopg2 import sql

from service.config import DEFAULT_DATA_DIR
from service.db import embedded

from .paths import PROJECT, VENV_BIN

ROLE = "todo_bench"
USER_PREFIX = "bench-user"


def user_id(number):
    """The id seed-bulk gives its user `number` (1-based)."""
    return f"{USER_PREFIX}-{number:05d}"


def heavy_user_id():
    return f"{USER_PREFIX}-heavy"


def admin_url():
    """A superuser URL: BENCH_DATABASE_URL (a server the bench may create databases on), else
    the embedded PostgreSQL's."""
    return os.environ.get("BENCH_DATABASE_URL") or embedded.admin_url(DEFAULT_DATA_DIR)


def role_url(admin_url, database, role=ROLE):
    """A URL to `database` on the admin URL's server, as `role`."""
    return embedded.role_url(admin_url, database, role)


def admin_connect(admin, database):
    conn = psycopg2.connect(admin, dbname=database)
    conn.autocommit = True
    return conn


def prepare(admin, database):
    """Create the role and database unless they exist and apply the migrations; the app URL."""
    embedded.ensure_database(admin, database, ROLE)
    url = role_url(admin, database)
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([str(VENV_BIN / "pw_migrate"), "migrate"], cwd=PROJECT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return url


def counts(admin, database):
    """(benchmark users, their tasks, the heavy user's tasks), as the superuser (all rows)."""
    with contextlib.closing(admin_connect(admin, database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT (SELECT count(*) FROM users WHERE starts_with(id, %s) AND id <> %s), "
                    "(SELECT count(*) FROM tasks WHERE starts_with(user_id, %s) AND user_id <> %s), "
                    "(SELECT count(*) FROM tasks WHERE user_id = %s)",
                    (USER_PREFIX + "-", heavy_user_id()) * 2 + (heavy_user_id(),))
        return cur.fetchone()


# What a database was seeded with, kept in its comment: seed-bulk's BULK_SEED_VERSION, the
# shape asked for and the last task id the seed wrote (every later one is the benchmark's own).
MARKER = "todo-bench seed "


def seed_marker(admin, database):
    """The marker of `database` ({version, users, tasks_per_user, heavy, last_task_id}), or None."""
    with contextlib.closing(admin_connect(admin, "postgres")) as conn, conn.cursor() as cur:
        cur.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                    (database,))
        row = cur.fetchone()
    comment = row[0] if row else None
    if not comment or not comment.startswith(MARKER):
        return None
    return json.loads(comment.removeprefix(MARKER))


def mark_seeded(admin, database, shape):
    """Record in the database's comment that it holds `shape` as seeded now."""
    with contextlib.closing(admin_connect(admin, database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0) FROM tasks")
        marker = {**shape, "last_task_id": cur.fetchone()[0]}
        cur.execute(sql.SQL("COMMENT ON DATABASE {} IS %s").format(sql.Identifier(database)),
                    (MARKER + json.dumps(marker),))
    return marker


def drop(admin, database):
    """Drop `database` (a benchmark's own, seeded for another shape): quicker than deleting its rows."""
    with contextlib.closing(admin_connect(admin, "postgres")) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def first_tasks(admin, database, users):
    """{user number: id of that user's oldest task} for users 1..`users`."""
    ids = [user_id(n) for n in range(1, users + 1)]
    with contextlib.closing(admin_connect(admin, database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT user_id, min(id) FROM tasks WHERE user_id = ANY(%s) GROUP BY user_id", (ids,))
        found = dict(cur.fetchall())
    return {n: found[user_id(n)] for n in range(1, users + 1) if user_id(n) in found}


def recurring_pool(admin, database, users, last_task_id):
    """[(user number, task id)] of the seeded recurring tasks of users 1..`users` (all pending
    after `reset`), by id."""
    ids = [user_id(n) for n in range(1, users + 1)]
    with contextlib.closing(admin_connect(admin, database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT user_id, id FROM tasks WHERE user_id = ANY(%s) AND recurrence IS NOT NULL "
                    "AND id <= %s ORDER BY id", (ids, last_task_id))
        return [(int(uid.rsplit("-", 1)[1]), task_id) for uid, task_id in cur.fetchall()]


def seed(url, users, tasks_per_user, heavy_tasks=0, replace=False):
    """Seed through the service's own bulk seeder (COPY), as an operator would: users
    PREFIX-00001.. and PREFIX-heavy (see service/ops/bulk_seed.py)."""
    command = [str(VENV_BIN / "flask"), "--app", "wsgi", "seed-bulk", "--users", str(users),
               "--tasks-per-user", str(tasks_per_user), "--prefix", USER_PREFIX]
    if heavy_tasks:
        command += ["--heavy-user-tasks", str(heavy_tasks)]
    if replace:
        command.append("--replace")
    print(f"seeding: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    subprocess.run(command, cwd=PROJECT, env={**os.environ, "DATABASE_URL": url}, check=True)


def reset(admin, database, last_task_id, vacuum=False):
    """Back to the data as seeded, as far as the scenarios changed it: the tasks they added
    (create's, and the next occurrences of completed recurring tasks) deleted, the seeded
    recurring tasks pending again (in the first state; each version moves on). Returns
    (tasks deleted, recurring tasks reopened). With `vacuum`, the planner's statistics are
    refreshed too (between runs, not between repetitions: it takes seconds)."""
    with contextlib.closing(admin_connect(admin, database)) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM tasks WHERE id > %s", (last_task_id,))
        deleted = cur.rowcount
        cur.execute("UPDATE tasks SET completed = false WHERE id <= %s AND recurrence IS NOT NULL AND completed",
                    (last_task_id,))
        reopened = cur.rowcount
        if vacuum:
            cur.execute("VACUUM ANALYZE tasks, task_tags")
        return deleted, reopened


def tidy(admin, database, title):
    """Remove the tasks an earlier run left, so every run starts from the same data, and refresh
    the planner's statistics: by the seed's marker when there is one, else by `title` (what
    the create scenario writes)."""
    marker = seed_marker(admin, database)
    if marker is not None:
        return reset(admin, database, marker["last_task_id"], vacuum=True)[0]
    with contextlib.closing(admin_connect(admin, database)) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM tasks WHERE title = %s", (title,))
        deleted = cur.rowcount
        cur.execute("VACUUM ANALYZE tasks")
        return deleted
