"""Profile one target under load: `bench/run`'s data, one gunicorn worker, wrk on loopback, and
py-spy sampling the worker while it holds the GIL (Python CPU, not waiting on PostgreSQL).

    .venv/bin/python -m bench.profile list                 # the service
    .venv/bin/python -m bench.profile get --target reference

Writes bench/out/profile-<scenario>-<target>.svg (a flame graph) and prints the CPU per request
spent under each part of the request (before/view/after hooks, Flask, gunicorn).
"""
import argparse
import collections
import secrets
import subprocess
import sys

from . import database, load
from .harness import BENCH_USERS, MAIN_DATABASE, write_token_files
from .paths import OUT, VENV_BIN
from .servers import APPS, Server

PARTS = (  # (label, a frame that marks it), first match wins, innermost-first
    ("database calls (execute, fetch, row decoding)", "execute_sql ("),
    ("database calls (execute, fetch, row decoding)", "run (bench/reference_app.py"),
    ("view: the rest", "Flask.dispatch_request"),
    ("before: identity (token, user, connection)", "identify (service/api/identity.py"),
    ("before: identity (token, user, connection)", "authenticate (bench/reference_app.py"),
    ("before: request id", "start_request"),
    ("before: other hooks", "Flask.preprocess_request"),
    ("after: request log line", "finish_request (service/request_log.py"),
    ("after: CORS", "cors_after_request"),
    ("after: response (JSON, headers)", "Flask.finalize_request"),
    ("teardown: connection back to the pool", "Flask.do_teardown_request"),
    ("Flask (routing, contexts)", "Flask.wsgi_app"),
)


def summarise(raw_path, requests):
    """CPU microseconds per request by part, from py-spy's raw (collapsed) samples at 1 kHz."""
    parts = collections.Counter()
    total = 0
    for line in open(raw_path):
        stack, _, count = line.rstrip().rpartition(" ")
        if not count.isdigit():  # a frame name with a line break in it
            continue
        frames = stack.split(";")
        total += int(count)
        label = "gunicorn (HTTP parsing, sockets, threads)"
        for name, marker in PARTS:
            if any(marker in frame for frame in frames):
                label = name
                break
        parts[label] += int(count)
    per = 1000 / max(requests, 1)  # a sample is 1 ms of GIL time
    lines = [f"{parts[label] * per:8.0f} us  {label}" for label, _ in parts.most_common()]
    return "\n".join(lines + [f"{total * per:8.0f} us  TOTAL Python CPU per request"])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bench.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=("list", "heavy_first", "heavy_page500", "get", "toggle", "create"))
    parser.add_argument("--target", choices=("service", "reference"), default="service")
    parser.add_argument("--seconds", type=int, default=10, choices=range(1, 11), metavar="1..10")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    admin = database.admin_url()
    counts = database.counts(admin, MAIN_DATABASE)
    if counts[0] < BENCH_USERS:
        sys.exit("seed the benchmark data first: bench/run")
    secret = secrets.token_urlsafe(48)
    files, _ = write_token_files(admin, MAIN_DATABASE, secret, BENCH_USERS, "profile")
    url = database.role_url(admin, MAIN_DATABASE)
    server = Server(f"profile-{args.target}", APPS[args.target], 18095,
                    {"DATABASE_URL": url, "BETTER_AUTH_SECRET": secret, "WEB_CONCURRENCY": "1"})
    stem = OUT / f"profile-{args.scenario}-{args.target}"
    try:
        server.start()
        load.warm(server.base, files, 4, 30)
        if args.scenario == "heavy_page500":
            from .harness import heavy_cursor
            files["cursor"] = heavy_cursor(server.base, files["heavy"].read_text().strip())
        worker = server.workers()[0].pid
        spy = [str(VENV_BIN / "py-spy"), "record", "--gil", "--nonblocking", "-r", "1000",
               "-d", str(args.seconds), "--pid", str(worker)]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        with subprocess.Popen(spy + ["-f", "raw", "-o", f"{stem}.raw"], **quiet) as raw, \
                subprocess.Popen(spy + ["-f", "flamegraph", "-o", f"{stem}.svg"], **quiet) as svg:
            result = load.wrk(server.base, args.scenario, files, duration=args.seconds, connections=4)
            raw.wait(timeout=30)
            svg.wait(timeout=30)
    finally:
        server.stop()
        database.tidy(admin, MAIN_DATABASE, "benchmark task")
    sampled = result["rps"] * args.seconds
    print(f"{args.target} {args.scenario}: {result['rps']:.0f} req/s (1 worker, 4 connections)")
    print(summarise(f"{stem}.raw", sampled))
    print(f"flame graph: {stem}.svg")


if __name__ == "__main__":
    main()
