"""The apps' own CPU per request, without gunicorn or a load generator: the WSGI app called
in-process on the benchmark data, one request at a time, timed with process CPU time, the fastest
of several rounds. Much steadier than req/s on a shared machine; it is how docs/benchmarks.md
measured what each optimisation bought.

    .venv/bin/python -m bench.cpu                    # service and reference, every scenario
    .venv/bin/python -m bench.cpu --app service get  # one app, one scenario
    .venv/bin/python -m bench.cpu create --spy       # and where the CPU goes, by part (py-spy)

Each app runs in its own process (they would share the database proxy otherwise), scenario by
scenario, alternating which app goes first. The heavy user's scenarios run a fiftieth of the
requests (each waits tens of milliseconds on PostgreSQL, which is not this process's CPU).
`recurring` completes a fresh recurring task per request; the pool is reset between rounds,
outside the timing.
"""
import argparse
import io
import os
import secrets
import signal
import subprocess
import sys
import time

from . import data, database
from .data import BENCH_USERS, MAIN_DATABASE
from .paths import OUT, PROJECT, VENV_BIN
from .profile import summarise
from .scenarios import NAMES, SCENARIOS


def environ_for(spec, token, task_id, cursor):
    from werkzeug.test import EnvironBuilder

    path, _, query = spec.url(task_id, cursor).partition("?")
    builder = EnvironBuilder(path=path, query_string=query, method=spec.method,
                             headers={"Authorization": f"Bearer {token}"},
                             data=spec.body.encode() if spec.body else None,
                             content_type="application/json" if spec.body else None)
    return builder.get_environ(), spec.body.encode() if spec.body else b""


def requests_of(spec, tag, cursor):
    """The environs to send, in turn: the first 200 users (and their oldest tasks), the heavy
    user, or the pool of recurring tasks."""
    files = data.OUT
    if spec.who == "heavy":
        lines = [(files / f"heavy-{tag}.txt").read_text().strip() + " 0"]
    elif spec.who == "pool":
        lines = (files / f"pool-{tag}.txt").read_text().splitlines()
    else:
        lines = (files / f"tokens-{tag}.txt").read_text().splitlines()[:200]
    return [environ_for(spec, *line.split(), cursor) for line in lines if line.strip()]


class Spy:
    """py-spy sampling this process while it holds the GIL (a round after the timed ones), then
    the CPU per request by part of the request (bench/profile.py's parts), without gunicorn."""

    def __init__(self, app_name, scenario):
        self.path = OUT / f"cpu-{scenario}-{app_name}.raw"
        self.process = subprocess.Popen([str(VENV_BIN / "py-spy"), "record", "--gil", "--nonblocking", "-r", "1000",
                                         "-f", "raw", "-o", str(self.path), "--pid", str(os.getpid())],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)  # attached

    def report(self, cpu_us):
        self.process.send_signal(signal.SIGINT)  # py-spy writes its samples and exits
        self.process.wait(timeout=60)
        print(summarise(self.path, None, cpu_us), flush=True)


def measure(app_name, scenarios, tag, requests, rounds, cursor, last_task_id, spy=False):
    """In this process: CPU microseconds per request of `app_name` for each scenario."""
    if app_name == "service":
        import logging

        from service import create_app
        app = create_app()
        for handler in logging.getLogger("service").handlers:  # still formatted and written
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - for the process's life
    else:
        from .reference_app import app
    admin = database.admin_url()

    def start_response(status, headers, exc_info=None):
        if status[0] != "2":
            raise RuntimeError(f"{app_name}: {status}")

    for name in scenarios:
        spec = SCENARIOS[name]
        environs = requests_of(spec, tag, cursor)
        count = max(requests // 50, 10) if spec.who == "heavy" else requests
        pool = spec.who == "pool"

        def send(n, start, environs=environs):
            for position in range(start, start + n):
                environ, body = environs[position % len(environs)]
                environ = dict(environ)
                environ["wsgi.input"] = io.BytesIO(body)
                answer = app(environ, start_response)
                b"".join(answer)
                getattr(answer, "close", lambda: None)()
            return start + n

        # Warm: every user met (provisioned), every statement compiled; a pool request must not
        # meet a task completed already, so each round starts from a reset pool.
        after_warm = send(count if pool else min(len(environs) * 2, count), 0)
        best = float("inf")
        for _ in range(rounds):
            if pool:
                database.reset(admin, MAIN_DATABASE, last_task_id)
            started = time.process_time()
            send(count, 0 if pool else after_warm)
            best = min(best, time.process_time() - started)
        print(f"{app_name:<9} {name:<13} {best / count * 1e6:6.0f} us CPU per request", flush=True)
        if spy:  # as many requests again, sampled; the parts' shares of the best round's CPU
            if pool:
                database.reset(admin, MAIN_DATABASE, last_task_id)
            sampling = Spy(app_name, name)
            send(count * rounds, 0 if pool else after_warm)
            sampling.report(best / count * 1e6)
        if pool:
            database.reset(admin, MAIN_DATABASE, last_task_id)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bench.cpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", help=f"some of {', '.join(NAMES)} (default: all)")
    parser.add_argument("--app", choices=("service", "reference"), action="append")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--spy", action="store_true",
                        help="also sample the timed rounds with py-spy: CPU per request by part (slows them)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # the files' tag, in a child process
    args = parser.parse_args(argv)
    if set(args.scenarios) - set(NAMES):
        parser.error(f"scenarios are {', '.join(NAMES)}")
    args.scenarios = args.scenarios or list(NAMES)
    if args.child:
        measure(args.app[0], args.scenarios, args.child, args.requests, args.rounds,
                os.environ["BENCH_CURSOR"], int(os.environ["BENCH_LAST_TASK"]), args.spy)
        return
    admin = database.admin_url()
    marker = data.seeded(admin)
    secret = secrets.token_urlsafe(48)
    files, _ = data.write_files(admin, MAIN_DATABASE, secret, BENCH_USERS, "cpu", marker)
    env = {**os.environ, "DATABASE_URL": database.role_url(admin, MAIN_DATABASE), "BETTER_AUTH_SECRET": secret,
           "BENCH_CURSOR": files["cursor"], "BENCH_LAST_TASK": str(marker["last_task_id"])}
    apps = args.app or ("service", "reference")
    try:
        # Scenario by scenario, the apps one after the other (A B, then B A): on a shared machine
        # the CPU a request costs drifts over minutes, and both apps should meet the same drift.
        for number, scenario in enumerate(args.scenarios):
            for app_name in apps if number % 2 == 0 else apps[::-1]:
                subprocess.run([sys.executable, "-m", "bench.cpu", scenario, "--app", app_name,
                                "--requests", str(args.requests), "--rounds", str(args.rounds),
                                *(["--spy"] if args.spy else []), "--child", "cpu"], cwd=PROJECT, env=env, check=True)
    finally:
        database.tidy(admin, MAIN_DATABASE, None)


if __name__ == "__main__":
    main()
