"""Read replicas and failover on PostgreSQL's own streaming replication (issue 15), each test on
private servers (tests/pg_cluster.py: a primary and streaming standbys from the embedded
PostgreSQL's binaries).

Where a statement ran is read from the servers themselves: they log every statement
(log_statement = all), and each request's statement carries its user's scope
(`set_config('app.user_id', '<id>', true)`; a transaction carries it on its BEGIN), so a server's
log counts that user's reads there: a read is one such statement.
"""
import re
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import Caller, RoundTrips, make_token
from tests.pg_cluster import Cluster, Template, connect
from tests.servers import Gunicorn, fresh_app, http

pytestmark = pytest.mark.slow

LOGGED = {"log_statement": "all"}
MAX_LAG_MS = 1000


@pytest.fixture(scope="module")
def template():
    """The migrated data directory every cluster of this module copies."""
    made = Template()
    yield made
    made.destroy()


@pytest.fixture
def cluster(template):
    """A primary and one streaming standby, both logging their statements."""
    with Cluster(template, **LOGGED) as made:
        made.standby = made.add_standby(wal_retrieve_retry_interval="200ms", **LOGGED)
        yield made


def scoped(server, user_id):
    """How many statements of `user_id` carrying their scope ran on `server` (its log says: one
    `statement:` line per message; an EXECUTE's `prepare:` detail repeats its first message)."""
    scope = f"set_config('app.user_id', '{user_id}', true)"
    return sum(scope in line for line in server.log_text().splitlines() if "statement: " in line)


def replica_app(cluster, *replicas, **env):
    """An in-process app on the cluster's primary, reading from `replicas`."""
    urls = ",".join(cluster.url(replica) for replica in replicas)
    return fresh_app(cluster.url(cluster.primary), DATABASE_REPLICA_URLS=urls,
                     DATABASE_REPLICA_MAX_LAG_MS=str(MAX_LAG_MS), **env)


def until(condition, timeout=10.0, pause=0.05):
    """Wait until `condition()` is true; False when `timeout` passed first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(pause)
    return bool(condition())


def settled(app, caller):
    """Wait until the app's monitors have seen a replica replay past `caller`'s last write (and
    within the lag bound): until then the primary serves them."""
    replicas = app.extensions["database"].replicas
    assert until(lambda: replicas.pick(caller.id) is not None), "no replica caught up"


# Routing -----------------------------------------------------------------------------------------
def test_reads_are_served_by_the_standby_and_writes_by_the_primary(cluster):
    with replica_app(cluster, cluster.standby) as app:
        alice, bob = Caller(app.test_client()), Caller(app.test_client())
        task = alice.create_task(title="written on the primary")
        bobs = bob.create_task(title="bob's")
        settled(app, alice)
        base = scoped(cluster.primary, alice.id)

        reads = [alice.get("/api/tasks"), alice.get(f"/api/tasks/{task['id']}"),
                 alice.get("/api/users/me"), alice.get(f"/api/{alice.id}/tasks"),
                 alice.get("/api/users/me/export"), alice.get(f"/api/tasks/{bobs['id']}")]

        assert [r.status_code for r in reads] == [200, 200, 200, 200, 200, 404]
        assert [t["title"] for t in reads[0].get_json()["tasks"]] == ["written on the primary"]
        assert reads[2].get_json()["id"] == alice.id
        assert [t["id"] for t in reads[4].get_json()["tasks"]] == [task["id"]]
        # Every read ran on the standby, none on the primary; bob's task stayed invisible there
        # (row-level security and the scope work on the replica as on the primary).
        assert scoped(cluster.standby, alice.id) == len(reads)
        assert scoped(cluster.primary, alice.id) == base
        # The policies replicate with the schema: the app role sees only the scoped user's rows
        # on the standby even without an owner condition.
        conn = connect(cluster.url(cluster.standby))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT set_config('app.user_id', %s, false)", (alice.id,))
                cur.execute("SELECT title FROM tasks")
                assert cur.fetchall() == [("written on the primary",)]
        finally:
            conn.close()

        etag = alice.get(f"/api/tasks/{task['id']}").headers["ETag"]
        writes = [alice.patch(f"/api/tasks/{task['id']}", json={"title": "renamed"}, headers={"If-Match": etag}),
                  alice.post("/api/tasks", json={"title": "keyed"}, headers={"Idempotency-Key": "k1"}),
                  alice.post("/api/tasks", json={"title": "keyed"}, headers={"Idempotency-Key": "k1"}),
                  alice.patch(f"/api/tasks/{task['id']}/complete", headers={"If-Match": '"999"'})]
        assert [w.status_code for w in writes] == [200, 201, 201, 412]
        assert writes[2].headers["Idempotent-Replayed"] == "true"
        standby_log = cluster.standby.log_text()
        assert not re.search(r"todo-service-replica: LOG:  statement: .*(INSERT|UPDATE|DELETE)", standby_log)
        assert scoped(cluster.standby, alice.id) == len(reads) + 1  # the GET for the ETag only


def test_a_replica_read_is_one_round_trip_and_a_write_two(cluster):
    with replica_app(cluster, cluster.standby) as app:
        alice = Caller(app.test_client())
        task = alice.create_task(title="counted")
        settled(app, alice)
        primary = RoundTrips(app.extensions["database"])
        replica = RoundTrips(app.extensions["database"].replicas.replicas[0].db)
        for path in ("/api/tasks?limit=20", f"/api/tasks/{task['id']}", "/api/users/me"):
            with primary.counting(), replica.counting():
                assert alice.get(path).status_code == 200
            assert (primary.count, replica.count) == (0, 1), path
        with primary.counting(), replica.counting():
            assert alice.post("/api/tasks", json={"title": "new"}).status_code == 201
        # The write and the WAL position that the user's next reads wait for.
        assert (primary.count, replica.count) == (2, 0)
        assert "pg_current_wal" in primary.statements[1]


def test_a_newcomers_first_read_provisions_on_the_primary_and_reads_there(cluster):
    with replica_app(cluster, cluster.standby) as app:
        someone = Caller(app.test_client())
        someone.create_task(title="warm the monitors")
        settled(app, someone)
        newcomer = Caller(app.test_client())
        me = newcomer.get("/api/users/me")
        assert me.status_code == 200 and me.get_json()["id"] == newcomer.id
        # Provisioning, the read and the write position, all on the primary.
        assert (scoped(cluster.primary, newcomer.id), scoped(cluster.standby, newcomer.id)) == (3, 0)
        # Read-your-writes covers the provisioning too: its position (after someone's write) is
        # noted, so the next read waits for the standby to hold the new row, then goes there.
        positions = app.extensions["database"].replicas.positions
        assert positions.required(newcomer.id)[0] > positions.required(someone.id)[0] > 0
        settled(app, newcomer)
        assert newcomer.get("/api/users/me").get_json()["id"] == newcomer.id
        assert scoped(cluster.standby, newcomer.id) == 1


def test_a_replica_that_stops_answering_mid_read_is_skipped_and_the_read_redone_on_the_primary(cluster):
    with replica_app(cluster, cluster.standby, DATABASE_STATEMENT_TIMEOUT_MS="1000") as app:
        alice = Caller(app.test_client())
        task = alice.create_task(title="still readable")
        settled(app, alice)
        assert alice.get("/api/tasks").status_code == 200
        on_standby, on_primary = scoped(cluster.standby, alice.id), scoped(cluster.primary, alice.id)
        assert on_standby == 1
        frozen = cluster.standby.processes()
        for process in frozen:  # a frozen VM: connections stay open, nothing answers
            process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            read = alice.get(f"/api/tasks/{task['id']}")
            read_took = time.monotonic() - started
            later = alice.get("/api/tasks")
            later_took = time.monotonic() - started - read_took
        finally:
            for process in frozen:
                process.send_signal(signal.SIGCONT)
        assert read.status_code == 200 and read.get_json()["title"] == "still readable"
        assert [t["id"] for t in later.get_json()["tasks"]] == [task["id"]]
        # The first read went to the standby and hung until the watchdog cut it (1.5 x the
        # statement timeout + 1 s), then was redone on the primary; the next one went straight
        # to the primary (the standby was marked down). Both ran there.
        assert read_took >= 2.0 and later_took < 1.0
        assert scoped(cluster.primary, alice.id) == on_primary + 2


def test_a_write_whose_position_is_unknown_pins_its_user_to_the_primary_until_relearned(cluster):
    """A write during a primary outage may or may not have committed, and its WAL position
    cannot be read: the user's reads stay on the primary until the monitor, once the primary
    is back, reads a position that covers it."""
    with replica_app(cluster, cluster.standby) as app:
        alice = Caller(app.test_client())
        alice.create_task(title="before the outage")
        settled(app, alice)
        assert alice.get("/api/tasks").status_code == 200
        assert scoped(cluster.standby, alice.id) == 1
        positions = app.extensions["database"].replicas.positions
        assert positions.required(alice.id)[1] is False
        before_outage = cluster.primary.sql("SELECT pg_current_wal_flush_lsn() - '0/0'")[0][0]
        cluster.primary.stop("fast")
        assert alice.post("/api/tasks", json={"title": "in doubt"}).status_code == 503
        assert positions.required(alice.id)[1] is True
        assert alice.get("/api/tasks").status_code == 503  # pinned: the primary's, and it is down
        cluster.primary.start()
        assert until(lambda: positions.required(alice.id)[1] is False)
        # Past everything written before the outage (and its shutdown checkpoint).
        assert positions.required(alice.id)[0] > before_outage
        settled(app, alice)
        listed = alice.get("/api/tasks")
        assert [t["title"] for t in listed.get_json()["tasks"]] == ["before the outage"]
        assert scoped(cluster.standby, alice.id) == 2


def test_a_lagging_replica_serves_only_within_the_max_lag(template):
    """Bounded staleness for writes this host cannot know of (another host's): the standby,
    replaying 2.5 s late, keeps serving until it is MAX_LAG_MS behind, then the primary does."""
    delay = 2.5
    with Cluster(template, **LOGGED) as cluster:
        standby = cluster.add_standby(recovery_min_apply_delay=f"{int(delay * 1000)}ms", **LOGGED)
        with replica_app(cluster, standby) as app, replica_app(cluster, standby) as other_host:
            alice = Caller(app.test_client())
            alice.create_task(title="seen by this host")
            settled(app, alice)
            assert alice.get("/api/tasks").get_json()["count"] == 1
            assert scoped(standby, alice.id) == 1
            written_at = time.monotonic()
            Caller(other_host.test_client(), alice.id).create_task(title="from another host")
            polls = 0
            while alice.get("/api/tasks").get_json()["count"] == 1:
                polls += 1
                assert time.monotonic() - written_at < delay, "the lagging standby kept serving"
            seen_after = time.monotonic() - written_at
        print(f"\nanother host's write seen after {seen_after:.2f} s (max lag {MAX_LAG_MS} ms, "
              f"replay delay {delay} s)")
        assert seen_after <= MAX_LAG_MS / 1000 + 0.75
        # Until then the standby served (it was within the bound), and the last read did not.
        assert polls > 0 and scoped(standby, alice.id) == 1 + polls


# Under gunicorn ----------------------------------------------------------------------------------
class Clients:
    """Threads, one user each, running `script(user, headers, record)` until stopped; `record`
    keeps (started_at, finished_at, what, status, detail) for every request."""

    def __init__(self, port, script, users=4):
        self.port, self.script = port, script
        self.results, self._lock, self._stop = [], threading.Lock(), threading.Event()
        self.acknowledged = []  # (when, title) of creates answered 201, for scripts that keep them
        self.users = [f"replicas-{uuid.uuid4().hex[:10]}" for _ in range(users)]
        self._pool = ThreadPoolExecutor(max_workers=users)
        self._futures = [self._pool.submit(self._run, user) for user in self.users]

    def _run(self, user):
        headers = {"Authorization": f"Bearer {make_token(user, ttl=3600)}"}
        while not self._stop.is_set():
            self.script(self, headers)

    def send(self, what, method, path, body=None, headers=None):
        """One request; recorded. Returns the response, or None when the connection failed."""
        started, response, detail = time.monotonic(), None, None
        try:
            response = http(self.port, method, path, body, headers, timeout=20)
        except OSError as error:
            detail = repr(error)
        with self._lock:
            self.results.append((started, time.monotonic(), what, response and response.status,
                                 detail or (response.body[:200] if response and response.status >= 500 else None)))
        return response

    def fail(self, what, detail):
        with self._lock:
            self.results.append((time.monotonic(), time.monotonic(), what, "WRONG", detail))

    def stop(self):
        self._stop.set()
        for future in self._futures:
            future.result(timeout=60)
        self._pool.shutdown()

    def statuses(self):
        return {status for *_, status, _detail in self.results}

    def problems(self, allowed=()):
        """Failed connections, wrong answers and 5xx answers (but those `allowed`)."""
        return [r for r in self.results
                if r[3] is None or r[3] == "WRONG" or (r[3] >= 500 and r[3] not in allowed)]


def write_then_read(clients, headers, pause_reads=0.0):
    """Create a task and read it back at once (it must be there), rename it and read the new
    title; then, after `pause_reads`, list (everything created so far must be listed)."""
    title = f"t-{uuid.uuid4().hex[:8]}"
    created = clients.send("create", "POST", "/api/tasks", {"title": title}, headers)
    if created is None or created.status != 201:
        return
    task_id = created.json()["id"]
    got = clients.send("read", "GET", f"/api/tasks/{task_id}", headers=headers)
    if got is not None and got.status != 503 and (got.status != 200 or got.json()["title"] != title):
        clients.fail("read after create", f"{got.status} {got.body[:100]!r}")
    renamed = clients.send("rename", "PATCH", f"/api/tasks/{task_id}", {"title": title + "!"}, headers)
    if renamed is not None and renamed.status == 200:
        got = clients.send("read", "GET", f"/api/tasks/{task_id}", headers=headers)
        if got is not None and got.status != 503 and (got.status != 200 or got.json()["title"] != title + "!"):
            clients.fail("read after rename", f"{got.status} {got.body[:100]!r}")
    time.sleep(pause_reads)
    listed = clients.send("list", "GET", "/api/tasks?limit=1", headers=headers)
    if listed is not None and listed.status == 200 and listed.json()["tasks"][0]["id"] < task_id:
        clients.fail("list after create", f"newest listed {listed.json()['tasks'][0]['id']} < {task_id}")


def reads_on(server, users):
    return sum(scoped(server, user) for user in users)


def test_read_your_writes_across_gunicorn_workers_with_replay_delayed(template):
    with Cluster(template, **LOGGED) as cluster:
        standby = cluster.add_standby(recovery_min_apply_delay="400ms", **LOGGED)
        server = Gunicorn(cluster.url(cluster.primary), workers=3, DATABASE_REPLICA_URLS=cluster.url(standby),
                          DATABASE_REPLICA_MAX_LAG_MS=str(MAX_LAG_MS), DATABASE_POOL_SIZE="4")
        try:
            clients = Clients(server.port, lambda c, h: write_then_read(c, h, pause_reads=0.6))
            time.sleep(6)
            clients.stop()
        finally:
            server.stop()
        reads = [r for r in clients.results if r[2] in ("read", "list")]
        print(f"\nread-your-writes: {len(reads)} reads after writes, "
              f"{reads_on(standby, clients.users)} served by the delayed standby")
        assert clients.problems() == [] and clients.statuses() == {200, 201}
        assert len(reads) >= 40
        # Not a trivial pass: the delayed standby served some of these users' reads (those a
        # while after their last write), the primary the others.
        assert reads_on(standby, clients.users) >= 5


def test_a_replica_stopped_under_load_costs_no_error(template):
    with Cluster(template, **LOGGED) as cluster:
        standby = cluster.add_standby(**LOGGED)
        server = Gunicorn(cluster.url(cluster.primary), workers=2, DATABASE_REPLICA_URLS=cluster.url(standby),
                          DATABASE_REPLICA_MAX_LAG_MS=str(MAX_LAG_MS), DATABASE_POOL_SIZE="4")
        try:
            clients = Clients(server.port, lambda c, h: write_then_read(c, h, pause_reads=0.2))
            time.sleep(2)
            before = reads_on(standby, clients.users)
            standby.stop("fast")
            time.sleep(2.5)
            standby.start()
            cluster.wait_streaming(standby)
            restarted_log = len(standby.log_text())
            time.sleep(2.5)
            clients.stop()
        finally:
            server.stop()
        assert clients.problems() == [] and clients.statuses() == {200, 201}
        assert before > 0  # the standby served before it stopped ...
        served_after = sum(standby.log_text()[restarted_log:].count(f"'app.user_id', '{u}'") for u in clients.users)
        assert served_after > 0  # ... and again once it was back


# Failover ------------------------------------------------------------------------------------------
def create_and_read(clients, headers):
    """Create a task (its title recorded when acknowledged) and read it back."""
    title = f"f-{uuid.uuid4().hex}"
    created = clients.send("create", "POST", "/api/tasks", {"title": title}, headers)
    if created is None:
        return
    if created.status == 503:
        if created.headers.get("retry-after") is None:
            clients.fail("503 without Retry-After", created.body[:100])
        time.sleep(0.05)
        return
    if created.status == 201:
        with clients._lock:
            clients.acknowledged.append((time.monotonic(), title))
        got = clients.send("read", "GET", f"/api/tasks/{created.json()['id']}", headers=headers)
        if got is not None and got.status not in (200, 503):
            clients.fail("read after create", f"{got.status} {got.body[:100]!r}")


def test_failover_under_write_load_loses_no_acknowledged_write(template):
    with Cluster(template) as cluster:
        standby = cluster.add_standby()
        cluster.primary.sql("ALTER SYSTEM SET synchronous_standby_names = '*'")
        cluster.primary.sql("SELECT pg_reload_conf()")
        assert until(lambda: cluster.primary.sql("SELECT sync_state FROM pg_stat_replication") == [("sync",)])
        url = cluster.url(cluster.primary, standby, target_session_attrs="read-write")
        server = Gunicorn(url, workers=2, DATABASE_REPLICA_URLS=cluster.url(standby), DATABASE_POOL_SIZE="4",
                          DATABASE_CONNECT_TIMEOUT="2", DATABASE_POOL_TIMEOUT="2",
                          DATABASE_STATEMENT_TIMEOUT_MS="2000")
        try:
            clients = Clients(server.port, create_and_read)
            time.sleep(2)
            stopped_at = time.monotonic()
            cluster.primary.stop("immediate")
            standby.promote()
            promoted_at = time.monotonic()
            assert until(lambda: any(r[0] > promoted_at and r[3] == 201 for r in clients.results), timeout=15)
            time.sleep(1.5)
            clients.stop()
        finally:
            server.stop()
        first_201 = min(r[1] for r in clients.results if r[0] > promoted_at and r[3] == 201)
        refused = sum(1 for r in clients.results if r[3] == 503)
        print(f"\nfailover: 201 again {first_201 - promoted_at:.2f} s after the promotion "
              f"({first_201 - stopped_at:.2f} s after the primary stopped); "
              f"{len(clients.acknowledged)} acknowledged writes, {refused} answered 503 meanwhile")
        assert first_201 - promoted_at < 5.0
        assert clients.problems(allowed=(503,)) == [] and clients.statuses() <= {200, 201, 503}
        titles = [title for _at, title in clients.acknowledged]
        stored = {title for (title,) in cluster.app_sql(standby, "SELECT title FROM tasks WHERE title = ANY(%s)",
                                                          (titles,))}
        assert len(titles) > 20 and set(titles) == stored
        assert any(at < stopped_at for at, _title in clients.acknowledged)
        assert any(at > promoted_at for at, _title in clients.acknowledged)


def test_switchover_drops_connections_to_the_now_read_only_primary(template):
    """A planned switchover: the old primary turns read-only (still running, its connections
    open), the standby is promoted. Writes must reach the new primary without a restart: no
    pooled connection to the read-only server may serve a write again."""
    with Cluster(template) as cluster:
        standby = cluster.add_standby()
        url = cluster.url(cluster.primary, standby, target_session_attrs="read-write")
        with fresh_app(url, DATABASE_POOL_SIZE="4") as app:
            alice = Caller(app.test_client())
            before = [alice.create_task(title=f"before {n}")["id"] for n in range(3)]
            cluster.primary.sql("ALTER SYSTEM SET default_transaction_read_only = on")
            cluster.primary.sql("SELECT pg_reload_conf()")
            # The postmaster rereads its settings, then signals every backend (the pooled ones).
            assert until(lambda: cluster.primary.sql("SHOW default_transaction_read_only") == [("on",)])
            time.sleep(0.5)
            refused = alice.post("/api/tasks", json={"title": "refused"})
            assert refused.status_code == 503 and refused.headers["Retry-After"]
            cluster.wait_replayed(standby)
            standby.promote()
            after = alice.post("/api/tasks", json={"title": "after"})
            assert after.status_code == 201, after.get_json()
        rows = cluster.app_sql(standby, "SELECT id, title FROM tasks ORDER BY id")
        assert [title for _id, title in rows] == ["before 0", "before 1", "before 2", "after"]
        assert [task_id for task_id, _ in rows][:3] == before
        assert cluster.primary.sql("SELECT pg_is_in_recovery()") == [(False,)]  # still up, read-only
        assert cluster.app_sql(cluster.primary, "SELECT count(*) FROM tasks") == [(3,)]


def test_multi_host_and_replica_urls_are_accepted_and_bad_ones_are_one_line():
    from service.config import ConfigError, load_config

    primary = "postgresql://app:pw@db1:5432,db2:5432/todo?target_session_attrs=read-write"
    replicas = "postgres://app:pw@r1:5432/todo, postgresql://app:pw@r2:6432,r3:6432/todo?target_session_attrs=standby"
    config = load_config({"DATABASE_URL": primary, "DATABASE_REPLICA_URLS": replicas,
                          "DATABASE_REPLICA_MAX_LAG_MS": "250"})
    assert config.database_url == primary and config.replica_max_lag_ms == 250
    assert config.replica_urls == ("postgres://app:pw@r1:5432/todo",
                                   "postgresql://app:pw@r2:6432,r3:6432/todo?target_session_attrs=standby")
    assert load_config({}).replica_urls == ()
    for env, needle in [({"DATABASE_REPLICA_URLS": "postgresql://app@r1/todo,mysql://r2/todo"}, "URL 2 of 2"),
                        ({"DATABASE_REPLICA_URLS": "postgresql://app:hunter2@r1:5432,r2:port/todo"}, "port"),
                        ({"DATABASE_URL": "postgresql://app@db1:5432,db2:5432/"}, "name a database"),
                        ({"DATABASE_URL": "postgresql://app:hunter2@db/todo?nonsense=1"}, "libpq"),
                        ({"DATABASE_REPLICA_MAX_LAG_MS": "0"}, "DATABASE_REPLICA_MAX_LAG_MS")]:
        with pytest.raises(ConfigError) as raised:
            load_config(env)
        message = str(raised.value)
        assert needle in message and "\n" not in message and "hunter2" not in message


def test_write_positions_are_shared_with_forked_workers_and_keep_the_highest():
    import multiprocessing

    from service.db.write_positions import WritePositions, parse_lsn

    positions = WritePositions(slots=1)  # one slot: every user shares it
    assert parse_lsn("16/B374D848") == 0x16B374D848
    positions.record("alice", 500)
    positions.record("bob", 200)  # lower: kept at 500 for both (only ever more careful)
    assert positions.required("bob") == (500, False)
    child = multiprocessing.get_context("fork").Process(target=positions.record, args=("carol", 900))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert positions.required("alice") == (900, False)  # written by the other process
    slot = positions.pin("alice")
    assert positions.required("bob") == (900, True)
    positions.unpin(slot, 950)
    assert positions.required("bob") == (950, False)
