"""The benchmark's databases: created on the embedded PostgreSQL (or BENCH_DATABASE_URL's
server), owned by an ordinary role so row-level security applies exactly as in production,
migrated with pw_migrate and seeded with the service's own `seed-bulk` command."""
import contextlib
import os
import subprocess
import sys

import psycopg2

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


def first_tasks(admin, database, users):
    """{user number: id of that user's oldest task} for users 1..`users`."""
    ids = [user_id(n) for n in range(1, users + 1)]
    with contextlib.closing(admin_connect(admin, database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT user_id, min(id) FROM tasks WHERE user_id = ANY(%s) GROUP BY user_id", (ids,))
        found = dict(cur.fetchall())
    return {n: found[user_id(n)] for n in range(1, users + 1) if user_id(n) in found}


def seed(url, users, tasks_per_user, heavy_tasks=0, replace=False):
    """Seed through the service's own bulk seeder (COPY), as an operator would: users
    PREFIX-00001.. and PREFIX-heavy (see service/ops/seeding.py)."""
    command = [str(VENV_BIN / "flask"), "--app", "wsgi", "seed-bulk", "--users", str(users),
               "--tasks-per-user", str(tasks_per_user), "--prefix", USER_PREFIX]
    if heavy_tasks:
        command += ["--heavy-user-tasks", str(heavy_tasks)]
    if replace:
        command.append("--replace")
    print(f"seeding: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    subprocess.run(command, cwd=PROJECT, env={**os.environ, "DATABASE_URL": url}, check=True)


def tidy(admin, database, title):
    """Remove the tasks an earlier run created (the create scenario), so every run starts from
    the same data, and refresh the planner's statistics."""
    with contextlib.closing(admin_connect(admin, database)) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM tasks WHERE title = %s", (title,))
        deleted = cur.rowcount
        cur.execute("VACUUM ANALYZE tasks")
        return deleted
