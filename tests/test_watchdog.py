"""The database watchdog (service/db/watchdog.py) cuts a call that outlives its deadline, and
never a connection whose call has ended: once `done()` returns, the pool may hand the connection
to another request, so a sweep that has already chosen the call must finish its cut before
`done()` returns (the sweep and `done()` share a lock). Its end-to-end behaviour against a
frozen or slow server is in test_faults.py."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import peewee
import pytest

from service.db import make_database
from service.db import watchdog as watchdog_module
from service.db.watchdog import Watchdog
from tests.conftest import make_config


@pytest.fixture
def dog():
    """A watchdog of the test's own, sweeping every few milliseconds."""
    dog = Watchdog(interval=0.002)
    yield dog
    dog.interval = 3600  # its (daemon) thread falls asleep at its next turn


def test_done_waits_until_a_sever_already_under_way_has_finished(dog, monkeypatch):
    entered, release, returned = threading.Event(), threading.Event(), threading.Event()
    events = []

    def slow_sever(conn):
        events.append("sever started")
        entered.set()
        release.wait(timeout=30)
        events.append("sever finished")

    monkeypatch.setattr(watchdog_module, "_sever", slow_sever)

    def call():
        dog.watch(object(), -1.0)  # past its deadline already: the next sweep chooses it
        entered.wait(timeout=30)
        dog.done()  # the call ends while the sweep is inside its cut
        events.append("done returned")
        returned.set()

    caller = threading.Thread(target=call)
    caller.start()
    try:
        assert entered.wait(timeout=30), "the sweep never chose the overdue call"
        assert not returned.wait(timeout=0.5), "done() returned while its connection was being cut"
    finally:
        release.set()
        caller.join(timeout=30)
    assert events == ["sever started", "sever finished", "done returned"]
    assert dog.severed == 1


def test_done_returns_at_once_when_no_sweep_chose_the_call(dog):
    """The lock costs a call that ends in time nothing noticeable: no sweep, no wait."""
    dog.watch(object(), 60)
    started = time.monotonic()
    dog.done()
    assert time.monotonic() - started < 0.1
    assert dog.severed == 0


def test_many_short_calls_under_a_tiny_deadline_never_cut_a_connection_whose_call_ended(
        database_url, dog, monkeypatch):
    """Real pooled connections, four threads, every call overdue at once: the watchdog
    keeps cutting calls as they end. Each cut must hit a connection whose call is still
    registered, never one already given back (and perhaps checked out by another thread). The
    cut is slowed down a little so that a `done()` not waiting for it would be seen."""
    db = make_database(make_config(DATABASE_POOL_SIZE="8"), database_url)
    db.watchdog = dog
    holders, stacks, violations = {}, {}, []  # id(conn) -> thread; thread -> its watched conns
    real_watch, real_done, real_sever = dog.watch, dog.done, watchdog_module._sever

    def watch(conn, seconds):
        holders[id(conn)] = threading.get_ident()
        stacks.setdefault(threading.get_ident(), []).append(conn)
        real_watch(conn, 0.0)  # overdue at the first sweep that sees it

    def done():
        real_done()
        conn = stacks[threading.get_ident()].pop()
        holders.pop(id(conn), None)

    def sever(conn):
        holder = holders.get(id(conn))
        time.sleep(0.002)  # the window in which an unsynchronised done() would return
        real_sever(conn)
        if holder is None or holders.get(id(conn)) != holder:
            violations.append((holder, holders.get(id(conn))))

    monkeypatch.setattr(dog, "watch", watch)
    monkeypatch.setattr(dog, "done", done)
    monkeypatch.setattr(watchdog_module, "_sever", sever)

    def work(n):
        for _ in range(150):
            db.bind_user(f"watchdog-{n}")
            try:
                with db.connection_context():
                    db.execute_sql("SELECT 1").fetchone()
            except (peewee.OperationalError, peewee.InterfaceError):
                pass  # this thread's own call, cut past its deadline: expected here
            finally:
                db.unbind()

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(work, range(4), timeout=240))
    finally:
        db.close_all()
    assert dog.severed > 0, "the watchdog never cut a call: the test proves nothing"
    assert violations == [], f"{len(violations)} cuts hit a connection whose call had ended"
