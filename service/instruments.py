"""The service's Prometheus instruments (metrics.py serves them at /metrics).

Under gunicorn every worker is a process of its own, so a scrape answered by one worker must
still count the requests of all: gunicorn.conf.py points PROMETHEUS_MULTIPROC_DIR at a fresh
folder before the app is imported, prometheus_client then keeps each value in a per-process
mmap file there, and a scrape merges the files of every worker (counters of a worker that has
exited are kept; its gauges are dropped by the child_exit hook). Without that variable (flask
run, tests, bench.cpu) the values live in this process only.

Counters are written as things happen. The gauges (requests in flight, pooled connections in
use, threads waiting for one) change twice per request, and a write to the mmap file costs
about a microsecond: so they are plain numbers on the request path, sampled into the files by a
thread of each worker once a second (started by gunicorn's post_fork) and by the worker that
answers a scrape, just before it reads them. Without multiprocess mode they are read at scrape.

Labels are bounded: a route is its Flask rule (`/api/tasks/<int:task_id>`), never the path, so
no id or user ever becomes a label; unknown methods are `OTHER`, unmatched paths `(unmatched)`.
This module imports nothing of the service, nor Flask, so any layer may count into it (the
pool, token verification, the error envelope).
"""
import collections
import functools
import os
import threading
import time
import weakref

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess

# prometheus_client decides the same way, once, when it is first imported.
MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR" in os.environ
REGISTRY = CollectorRegistry()

# Its _count is the number of requests answered (a separate counter would only repeat it, at a
# write per request).
LATENCY = Histogram("todo_http_request_duration_seconds",
                    "Requests answered and the time from their first hook to the response, by route "
                    "template, method and status (_count: how many).",
                    ["route", "method", "status"], registry=REGISTRY,
                    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
IN_FLIGHT = Gauge("todo_http_requests_in_flight", "Requests being answered now.",
                  registry=REGISTRY, multiprocess_mode="livesum")
POOL_IN_USE = Gauge("todo_db_pool_connections_in_use", "Pooled database connections checked out now.",
                    registry=REGISTRY, multiprocess_mode="livesum")
POOL_WAITERS = Gauge("todo_db_pool_waiters", "Threads waiting for a free pooled connection now.",
                     registry=REGISTRY, multiprocess_mode="livesum")
DB_ERRORS = Counter("todo_db_errors", "Database errors that reached the error envelope, by kind.",
                    ["kind"], registry=REGISTRY)
SLOW_STATEMENTS = Counter("todo_db_slow_statements", "Statements that took longer than SLOW_QUERY_MS.",
                          registry=REGISTRY)
JWKS_FETCHES = Counter("todo_jwks_fetches", "Fetches of the JWKS, by outcome (ok, failed).",
                       ["outcome"], registry=REGISTRY)
TOKEN_CACHE = Counter("todo_token_cache_lookups", "Token verifications by whether the verified-token "
                      "cache already held the token (hit) or it was decoded (miss).",
                      ["result"], registry=REGISTRY)
IDEMPOTENT_REPLAYS = Counter("todo_idempotent_replays", "Creates answered by replaying the first "
                             "answer for their Idempotency-Key.", registry=REGISTRY)

TOKEN_CACHE_HIT = TOKEN_CACHE.labels("hit")
TOKEN_CACHE_MISS = TOKEN_CACHE.labels("miss")
UNMATCHED = "(unmatched)"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Peewee's error classes (and the pool's) by the kind label they count under; others are "other".
DB_ERROR_KINDS = {"IntegrityError": "integrity", "DataError": "data", "OperationalError": "operational",
                  "InterfaceError": "interface", "ProgrammingError": "programming",
                  "InternalError": "internal", "NotSupportedError": "not_supported",
                  "MaxConnectionsExceeded": "pool_exhausted"}

SAMPLE_SECONDS = 1.0
_pools = weakref.WeakSet()  # every pooled database of this process (pool_counts())
# One item per request in flight: a deque's append and pop are atomic, with no lock to take.
_in_flight = collections.deque()
request_started = functools.partial(_in_flight.append, None)  # request_log.start_request
request_finished = _in_flight.pop  # request_log.finish_request


def watch_pool(db):
    """Report `db`'s connections in use and waiters (it has `pool_counts() -> (in_use, waiting)`)."""
    _pools.add(db)


def _pool_totals():
    counts = [db.pool_counts() for db in list(_pools)]
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def sample():
    """Write this process's gauges to its files (multiprocess mode)."""
    in_use, waiting = _pool_totals()
    IN_FLIGHT.set(len(_in_flight))
    POOL_IN_USE.set(in_use)
    POOL_WAITERS.set(waiting)


def start_sampler():
    """gunicorn's post_fork: sample this worker's gauges once a second for its lifetime."""
    if not MULTIPROCESS:
        return

    def forever():
        while True:
            sample()
            time.sleep(SAMPLE_SECONDS)

    threading.Thread(target=forever, name="metrics-sampler", daemon=True).start()


if not MULTIPROCESS:  # read when scraped
    IN_FLIGHT.set_function(lambda: len(_in_flight))
    POOL_IN_USE.set_function(lambda: _pool_totals()[0])
    POOL_WAITERS.set_function(lambda: _pool_totals()[1])

# The labelled children of LATENCY by (route, method, status): `labels()` takes a lock and
# formats its arguments each time, a dict lookup does not (the hot path).
_children = {}


def observe_request(rule, method, status, seconds):
    """Count one answered request of Flask rule `rule` (None: no route matched) and its time."""
    key = (rule, method, status)
    child = _children.get(key)
    if child is None:
        labels = (rule or UNMATCHED, method if method in METHODS else "OTHER", str(status))
        child = _children.setdefault(key, LATENCY.labels(*labels))
    child.observe(seconds)


def count_db_error(error):
    """Count a database error the envelope answers, by its kind."""
    DB_ERRORS.labels(DB_ERROR_KINDS.get(type(error).__name__, "other")).inc()


def mark_process_dead(pid):
    """gunicorn's child_exit: drop the gauges of worker `pid` (they described a live process)."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(pid)
