"""What the metrics cost a request, in one process: the service's WSGI app called in-process on
the benchmark data (as bench.cpu does), alternating between the real metric calls and no-op
stand-ins for them, so both variants share the process, its caches and its connection. Run
under PROMETHEUS_MULTIPROC_DIR to measure gunicorn's multiprocess mode (its values are written
to mmap files there):

    mkdir -p /dev/shm/m && PROMETHEUS_MULTIPROC_DIR=/dev/shm/m .venv/bin/python -m bench.metrics_cost list

Prints the fastest and the median CPU time per request of each variant (docs/benchmarks.md,
"Metrics"). Needs bench/run's data.
"""
import argparse
import io
import logging
import os
import secrets
import statistics
import sys
import time

from . import database
from .cpu import BODY, SCENARIOS, environ_for
from .harness import BENCH_USERS, MAIN_DATABASE, write_token_files

CALLS = ("request_started", "request_finished", "observe_request", "TOKEN_CACHE_HIT", "TOKEN_CACHE_MISS")


class _NoCounter:
    def inc(self, amount=1):
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bench.metrics_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--alternations", type=int, default=60)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args(argv)
    admin = database.admin_url()
    if database.counts(admin, MAIN_DATABASE)[0] < BENCH_USERS:
        sys.exit("seed the benchmark data first: bench/run")
    secret = secrets.token_urlsafe(48)
    files, _ = write_token_files(admin, MAIN_DATABASE, secret, BENCH_USERS, "metrics-cost")
    os.environ.update(DATABASE_URL=database.role_url(admin, MAIN_DATABASE), BETTER_AUTH_SECRET=secret)
    from service import create_app
    from service import instruments as metrics

    app = create_app()
    for handler in logging.getLogger("service").handlers:  # still formatted and written
        handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - for the process's life
    users = [line.split() for line in open(files["tokens"]) if line.strip()][:200]
    environs = [environ_for(args.scenario, token, task_id) for token, task_id in users]

    def start_response(status, headers, exc_info=None):
        if status[0] != "2":
            raise RuntimeError(status)

    def run(n):
        for i in range(n):
            environ = dict(environs[i % len(environs)])
            environ["wsgi.input"] = io.BytesIO(BODY)
            body = app(environ, start_response)
            b"".join(body)
            body.close()

    real = {name: getattr(metrics, name) for name in CALLS}
    stand_ins = {"request_started": lambda: None, "request_finished": lambda: None,
                 "observe_request": lambda *args: None, "TOKEN_CACHE_HIT": _NoCounter(),
                 "TOKEN_CACHE_MISS": _NoCounter()}
    variants = {"with metrics": real, "without": stand_ins}
    run(len(environs) * 2)  # warm: every user met, every statement compiled
    times = {name: [] for name in variants}
    try:
        for number in range(args.alternations):
            order = list(variants) if number % 2 else list(reversed(variants))
            for name in order:
                for call, value in variants[name].items():
                    setattr(metrics, call, value)
                started = time.process_time()
                run(args.requests)
                times[name].append((time.process_time() - started) / args.requests * 1e6)
    finally:
        for call, value in real.items():
            setattr(metrics, call, value)
    for name, values in times.items():
        print(f"{args.scenario} {name:<13} fastest {min(values):6.1f} us, median {statistics.median(values):6.1f} us "
              "CPU per request")
    fastest = min(times["with metrics"]) / min(times["without"]) - 1
    median = statistics.median(times["with metrics"]) / statistics.median(times["without"]) - 1
    print(f"{args.scenario} cost: {fastest * 100:+.1f} % (fastest), {median * 100:+.1f} % (medians); "
          f"multiprocess mode: {metrics.MULTIPROCESS}")


if __name__ == "__main__":
    main()
