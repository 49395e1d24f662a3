"""The benchmark's data and the files the load generators read: databases seeded once per seed
shape (re-seeded when service/ops/bulk_seed.py BULK_SEED_VERSION or the shape changes), tokens,
the pool of recurring tasks and the heavy user's page-500 cursor."""
import base64
import contextlib
import json
import random
import sys
import time
from datetime import UTC, datetime

import jwt

from service.ops.bulk_seed import BULK_SEED_VERSION, RECURRING_AT, RECURRING_EVERY

from . import database
from .paths import OUT

MAIN_DATABASE = "todo_bench"
USERS, TASKS_PER_USER, HEAVY_TASKS = 10_000, 100, 100_000
BENCH_USERS = 1_000
PAGE, PAGE_NUMBER = 20, 500


def log(message):
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def ensure_data(admin, name, users=USERS, tasks_per_user=TASKS_PER_USER, heavy_tasks=HEAVY_TASKS):
    """Create, migrate and (unless already done for this seed shape) seed one benchmark database,
    then put it back as seeded; (its app URL, its seed marker)."""
    shape = {"version": BULK_SEED_VERSION, "users": users, "tasks_per_user": tasks_per_user, "heavy": heavy_tasks}
    marker = database.seed_marker(admin, name)
    if marker is not None and {key: marker.get(key) for key in shape} != shape:
        log(f"{name}: seeded for {marker}, not {shape}: dropping it to seed afresh")
        database.drop(admin, name)
        marker = None
    url = database.prepare(admin, name)
    if marker is None and any(database.counts(admin, name)):
        log(f"{name}: holds data without a seed marker (an older bench): dropping it to seed afresh")
        database.drop(admin, name)
        url = database.prepare(admin, name)
    if marker is None:
        log(f"{name}: seeding {users} users x {tasks_per_user} tasks"
            + (f" + one user with {heavy_tasks} tasks" if heavy_tasks else ""))
        started = time.monotonic()
        database.seed(url, users, tasks_per_user, heavy_tasks)
        marker = database.mark_seeded(admin, name, shape)
        log(f"{name}: seeded in {time.monotonic() - started:.0f} s")
    else:
        removed = database.tidy(admin, name, None)
        log(f"{name}: already seeded ({marker}); removed {removed} tasks an earlier run added")
    return url, marker


def seeded(admin, name=MAIN_DATABASE):
    """The marker of a database seeded as bench/run seeds it (for the tools that reuse its data),
    or exit saying how to make it."""
    marker = database.seed_marker(admin, name)
    if marker is None or marker.get("version") != BULK_SEED_VERSION:
        sys.exit("seed the benchmark data first (or again: the seed changed): bench/run --prepare")
    return marker


def mint(secret, sub, ttl=7200):
    now = int(time.time())
    return jwt.encode({"sub": sub, "iat": now, "exp": now + ttl}, secret, algorithm="HS256")


def heavy_cursor(admin, name):
    """The cursor of the heavy user's page 500 (limit 20): just past row 9,980 newest first,
    spelled as the service spells it (its timestamp as PostgreSQL prints it in JSON)."""
    from service.list_params import encode_cursor

    with contextlib.closing(database.admin_connect(admin, name)) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_json(created_at) #>> '{}', id FROM tasks WHERE user_id = %s "
                    "ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1",
                    (database.heavy_user_id(), (PAGE_NUMBER - 1) * PAGE - 1))
        created, last_id = cur.fetchone()
    return encode_cursor("created", True, created, last_id)


def write_files(admin, name, secret, users, tag, marker):
    """The files wrk reads, in bench/out: tokens ("<token> <oldest task id>" per user 1..users),
    the heavy user's token, the pool of recurring tasks ("<token> <task id>", shuffled); and
    what pgbench needs to pick the same rows by arithmetic (or None when ids are not evenly
    spaced: then pgbench cannot run)."""
    first = database.first_tasks(admin, name, users)
    if len(first) != users:
        raise SystemExit(f"{name}: expected tasks for users 1..{users}, found {len(first)}")
    base, stride = first[1], (first[2] - first[1]) if users > 1 else 0
    OUT.mkdir(parents=True, exist_ok=True)
    tokens = {n: mint(secret, database.user_id(n)) for n in first}
    files = {"tokens": OUT / f"tokens-{tag}.txt", "heavy": OUT / f"heavy-{tag}.txt", "pool": OUT / f"pool-{tag}.txt"}
    files["tokens"].write_text("".join(f"{tokens[n]} {first[n]}\n" for n in first))
    files["heavy"].write_text(mint(secret, database.heavy_user_id()) + "\n")
    pool = database.recurring_pool(admin, name, users, marker["last_task_id"])
    shuffled = random.Random(7).sample(pool, len(pool))  # users in no order, none twice in a row
    files["pool"].write_text("".join(f"{tokens[n]} {task_id}\n" for n, task_id in shuffled))
    files["pool_size"], files["pool_items"] = len(pool), pool
    if marker["heavy"]:
        files["cursor"] = heavy_cursor(admin, name)
    slots = (marker["tasks_per_user"] - RECURRING_AT + RECURRING_EVERY - 1) // RECURRING_EVERY
    expected = sorted((n, first[n] + RECURRING_AT + RECURRING_EVERY * j) for n in first for j in range(slots))
    linear = all(first[n] == base + (n - 1) * stride for n in first) and sorted(pool) == expected
    if not linear:
        return files, None
    defines = {"task_base": base, "task_stride": stride, "heavy": database.heavy_user_id(),
               "recurring_at": RECURRING_AT, "recurring_every": RECURRING_EVERY, "recurring_slots": slots,
               "users": users, "k": 0}
    if "cursor" in files:
        padded = files["cursor"] + "=" * (-len(files["cursor"]) % 4)
        _sort, _direction, at, last_id = json.loads(base64.urlsafe_b64decode(padded))
        defines.update(cursor_at=at, cursor_id=last_id)
    return files, defines
