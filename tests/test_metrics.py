"""/metrics: Prometheus text scraped from gunicorn with several workers (counts add up across
them), bounded labels, the optional METRICS_TOKEN, and each counter and gauge moving when the
thing it counts happens."""
import io
import json
import logging
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from service import instruments
from service.db import make_database
from service.metrics import generate_latest
from tests.conftest import Caller, make_config, make_token
from tests.jwks_server import JwksServer, SigningKey, better_auth_token, jwks_app
from tests.servers import Gunicorn, fresh_app, http

COUNT = "todo_http_request_duration_seconds_count"
BUCKET = "todo_http_request_duration_seconds_bucket"
HEALTH = (COUNT, {"route": "/health", "method": "GET", "status": "200"})


def samples(text):
    """{(sample name, frozenset of labels): value} of a scrape, parsed by prometheus_client."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(parsed, name, **labels):
    return parsed.get((name, frozenset(labels.items())), 0.0)


def scrape(port, **headers):
    response = http(port, "GET", "/metrics", headers=headers)
    assert response.status == 200, response.body
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return samples(response.body.decode())


def local():
    """This process's metrics (tests run without PROMETHEUS_MULTIPROC_DIR)."""
    assert not instruments.MULTIPROCESS
    return samples(generate_latest(instruments.REGISTRY).decode())


def worker_counts(folder, labels):
    """{pid: requests} with these labels, read from each worker's own histogram file in `folder`
    (a file holds every bucket's own count, so they add up to the requests)."""
    counts = {}
    for path in folder.glob("histogram_*.db"):
        for key, number, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(path)):
            _metric, sample, sample_labels, _help = json.loads(key)
            if sample == BUCKET and sample_labels.pop("le", None) and sample_labels == labels and number:
                pid = path.stem.split("_")[1]
                counts[pid] = counts.get(pid, 0) + number
    return counts


# --- Scraped from gunicorn ----------------------------------------------------------------------

def metrics_folders():
    """The folders gunicorn.conf.py makes for a server's metrics."""
    return {str(path) for place in ("/dev/shm", tempfile.gettempdir())  # noqa: S108
            for path in Path(place).glob("todo-metrics-*")}


def test_counts_from_several_gunicorn_workers_add_up_in_one_scrape(database_url):
    folders = metrics_folders()
    server = Gunicorn(database_url, workers=3)
    try:
        assert len(metrics_folders() - folders) == 1, "a fresh metrics folder for this server"
        before = scrape(server.port)
        token = make_token(f"metrics-{uuid.uuid4().hex[:8]}")
        for _ in range(40):  # a fresh connection each: the workers share them out
            assert http(server.port, "GET", "/health").status == 200
        for _ in range(6):
            assert http(server.port, "GET", "/api/tasks", headers={"Authorization": f"Bearer {token}"}).status == 200
        assert http(server.port, "GET", "/api/tasks/12345").status == 401
        time.sleep(instruments.SAMPLE_SECONDS * 1.5)  # every worker has sampled its gauges since
        after = scrape(server.port)
    finally:
        server.stop()
    assert metrics_folders() - folders == set(), "the server's metrics folder outlived it"
    assert value(after, COUNT, **HEALTH[1]) - value(before, COUNT, **HEALTH[1]) == 40
    # The first scrape was answered by some worker; the second sees it, whichever answers it.
    assert value(after, COUNT, route="/metrics", method="GET", status="200") == 1
    assert value(after, BUCKET, le="+Inf", **HEALTH[1]) == value(after, COUNT, **HEALTH[1])
    listed = {"route": "/api/tasks", "method": "GET", "status": "200"}
    assert value(after, COUNT, **listed) == 6
    assert value(after, COUNT, route="/api/tasks/<int:task_id>", method="GET",
                 status="401") == 1
    # The scrape itself is the one request in flight; every pooled connection is back.
    assert value(after, "todo_http_requests_in_flight") == 1
    assert value(after, "todo_db_pool_connections_in_use") == 0
    assert value(after, "todo_db_pool_waiters") == 0
    hits = value(after, "todo_token_cache_lookups_total", result="hit")
    misses = value(after, "todo_token_cache_lookups_total", result="miss")
    assert hits + misses == 6
    assert 1 <= misses <= 3  # one decode per worker that met the token
    names = {name for name, _labels in after}
    assert not any("12345" in str(labels) for _name, labels in after)
    assert {BUCKET, "todo_db_pool_waiters"} <= names


def test_a_request_waiting_in_another_worker_shows_in_the_gauges(database_url, admin_db):
    caller = f"gauges-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {make_token(caller)}"}
    server = Gunicorn(database_url, workers=2, DATABASE_STATEMENT_TIMEOUT_MS="60000")
    try:
        created = http(server.port, "POST", "/api/tasks", body={"title": "held"}, headers=headers)
        assert created.status == 201
        with admin_db.cursor() as cur:  # an operator's transaction holds the task's row
            cur.execute("BEGIN")
            cur.execute("SELECT 1 FROM tasks WHERE id = %s FOR UPDATE", (created.json()["id"],))
        waiting = ThreadPoolExecutor(1).submit(
            http, server.port, "PATCH", f"/api/tasks/{created.json()['id']}/complete", headers=headers)
        time.sleep(instruments.SAMPLE_SECONDS * 2.5)  # whichever worker holds it has sampled it
        during = []
        for _ in range(4):  # answered by either worker; the last scrape's own count has gone by then
            during.append(scrape(server.port))
            time.sleep(instruments.SAMPLE_SECONDS * 1.5)
        admin_db.cursor().execute("COMMIT")
        assert waiting.result(30).status == 200
    finally:
        server.stop()
    for parsed in during:
        assert value(parsed, "todo_http_requests_in_flight") == 2  # the toggle and the scrape
        assert value(parsed, "todo_db_pool_connections_in_use") == 1


def test_an_operators_metrics_folder_is_emptied_at_start_and_holds_each_workers_file(database_url, tmp_path):
    folder = tmp_path / "prometheus"
    folder.mkdir()
    stale = MmapedDict(str(folder / "histogram_999999.db"))  # what a previous server left behind
    stale.write_value(json.dumps(["todo_http_request_duration_seconds", BUCKET, {"le": "+Inf", **HEALTH[1]},
                                  "old"]), 1000.0, 0.0)
    stale.close()
    server = Gunicorn(database_url, workers=3, PROMETHEUS_MULTIPROC_DIR=str(folder))
    try:
        assert not (folder / "histogram_999999.db").exists()
        sent = 0
        labels = HEALTH[1]
        while len(worker_counts(folder, labels)) < 2 and sent < 600:
            assert http(server.port, "GET", "/health").status == 200
            sent += 1
        per_worker = worker_counts(folder, labels)
        assert len(per_worker) >= 2, "every request went to one worker"
        total = value(scrape(server.port), COUNT, **labels)
    finally:
        server.stop()
    assert total == sum(per_worker.values())
    assert folder.exists(), "the operator's folder is theirs to keep"


# --- In this process ----------------------------------------------------------------------------

def test_metrics_are_public_and_do_no_token_or_database_work(client, round_trips):
    with round_trips.counting():
        response = client.get("/metrics", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 200
    assert round_trips.count == 0
    assert "todo_http_requests_in_flight" in response.get_data(as_text=True)


def test_labels_are_route_templates_never_paths_or_user_ids(client, alice):
    alice.create_task(title="labelled")
    assert alice.get("/api/tasks/987654321").status_code == 404
    assert alice.get(f"/api/{alice.id}/tasks").status_code == 200
    assert client.get(f"/nowhere/{alice.id}").status_code == 404
    assert client.open("/health", method="BREW").status_code == 405
    parsed = local()
    labels = {dict(labels).get("route") for name, labels in parsed if name == COUNT}
    assert {"/api/tasks/<int:task_id>", "/api/<user:path_user_id>/tasks", "(unmatched)"} <= labels
    assert not any(alice.id in str(key) or "987654321" in str(key) for key in parsed)
    assert value(parsed, COUNT, route="(unmatched)", method="OTHER", status="405") >= 1


def test_a_metrics_token_is_required_when_configured(database_url):
    secret = "metrics-" + uuid.uuid4().hex
    with fresh_app(database_url, METRICS_TOKEN=secret) as app:
        client = app.test_client()
        missing = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": f"Bearer {secret[:-1]}x"})
        right = client.get("/metrics", headers={"Authorization": f"Bearer {secret}"})
    for refused in (missing, wrong):
        assert refused.status_code == 401
        assert refused.mimetype == "application/problem+json"
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert secret not in refused.get_data(as_text=True)
    assert right.status_code == 200
    assert COUNT in right.get_data(as_text=True)


def test_a_short_metrics_token_is_refused_at_startup():
    from service.config import ConfigError

    with pytest.raises(ConfigError, match="METRICS_TOKEN"):
        make_config(METRICS_TOKEN="short")


def test_idempotent_replays_are_counted(alice):
    before = value(local(), "todo_idempotent_replays_total")
    key = {"Idempotency-Key": f"metrics-{uuid.uuid4().hex}"}
    assert alice.post("/api/tasks", json={"title": "once"}, headers=key).status_code == 201
    assert value(local(), "todo_idempotent_replays_total") == before
    assert alice.post("/api/tasks", json={"title": "once"}, headers=key).status_code == 201
    assert value(local(), "todo_idempotent_replays_total") == before + 1


def test_token_cache_hits_and_misses_are_counted(client):
    caller = Caller(client)
    before = local()
    for _ in range(3):
        assert caller.get("/api/users/me").status_code == 200
    after = local()
    for result, expected in (("miss", 1), ("hit", 2)):
        assert (value(after, "todo_token_cache_lookups_total", result=result)
                - value(before, "todo_token_cache_lookups_total", result=result)) == expected


def test_jwks_fetches_are_counted_by_outcome(database_url):
    key = SigningKey.generate("EdDSA")
    with JwksServer(key) as jwks, jwks_app(jwks, database_url) as app:
        before = local()
        token = better_auth_token(key, jwks.base_url, f"jwks-{uuid.uuid4().hex[:8]}")
        assert app.test_client().get("/api/users/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        ok = value(local(), "todo_jwks_fetches_total", outcome="ok") - value(before, "todo_jwks_fetches_total",
                                                                            outcome="ok")
    assert ok == 1
    with fresh_app(database_url, JWKS_URL="http://127.0.0.1:9/jwks") as app:
        before = local()
        lone = SigningKey.generate("EdDSA")
        token = better_auth_token(lone, "http://auth.test", "nobody")
        assert app.test_client().get("/api/users/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        failed = (value(local(), "todo_jwks_fetches_total", outcome="failed")
                  - value(before, "todo_jwks_fetches_total", outcome="failed"))
    assert failed == 1


def test_pool_connections_in_use_and_waiters(database_url):
    db = make_database(make_config(DATABASE_POOL_SIZE="1", DATABASE_POOL_TIMEOUT="10"), database_url)
    got = threading.Event()

    def second():
        db.connect()
        got.set()
        db.close()

    try:
        db.connect()
        assert value(local(), "todo_db_pool_connections_in_use") == 1
        waiter = threading.Thread(target=second)
        waiter.start()
        deadline = time.monotonic() + 10
        while value(local(), "todo_db_pool_waiters") != 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert value(local(), "todo_db_pool_waiters") == 1
        assert not got.is_set()
        db.close()  # hands the one connection to the waiting thread
        waiter.join(10)
        assert got.is_set()
        assert value(local(), "todo_db_pool_waiters") == 0
        assert value(local(), "todo_db_pool_connections_in_use") == 0
    finally:
        db.close_all()


def test_database_errors_are_counted_by_kind(database_url):
    with fresh_app(database_url, DATABASE_POOL_SIZE="4", DATABASE_POOL_TIMEOUT="0") as app:
        db = app.extensions["database"]
        caller = Caller(app.test_client())
        assert caller.get("/api/users/me").status_code == 200
        before = value(local(), "todo_db_errors_total", kind="pool_exhausted")
        held = [threading.Thread(target=db.connect) for _ in range(4)]
        for thread in held:  # each thread keeps its connection: the pool is empty
            thread.start()
            thread.join()
        try:
            response = caller.get("/api/tasks")
        finally:
            db.close_all()
    assert response.status_code == 503
    assert value(local(), "todo_db_errors_total", kind="pool_exhausted") == before + 1


# --- Slow statements ----------------------------------------------------------------------------

@pytest.fixture
def db_log():
    """What the service.db logger writes, as text."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    logger = logging.getLogger("service.db")
    logger.addHandler(handler)
    yield buffer
    logger.removeHandler(handler)


def test_a_slow_statement_logs_its_route_duration_and_shape_without_values(database_url, admin_db, db_log):
    with fresh_app(database_url, SLOW_QUERY_MS="400") as app:
        caller = Caller(app.test_client())
        task = caller.create_task(title="locked for a while")
        assert db_log.getvalue() == ""  # fast statements log nothing
        # An operator's transaction holds the task's row: the toggle waits for it.
        with admin_db.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT 1 FROM tasks WHERE id = %s FOR UPDATE", (task["id"],))
        release = threading.Timer(1.2, lambda: admin_db.cursor().execute("COMMIT"))
        release.start()
        before = value(local(), "todo_db_slow_statements_total")
        response = caller.patch(f"/api/tasks/{task['id']}/complete")
        release.join()
    assert response.status_code == 200
    lines = [line for line in db_log.getvalue().splitlines() if "/complete" in line]
    assert len(lines) == 1, db_log.getvalue()
    line = lines[0]
    assert line.startswith("slow statement: ") and ", route /api/tasks/<int:task_id>/complete, " in line
    # It waited for the lock (released 1.2 s after the timer started, a little before the request).
    assert 400 < int(line.split("slow statement: ")[1].split(" ms")[0]) < 10000
    shape = line.split(": ", 2)[2]
    assert 'UPDATE "tasks"' in shape and "%s" in shape
    assert caller.id not in line and caller.token not in line
    assert "set_config" not in shape  # the scope prefix is the service's, not the statement's
    assert value(local(), "todo_db_slow_statements_total") == before + 1


def test_slow_statements_off_with_zero(database_url, db_log):
    with fresh_app(database_url, SLOW_QUERY_MS="0") as app:
        db = app.extensions["database"]
        with db.connection_context():
            db.execute_sql("SELECT pg_sleep(0.05)")
    assert db_log.getvalue() == ""
    with fresh_app(database_url, SLOW_QUERY_MS="20") as app:
        db = app.extensions["database"]
        with db.connection_context():
            db.execute_sql("SELECT pg_sleep(%s), %s", (0.05, "a-secret-value"))
    assert "route -" in db_log.getvalue() and "SELECT pg_sleep(%s), %s" in db_log.getvalue()
    assert "a-secret-value" not in db_log.getvalue()
