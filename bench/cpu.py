"""The apps' own CPU per request, without gunicorn or a load generator: the WSGI app called
in-process on the benchmark data, one request at a time, timed with process CPU time, the fastest
of several rounds. Much steadier than req/s on a shared machine; it is how docs/benchmarks.md
measured what each optimisation bought.

    .venv/bin/python -m bench.cpu                    # service and reference, list get toggle create
    .venv/bin/python -m bench.cpu --app service get  # one app, one scenario

Each app runs in its own process (they would share the database proxy otherwise).
"""
import argparse
import io
import os
import secrets
import subprocess
import sys
import time

from . import database
from .harness import BENCH_USERS, CREATED_TITLE, MAIN_DATABASE, write_token_files
from .paths import PROJECT

SCENARIOS = ("list", "get", "toggle", "create")
BODY = b'{"title":"benchmark task"}'


def environ_for(scenario, token, task_id):
    from werkzeug.test import EnvironBuilder

    headers = {"Authorization": f"Bearer {token}"}
    if scenario == "list":
        builder = EnvironBuilder(path="/api/tasks", query_string="limit=20", headers=headers)
    elif scenario == "get":
        builder = EnvironBuilder(path=f"/api/tasks/{task_id}", headers=headers)
    elif scenario == "toggle":
        builder = EnvironBuilder(path=f"/api/tasks/{task_id}/complete", method="PATCH", headers=headers)
    else:
        builder = EnvironBuilder(path="/api/tasks", method="POST", data=BODY,
                                 content_type="application/json", headers=headers)
    return builder.get_environ()


def measure(app_name, scenarios, tokens_file, requests, rounds):
    """In this process: CPU microseconds per request of `app_name` for each scenario."""
    if app_name == "service":
        import logging

        from service import create_app
        app = create_app()
        for handler in logging.getLogger("service").handlers:  # still formatted and written
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - for the process's life
    else:
        from .reference_app import app
    users = [line.split() for line in open(tokens_file) if line.strip()][:200]

    def start_response(status, headers, exc_info=None):
        if status[0] != "2":
            raise RuntimeError(f"{app_name}: {status}")

    for scenario in scenarios:
        environs = [environ_for(scenario, token, task_id) for token, task_id in users]

        def run(n, environs=environs):
            for i in range(n):
                environ = dict(environs[i % len(environs)])
                environ["wsgi.input"] = io.BytesIO(BODY)
                body = app(environ, start_response)
                b"".join(body)
                getattr(body, "close", lambda: None)()

        run(len(environs) * 2)  # warm: every user met, every statement compiled
        best = float("inf")
        for _ in range(rounds):
            started = time.process_time()
            run(requests)
            best = min(best, time.process_time() - started)
        print(f"{app_name:<9} {scenario:<7} {best / requests * 1e6:6.0f} us CPU per request", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bench.cpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", help=f"some of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--app", choices=("service", "reference"), action="append")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)  # the tokens file, in a child process
    args = parser.parse_args(argv)
    if set(args.scenarios) - set(SCENARIOS):
        parser.error(f"scenarios are {', '.join(SCENARIOS)}")
    args.scenarios = args.scenarios or list(SCENARIOS)
    if args.child:
        measure(args.app[0], args.scenarios, args.child, args.requests, args.rounds)
        return
    admin = database.admin_url()
    if database.counts(admin, MAIN_DATABASE)[0] < BENCH_USERS:
        sys.exit("seed the benchmark data first: bench/run")
    secret = secrets.token_urlsafe(48)
    files, _ = write_token_files(admin, MAIN_DATABASE, secret, BENCH_USERS, "cpu")
    env = {**os.environ, "DATABASE_URL": database.role_url(admin, MAIN_DATABASE),
           "BETTER_AUTH_SECRET": secret}
    try:
        for app_name in args.app or ("service", "reference"):
            subprocess.run([sys.executable, "-m", "bench.cpu", *args.scenarios, "--app", app_name,
                            "--requests", str(args.requests), "--rounds", str(args.rounds),
                            "--child", str(files["tokens"])], cwd=PROJECT, env=env, check=True)
    finally:
        database.tidy(admin, MAIN_DATABASE, CREATED_TITLE)


if __name__ == "__main__":
    main()
