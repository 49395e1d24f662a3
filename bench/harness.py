"""bench/run: the service against the thin reference app and pgbench, in one run.

    bench/run            the scenarios on 10,000 users x 100 tasks + one user with 100,000 tasks
    bench/run --scale    list latency with 10k, 100k and 1M tasks in the table (separate databases)

Each measurement is one bounded wrk (or pgbench) run on loopback; the HTTP targets alternate
(service, reference, pgbench, then reference, service, pgbench, ...) and each figure is the
median of the repetitions.
The ratios the performance issue sets as targets are printed last.
"""
import argparse
import json
import os
import secrets
import statistics
import threading
from datetime import UTC, datetime

from . import check, data, database, load, report, statements
from .data import BENCH_USERS, MAIN_DATABASE, TASKS_PER_USER, log
from .paths import DOCS, OUT
from .scenarios import NAMES, SCENARIOS
from .servers import APPS, MemorySampler, Server

TARGETS = ("service", "reference", "pgbench")
SCALE_USERS = (100, 1_000, 10_000)  # x 100 tasks: 10k, 100k, 1M tasks
PORTS = {"service": 18080, "reference": 18081}
SCENARIO_WARMUP_SECONDS = 2


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


# Measuring --------------------------------------------------------------------------------
def median_of(runs):
    keys = ("rps", "p50_us", "p90_us", "p99_us", "cpu_us")
    result = {key: statistics.median(run[key] for run in runs) for key in keys if key in runs[0]}
    result["non_2xx"] = sum(run["non_2xx"] for run in runs)
    result["requests"] = sum(run["requests"] for run in runs)
    return result


def order(rep):
    """The targets of repetition `rep`: A B, then B A, ... (each HTTP target measured first as
    often as second; pgbench, the database's limit, after both)."""
    return ("service", "reference", "pgbench") if rep % 2 == 0 else ("reference", "service", "pgbench")


class Runner:
    """One scenario's measured runs against the three targets, on one database."""

    def __init__(self, args, admin, url, marker, files, defines, servers, scripts):
        self.args, self.admin, self.url, self.marker = args, admin, url, marker
        self.files, self.defines, self.servers, self.scripts = files, defines, servers, scripts

    def reset_pool(self, scenario, requests=None):
        """Before and after each run of a scenario completing recurring tasks: the pool pending
        again and the occurrences gone; after a run, say if a request found no fresh task."""
        if SCENARIOS[scenario].who != "pool":
            return
        created, _reopened = database.reset(self.admin, MAIN_DATABASE, self.marker["last_task_id"])
        if requests is not None and created < requests:
            log(f"warning: {scenario}: {requests} requests created only {created} occurrences "
                f"(the pool holds {self.files['pool_size']})")

    def run(self, scenario, target, duration):
        self.reset_pool(scenario)
        if target == "pgbench":
            result = load.pgbench(self.url, scenario, self.scripts[scenario], duration=duration,
                                  clients=self.args.pgbench_clients, defines=self.defines)
            self.reset_pool(scenario, result["requests"])
            return result
        server = self.servers[target]
        before = server.cpu_seconds()
        result = load.wrk(server.base, scenario, self.files, duration=duration, connections=self.args.connections)
        # CPU all gunicorn processes spent per request: steadier than req/s on a busy machine
        result["cpu_us"] = round((server.cpu_seconds() - before) / max(result["requests"], 1) * 1e6)
        self.reset_pool(scenario, result["requests"] - result["non_2xx"])
        return result


def run_main(args, admin, secret):
    url, marker = data.ensure_data(admin, MAIN_DATABASE)
    files, defines = data.write_files(admin, MAIN_DATABASE, secret, BENCH_USERS, "main", marker)
    if defines is None:
        raise SystemExit("the benchmark users' task ids are not laid out as seed-bulk lays them; "
                         "pgbench cannot pick them")
    defines["clients"] = args.pgbench_clients
    scripts = {name: load.pgbench_script(text, database.USER_PREFIX + "-")
               for name, text in statements.current(url, secret).items()}
    env = {"DATABASE_URL": url, "BETTER_AUTH_SECRET": secret}
    servers = {name: Server(name, APPS[name], PORTS[name], env) for name in ("service", "reference")}
    scenarios = args.scenarios or NAMES
    runs = {s: {t: [] for t in TARGETS} for s in scenarios}
    runner = Runner(args, admin, url, marker, files, defines, servers, scripts)
    try:
        for server in servers.values():
            server.start()
        log(f"servers up: service :{PORTS['service']}, reference :{PORTS['reference']} "
            "(gunicorn.conf.py, same settings)")
        bases = {name: server.base for name, server in servers.items()}
        check.check_reads(bases, files)
        check.check_writes(bases, files, admin, MAIN_DATABASE, marker["last_task_id"], files["pool_items"])
        log("the reference answers every scenario as the service does")
        log("warming up both targets")
        for server in servers.values():
            warm_up(server, files, args.warmup)
            # then a short unmeasured run at full concurrency: every worker thread opens its
            # database connection (a new PostgreSQL backend is slow on its first statements)
            load.wrk(server.base, "list", files, duration=5, connections=args.connections)
        with MemorySampler(list(servers.values())) as memory:
            for scenario in scenarios:
                # Unmeasured: each scenario starts cold (a write scenario's first inserts extend
                # the table and its indexes, read from disk), and without this the first target
                # measured paid for it (create's p99 once 4x the reference's).
                for target in TARGETS:
                    runner.run(scenario, target, SCENARIO_WARMUP_SECONDS)
                for rep in range(args.reps):
                    for target in order(rep):
                        result = runner.run(scenario, target, args.duration)
                        runs[scenario][target].append(result)
                        log(f"{scenario:<14} {target:<9} #{rep + 1}: {result['rps']:8.0f} req/s  "
                            f"p50 {result['p50_us'] / 1000:6.2f} ms  p99 {result['p99_us'] / 1000:6.2f} ms"
                            + (f"  cpu {result['cpu_us']:5d} us/req" if "cpu_us" in result else "")
                            + (f"  NON-2XX {result['non_2xx']}" if result["non_2xx"] else ""))
        memory_summary = memory.summary()
    finally:
        for server in servers.values():
            server.stop()
        database.tidy(admin, MAIN_DATABASE, None)
    results = {
        "kind": "main", "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {"duration_s": args.duration, "repetitions": args.reps,
                     "wrk_connections": args.connections, "wrk_threads": 2,
                     "pgbench_clients": args.pgbench_clients, "bench_users": BENCH_USERS,
                     "data": f"{marker['users']} users x {marker['tasks_per_user']} tasks + 1 user x "
                             f"{marker['heavy']} tasks (seed v{marker['version']})",
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
        url, marker = data.ensure_data(admin, name, users, TASKS_PER_USER, 0)
        files, _ = data.write_files(admin, name, secret, min(users, BENCH_USERS), f"scale-{users}", marker)
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
    parser.add_argument("--scenarios", nargs="*", choices=NAMES, help="a subset of the scenarios")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.*")
    parser.add_argument("--prepare", action="store_true",
                        help="only create and seed the benchmark database (for bench.cpu, bench.profile, bench.ab)")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 10:
        parser.error("--duration must be 1..10 seconds (runs are bounded)")
    OUT.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)  # a fresh signing secret per run; tokens are minted with it
    admin = database.admin_url()
    if args.prepare:
        data.ensure_data(admin, MAIN_DATABASE)
        return
    results = (run_scale if args.scale else run_main)(args, admin, secret)
    (OUT / f"{results['kind']}.json").write_text(json.dumps(results, indent=1, default=str))
    if not args.no_docs and not args.scenarios:
        report.update_docs(results, DOCS)
    print(report.render(results))


if __name__ == "__main__":
    main()
