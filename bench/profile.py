"""Profile one target under load: `bench/run`'s data, one gunicorn worker, wrk on loopback, and
py-spy sampling the worker while it holds the GIL (Python CPU, not waiting on PostgreSQL).

    .venv/bin/python -m bench.profile create                 # the service
    .venv/bin/python -m bench.profile list --target reference

Writes bench/out/profile-<scenario>-<target>.svg (a flame graph) and .raw (the samples), and
prints the CPU per request spent in each part of the request. A sample is charged to the
innermost frame of the app's own code (service/ or bench/reference_app.py), so a library called
by a part (werkzeug building the response, logging writing the line) counts for that part;
samples with no app frame are charged to the library running (Flask, werkzeug, gunicorn).
"""
import argparse
import collections
import secrets
import subprocess

from . import data, database, load
from .data import BENCH_USERS, MAIN_DATABASE
from .paths import OUT, VENV_BIN
from .scenarios import NAMES, SCENARIOS
from .servers import APPS, Server

REF = "bench/reference_app.py"
APP_PARTS = (  # (part, markers of an app frame), tried in order on the innermost app frame
    ("database round trips (execute, fetch; watchdog)",
     ("execute_sql (", "_watched (", "begin (service/db/pool.py", "service/db/watchdog.py", f"run ({REF}")),
    ("connection pool (check-out, check-in)", ("service/db/pool.py", "release (service/api/identity.py")),
    ("identity: bearer token", ("service/tokens.py", "bearer_token (", "identify (service/api/identity.py",
                                f"authenticate ({REF}")),
    ("provisioning check (known users)", ("service/store/users.py",)),
    ("idempotency wrapper", ("service/idempotency.py",)),
    ("body parsing (json_body)", ("json_body (service/validation.py", "_nests_too_deep (")),
    ("validation (body fields, list parameters)", ("service/validation.py", "service/fields.py",
                                                   "service/vocabularies.py", "service/list_params.py")),
    ("recurrence (dateutil)", ("service/recurrence.py", f"next_occurrence ({REF}")),
    ("store: SQL shapes, query cache, rows", ("service/store/", "service/db/query_cache.py")),
    ("response building (JSON, Response, headers)", ("service/jsonio.py", "task_response (service/api/",
                                                     f"task_json ({REF}", f"task_reply ({REF}", f"reply ({REF}",
                                                     f"encode_cursor ({REF}")),
    ("request id", ("start_request (service/request_log.py",)),
    ("request log line", ("service/request_log.py",)),
    ("CORS", ("service/cors.py",)),
    ("error handling", ("service/errors.py",)),
    ("views: the rest", ("service/", REF)),
)
LIBRARY_PARTS = (("CORS", "flask_cors/"), ("werkzeug (request, routing, response)", "werkzeug/"),
                 ("Flask (dispatch, contexts, hooks)", "flask/"), ("gunicorn (HTTP, sockets, threads)", "gunicorn/"))


def part_of(frames):
    """The part a sample (its frames, outermost first) is charged to."""
    for frame in reversed(frames):
        if "service/" in frame or REF in frame:
            for part, markers in APP_PARTS:
                if any(marker in frame for marker in markers):
                    return part
    for frame in reversed(frames):
        for part, marker in LIBRARY_PARTS:
            if marker in frame:
                return part
    return "other (threads, interpreter)"


def count_parts(raw_path):
    """(samples per part, all samples) of py-spy's raw (collapsed) output."""
    parts = collections.Counter()
    for line in open(raw_path):
        stack, _, count = line.rstrip().rpartition(" ")
        if count.isdigit():  # else a frame name with a line break in it
            parts[part_of(stack.split(";"))] += int(count)
    return parts, sum(parts.values())


def summarise(raw_path, requests, cpu_us=None):
    """CPU microseconds per request by part: from py-spy's samples at 1 kHz over `requests`, or,
    given the CPU per request measured without sampling (`cpu_us`), that divided by the parts'
    shares of the samples (sampling slows what it samples)."""
    parts, total = count_parts(raw_path)
    per = cpu_us / max(total, 1) if cpu_us is not None else 1000 / max(requests, 1)  # a sample: 1 ms of GIL time
    lines = [f"{parts[label] * per:8.0f} us  {100 * parts[label] / max(total, 1):4.1f}%  {label}"
             for label, _ in parts.most_common()]
    return "\n".join(lines + [f"{total * per:8.0f} us         TOTAL Python CPU per request"])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bench.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=NAMES)
    parser.add_argument("--target", choices=("service", "reference"), default="service")
    parser.add_argument("--seconds", type=int, default=10, choices=range(1, 11), metavar="1..10")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    admin = database.admin_url()
    marker = data.seeded(admin)
    secret = secrets.token_urlsafe(48)
    files, _ = data.write_files(admin, MAIN_DATABASE, secret, BENCH_USERS, "profile", marker)
    url = database.role_url(admin, MAIN_DATABASE)
    server = Server(f"profile-{args.target}", APPS[args.target], 18095,
                    {"DATABASE_URL": url, "BETTER_AUTH_SECRET": secret, "WEB_CONCURRENCY": "1"})
    stem = OUT / f"profile-{args.scenario}-{args.target}"
    try:
        server.start()
        load.warm(server.base, files, 4, 30)
        if SCENARIOS[args.scenario].who == "pool":
            database.reset(admin, MAIN_DATABASE, marker["last_task_id"])
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
        database.tidy(admin, MAIN_DATABASE, None)
    sampled = result["rps"] * args.seconds
    print(f"{args.target} {args.scenario}: {result['rps']:.0f} req/s (1 worker, 4 connections)")
    print(summarise(f"{stem}.raw", sampled))
    print(f"flame graph: {stem}.svg")


if __name__ == "__main__":
    main()
