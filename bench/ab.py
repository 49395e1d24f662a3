"""A/B: the same load on variants of the targets, alternated, to see whether a change matters.

Each variant is NAME=TARGET[|ENV=VALUE,...] where TARGET is `service` or `reference` and the
environment is added to the server's (for example a gunicorn setting or LOG_LEVEL). Each gets
its own gunicorn on loopback; the variants are loaded in turn, REPS times, and the medians of
req/s and of the workers' user and system CPU per request are printed.

    .venv/bin/python -m bench.ab list 5 base=service 'quiet=service|LOG_LEVEL=WARNING' ref=reference
    .venv/bin/python -m bench.ab get 5 --workers 4 --connections 16 \\
        a=service 'b=service|GUNICORN_CMD_ARGS=--threads 2'

Needs bench/run's data (run it once first).
"""
import argparse
import secrets
import statistics

from . import data, database, load
from .data import BENCH_USERS, MAIN_DATABASE
from .scenarios import SCENARIOS
from .servers import APPS, Server


def parse_variant(text):
    name, _, rest = text.partition("=")
    target, _, env_text = rest.partition("|")
    if not name or target not in APPS:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=service|reference[|ENV=VALUE,...]")
    env = dict(item.split("=", 1) for item in env_text.split(",") if item)
    return name, target, env


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bench.ab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=[name for name, s in SCENARIOS.items() if s.who != "heavy"])
    parser.add_argument("reps", type=int)
    parser.add_argument("variants", nargs="+", type=parse_variant)
    parser.add_argument("--workers", default="1")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--duration", type=int, default=5, choices=range(1, 11), metavar="1..10")
    args = parser.parse_args(argv)
    admin = database.admin_url()
    marker = data.seeded(admin)
    secret = secrets.token_urlsafe(48)
    files, _ = data.write_files(admin, MAIN_DATABASE, secret, BENCH_USERS, "ab", marker)
    base_env = {"DATABASE_URL": database.role_url(admin, MAIN_DATABASE), "BETTER_AUTH_SECRET": secret,
                "WEB_CONCURRENCY": args.workers}
    servers = {name: Server(f"ab-{name}", APPS[target], 18100 + n, {**base_env, **env})
               for n, (name, target, env) in enumerate(args.variants)}
    runs = {name: [] for name in servers}
    try:
        for server in servers.values():
            server.start()
            load.warm(server.base, files, args.connections, 30)
        for _rep in range(args.reps):
            for name, server in servers.items():
                if SCENARIOS[args.scenario].who == "pool":  # every request a fresh recurring task
                    database.reset(admin, MAIN_DATABASE, marker["last_task_id"])
                workers = server.workers()
                before = [worker.cpu_times() for worker in workers]
                result = load.wrk(server.base, args.scenario, files, duration=args.duration,
                                  connections=args.connections, threads=min(2, args.connections))
                after = [worker.cpu_times() for worker in workers]
                count = max(result["requests"], 1)
                user = sum(b.user - a.user for a, b in zip(before, after, strict=True)) / count * 1e6
                system = sum(b.system - a.system for a, b in zip(before, after, strict=True)) / count * 1e6
                runs[name].append((result["rps"], user, system))
    finally:
        for server in servers.values():
            server.stop()
        database.tidy(admin, MAIN_DATABASE, None)
    for name, rows in runs.items():
        rps, user, system = (statistics.median(row[i] for row in rows) for i in range(3))
        print(f"{name:<12} {rps:7.0f} req/s  worker CPU {user:5.0f} user + {system:4.0f} system us/req"
              f"   (req/s of each run: {[round(row[0]) for row in rows]})")


if __name__ == "__main__":
    main()
