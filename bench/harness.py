"""bench/run: the service against the thin reference app and pgbench, in one run.

    bench/run            the scenarios on 10,000 users x 100 tasks + one user with 100,000 tasks
    bench/run --scale    list latency with 10k, 100k and 1M tasks in the table (separate databases)

Each measurement is one bounded wrk (or pgbench) run on loopback; the targets alternate
(service, reference, pgbench, service, ...) and each figure is the median of the repetitions.
The ratios the performance issue sets as targets are printed last.
"""
import argparse
import base64
import json
import os
import secrets
import statistics
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime

import jwt

from . import database, load, report
from .paths import DOCS, OUT
from .servers import APPS, MemorySampler, Server

SCENARIOS = ("list", "heavy_first", "heavy_page500", "get", "toggle", "create")
TARGETS = ("service", "reference", "pgbench")
MAIN_DATABASE = "todo_bench"
USERS, TASKS_PER_USER, HEAVY_TASKS = 10_000, 100, 100_000
BENCH_USERS = 1_000
SCALE_USERS = (100, 1_000, 10_000)  # x 100 tasks: 10k, 100k, 1M tasks
PAGE, PAGE_NUMBER = 20, 500
CREATED_TITLE = "benchmark task"  # what the create scenario writes (tidied away between runs)
PORTS = {"service": 18080, "reference": 18081}
SCENARIO_WARMUP_SECONDS = 2


def log(message):
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# Data -------------------------------------------------------------------------------------
def ensure_data(admin, name, users, tasks_per_user, heavy_tasks):
    """Create, migrate and (unless already done) seed one benchmark database; its app URL."""
    url = database.prepare(admin, name)
    removed = database.tidy(admin, name, CREATED_TITLE)
    if removed:
        log(f"{name}: removed {removed} tasks left by an earlier create scenario")
    have_users, have_tasks, have_heavy = database.counts(admin, name)
    if (have_users, have_tasks, have_heavy) == (users, users * tasks_per_user, heavy_tasks):
        log(f"{name}: already seeded ({have_users} users, {have_tasks + have_heavy} tasks)")
    else:
        log(f"{name}: seeding {users} users x {tasks_per_user} tasks"
            + (f" + one user with {heavy_tasks} tasks" if heavy_tasks else ""))
        database.seed(url, users, tasks_per_user, heavy_tasks, replace=have_users > 0 or have_heavy > 0)
    return url


def mint(secret, sub, ttl=7200):
    now = int(time.time())
    return jwt.encode({"sub": sub, "iat": now, "exp": now + ttl}, secret, algorithm="HS256")


def write_token_files(admin, name, secret, users, tag):
    """tokens (one "<token> <task id>" line per user 1..users) and the heavy user's token; also
    the arithmetic (base, stride) of the users' first task ids, which pgbench needs."""
    first = database.first_tasks(admin, name, users)
    if len(first) != users:
        raise SystemExit(f"{name}: expected tasks for users 1..{users}, found {len(first)}")
    base, stride = first[1], (first[2] - first[1]) if users > 1 else 0
    linear = all(first[n] == base + (n - 1) * stride for n in first)
    OUT.mkdir(parents=True, exist_ok=True)  # bench.cpu may be the first to write here
    tokens = OUT / f"tokens-{tag}.txt"
    tokens.write_text("".join(f"{mint(secret, database.user_id(n))} {first[n]}\n" for n in first))
    heavy = OUT / f"heavy-{tag}.txt"
    heavy.write_text(mint(secret, database.heavy_user_id()) + "\n")
    return {"tokens": tokens, "heavy": heavy}, (base, stride) if linear else None


def warm_up(server, files, seconds):
    """Make every worker meet every user (the service provisions a user on first sight, once per
    process). wrk runs one connection per thread, each sending every user in turn; keep-alive
    keeps a connection on one worker, but gunicorn's workers take unequal shares of new
    connections (a worker may get none), so this repeats until each worker has served one."""
    workers = {worker.pid for worker in server.workers()}
    served = set()
    for _attempt in range(5):
        run = threading.Thread(target=load.warm, args=(server.base, files, 8, seconds))
        run.start()
        while run.is_alive():
            served |= server.workers_with_connections()
            run.join(0.25)
        if workers <= served:
            log(f"warmed {server.name}: each of its {len(workers)} workers met every user")
            return
    log(f"warning: {server.name}: {len(workers - served)} worker(s) never got a warm-up connection")


# HTTP helpers -----------------------------------------------------------------------------
def api(base, path, token):
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 - loopback http
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.load(response)


def heavy_cursor(base, token):
    """The cursor of the heavy user's page 500 (limit 20), found by walking the list through
    the API in pages of 200: page 500 starts after 499 x 20 = 9,980 rows."""
    skip, walked, cursor = (PAGE_NUMBER - 1) * PAGE, 0, None
    while walked < skip:
        limit = min(200, skip - walked)
        page = api(base, f"/api/tasks?limit={limit}" + (f"&cursor={cursor}" if cursor else ""), token)
        walked += len(page["tasks"])
        cursor = page["next_cursor"]
    return cursor


def check_same_answers(files, cursor):
    """The reference must answer exactly as the service does, or the comparison means nothing."""
    token, task_id = files["tokens"].read_text().split("\n", 1)[0].split()
    heavy = files["heavy"].read_text().strip()
    for path, tok in ((f"/api/tasks?limit={PAGE}", token), (f"/api/tasks/{task_id}", token),
                      (f"/api/tasks?limit={PAGE}&cursor={cursor}", heavy)):
        answers = [api(f"http://127.0.0.1:{PORTS[t]}", path, tok) for t in ("service", "reference")]
        if answers[0] != answers[1]:
            raise SystemExit(f"the reference answers {path} differently from the service:\n"
                             f"  service:   {json.dumps(answers[0])[:400]}\n"
                             f"  reference: {json.dumps(answers[1])[:400]}")


# Measuring --------------------------------------------------------------------------------
def median_of(runs):
    keys = ("rps", "p50_us", "p90_us", "p99_us", "cpu_us")
    result = {key: statistics.median(run[key] for run in runs) for key in keys if key in runs[0]}
    result["non_2xx"] = sum(run["non_2xx"] for run in runs)
    result["requests"] = sum(run["requests"] for run in runs)
    return result


def run_main(args, admin, secret):
    url = ensure_data(admin, MAIN_DATABASE, USERS, TASKS_PER_USER, HEAVY_TASKS)
    files, tasks_arith = write_token_files(admin, MAIN_DATABASE, secret, BENCH_USERS, "main")
    if tasks_arith is None:
        raise SystemExit("the benchmark users' first task ids are not evenly spaced; pgbench cannot pick them")
    env = {"DATABASE_URL": url, "BETTER_AUTH_SECRET": secret}
    servers = [Server(name, APPS[name], PORTS[name], env) for name in ("service", "reference")]
    scenarios = args.scenarios or SCENARIOS
    runs = {s: {t: [] for t in TARGETS} for s in scenarios}
    try:
        for server in servers:
            server.start()
        log(f"servers up: service :{PORTS['service']}, reference :{PORTS['reference']} "
            "(gunicorn.conf.py, same settings)")
        heavy_token = files["heavy"].read_text().strip()
        files["cursor"] = heavy_cursor(servers[0].base, heavy_token)
        check_same_answers(files, files["cursor"])
        log("warming up both targets")
        for server in servers:
            warm_up(server, files, args.warmup)
            # then a short unmeasured run at full concurrency: every worker thread opens its
            # database connection (a new PostgreSQL backend is slow on its first statements)
            load.wrk(server.base, "list", files, duration=5, connections=args.connections)
        cursor_row = json.loads(base64.urlsafe_b64decode(files["cursor"] + "=" * (-len(files["cursor"]) % 4)))
        defines = {"task_base": tasks_arith[0], "task_stride": tasks_arith[1],
                   "heavy": database.heavy_user_id(), "cursor_at": cursor_row[2], "cursor_id": cursor_row[3]}
        with MemorySampler(servers) as memory:
            for scenario in scenarios:
                script = load.pgbench_script(scenario, database.USER_PREFIX + "-")
                # Unmeasured: each scenario starts cold (a write scenario's first inserts extend
                # the table and its indexes, read from disk), and without this the first target
                # measured, always the service, paid for it (create's p99 once 4x the reference's).
                for server in servers:
                    load.wrk(server.base, scenario, files, duration=SCENARIO_WARMUP_SECONDS,
                             connections=args.connections)
                load.pgbench(url, scenario, script, duration=SCENARIO_WARMUP_SECONDS,
                             clients=args.pgbench_clients, defines=defines)
                for rep in range(args.reps):
                    for target in TARGETS:
                        if target == "pgbench":
                            result = load.pgbench(url, scenario, script, duration=args.duration,
                                                  clients=args.pgbench_clients, defines=defines)
                        else:
                            server = servers[0] if target == "service" else servers[1]
                            before = server.cpu_seconds()
                            result = load.wrk(server.base, scenario, files,
                                              duration=args.duration, connections=args.connections)
                            # CPU the workers spent per request: steadier than req/s on a busy machine
                            result["cpu_us"] = round((server.cpu_seconds() - before) / max(result["requests"], 1) * 1e6)
                        runs[scenario][target].append(result)
                        log(f"{scenario:<14} {target:<9} #{rep + 1}: {result['rps']:8.0f} req/s  "
                            f"p50 {result['p50_us'] / 1000:6.2f} ms  p99 {result['p99_us'] / 1000:6.2f} ms"
                            + (f"  cpu {result['cpu_us']:5d} us/req" if "cpu_us" in result else "")
                            + (f"  NON-2XX {result['non_2xx']}" if result["non_2xx"] else ""))
        memory_summary = memory.summary()
    finally:
        for server in servers:
            server.stop()
        database.tidy(admin, MAIN_DATABASE, CREATED_TITLE)
    results = {
        "kind": "main", "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {"duration_s": args.duration, "repetitions": args.reps,
                     "wrk_connections": args.connections, "wrk_threads": 2,
                     "pgbench_clients": args.pgbench_clients, "bench_users": BENCH_USERS,
                     "data": f"{USERS} users x {TASKS_PER_USER} tasks + 1 user x {HEAVY_TASKS} tasks",
                     "gunicorn": report.gunicorn_settings(), "load_average": _loadavg()},
        "runs": runs,
        "median": {s: {t: median_of(r) for t, r in by.items() if r} for s, by in runs.items()},
        "memory": memory_summary,
    }
    results["ratios"] = report.ratios(results)
    return results


def run_scale(args, admin, secret):
    targets = {}
    for users in SCALE_USERS:
        name = f"{MAIN_DATABASE}_scale_{users}"
        url = ensure_data(admin, name, users, TASKS_PER_USER, 0)
        files, _ = write_token_files(admin, name, secret, min(users, BENCH_USERS), f"scale-{users}")
        files["heavy"].write_text(files["tokens"].read_text().split()[0] + "\n")
        server = Server(f"service-{users}", APPS["service"], 18090 + len(targets),
                        {"DATABASE_URL": url, "BETTER_AUTH_SECRET": secret})
        targets[users] = (server, files)
    runs = {users: [] for users in targets}
    try:
        for server, files in targets.values():
            server.start()
            warm_up(server, files, args.warmup)
        for rep in range(args.reps):
            for users, (server, files) in targets.items():
                result = load.wrk(server.base, "list", files, duration=args.duration,
                                  connections=args.connections)
                runs[users].append(result)
                log(f"list {users * TASKS_PER_USER:>9} tasks #{rep + 1}: {result['rps']:8.0f} req/s  "
                    f"p50 {result['p50_us'] / 1000:6.2f} ms  p99 {result['p99_us'] / 1000:6.2f} ms")
    finally:
        for server, _ in targets.values():
            server.stop()
    return {"kind": "scale", "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "settings": {"duration_s": args.duration, "repetitions": args.reps,
                         "wrk_connections": args.connections, "load_average": _loadavg(),
                         "gunicorn": report.gunicorn_settings()},
            "runs": {str(u): r for u, r in runs.items()},
            "median": {str(u): median_of(r) for u, r in runs.items()}}


def _loadavg():
    return [round(x, 2) for x in os.getloadavg()]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", action="store_true", help="list latency at 10k, 100k and 1M tasks")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement (default 10)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per target (default 3)")
    parser.add_argument("--warmup", type=int, default=30,
                        help="most seconds of warm-up per target (it ends once every worker met every user)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--pgbench-clients", type=int, default=8, help="pgbench clients (default 8)")
    parser.add_argument("--scenarios", nargs="*", choices=SCENARIOS, help="a subset of the scenarios")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.*")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 10:
        parser.error("--duration must be 1..10 seconds (runs are bounded)")
    OUT.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)  # a fresh signing secret per run; tokens are minted with it
    admin = database.admin_url()
    results = (run_scale if args.scale else run_main)(args, admin, secret)
    (OUT / f"{results['kind']}.json").write_text(json.dumps(results, indent=1, default=str))
    if not args.no_docs and not args.scenarios:
        report.update_docs(results, DOCS)
    print(report.render(results))


if __name__ == "__main__":
    main()
