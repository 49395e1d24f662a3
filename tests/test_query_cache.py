"""The compiled-query cache (service/db/query_cache.py): SQL compiled once per shape must return
exactly what Peewee's freshly built query returns, for other values of the same shape too."""
import contextlib
from datetime import UTC, datetime

import pytest
from peewee import fn
from werkzeug.datastructures import MultiDict

from service.db import database, query_cache
from service.db.models import Task
from service.list_params import decode_cursor, encode_cursor, parse_list_params
from service.store import task_sql
from service.store import tasks as store
from service.vocabularies import DEFAULT_VOCABULARIES

SORTS = ["created", "updated", "title", "due_date", "priority"]


@contextlib.contextmanager
def scoped(app, user_id):
    """The app's database, bound to `user_id` as a request would be."""
    db = app.extensions["database"]
    database.initialize(db)
    db.open_for(user_id)
    try:
        yield db
    finally:
        db.release()


@pytest.fixture
def two_users_with_tasks(alice, bob):
    for caller in (alice, bob):
        for n in range(7):
            caller.create_task(title=f"{'BCA'[n % 3]} task {n}", priority=("low", "medium", "high")[n % 3],
                               completed=n % 2 == 0, category="home" if n % 2 else None,
                               tags=["errands"] if n % 3 else [],
                               due_date=None if n % 3 == 0 else f"2027-0{n + 1}-01T00:00:00Z")
    return alice, bob


def fresh(build, shape, **values):
    return list(build(shape, **values).tuples())


def compiles_during(block):
    before = query_cache.compiles()
    block()
    return query_cache.compiles() - before


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_every_list_shape_returns_what_peewee_builds_afresh(app, two_users_with_tasks, sort, order):
    shapes = set()
    for caller in two_users_with_tasks:
        with scoped(app, caller.id):
            for extra in ({}, {"status": "pending"}, {"status": "in_progress"}, {"priority": "high"},
                          {"offset": "2"}, {"search": "task"}, {"category": "Home"}, {"tag": "errands"}):
                args = {"sort": sort, "order": order, "limit": "3", **extra}
                for _page in range(4):  # the first page, then by cursor, as clients walk it
                    params = parse_list_params(MultiDict(args), DEFAULT_VOCABULARIES)
                    shape, arguments = task_sql.page_arguments(caller.id, params, "done")
                    shapes.add(shape)
                    rows = query_cache.rows(task_sql.page_query, shape, **arguments)
                    assert rows == fresh(task_sql.page_query, shape, **arguments)
                    assert rows or extra.get("status") == "in_progress", args
                    page = store.page(caller.id, params, DEFAULT_VOCABULARIES)
                    if page["next_cursor"] is None:
                        break
                    args = {**args, "cursor": page["next_cursor"]}
    assert len(shapes) >= 6  # plain, three filters, offset and cursor pages: compiled per shape


def test_a_shape_compiles_once_and_serves_other_values(app, two_users_with_tasks):
    alice, bob = two_users_with_tasks

    def build(_shape, user, task_id):
        return Task.select(Task.id, Task.user).where(Task.user == user, Task.id == task_id).limit(1)

    def run_both():
        for caller in (alice, bob):
            task_id = caller.get("/api/tasks?limit=1").get_json()["tasks"][0]["id"]
            with scoped(app, caller.id):
                assert query_cache.rows(build, (), user=caller.id, task_id=task_id) == \
                    fresh(build, (), user=caller.id, task_id=task_id) == [(task_id, caller.id)]

    assert compiles_during(run_both) == 1


def test_a_value_the_builder_transforms_is_refused_not_misused(app, alice):
    with scoped(app, alice.id), pytest.raises(RuntimeError, match="fetch"):
        query_cache.rows(lambda _shape, user, fetch: Task.select(Task.id).where(Task.user == user).limit(fetch + 1),
                         ("transformed",), user=alice.id, fetch=5)


def test_none_and_booleans_are_part_of_the_shape(app, two_users_with_tasks):
    alice, _ = two_users_with_tasks

    def build(_shape, user, completed, due):
        query = Task.select(Task.id, Task.completed).where(Task.user == user)
        if completed is not None:
            query = query.where(Task.completed == completed)
        if due is None:
            query = query.where(Task.due_date.is_null())
        else:
            query = query.where(Task.due_date.is_null() | (Task.due_date > due))
        return query.order_by(Task.id)

    def run_all():
        with scoped(app, alice.id):
            for completed in (None, True, False):
                for due in (None, datetime(2000, 1, 1, tzinfo=UTC)):
                    assert query_cache.rows(build, (), user=alice.id, completed=completed, due=due) == \
                        fresh(build, (), user=alice.id, completed=completed, due=due)

    assert compiles_during(run_all) == 6


def test_a_value_without_a_stand_in_runs_uncompiled(app, two_users_with_tasks):
    alice, _ = two_users_with_tasks

    def build(_shape, user, above):
        return Task.select(fn.COUNT(Task.id)).where(Task.user == user, Task.id > above)

    def run():
        with scoped(app, alice.id):
            assert query_cache.rows(build, (), user=alice.id, above=0.5) == [(7,)]  # a float: no stand-in

    assert compiles_during(run) == 1  # the one miss, remembered as "cannot compile"


def test_a_cursor_with_an_offset_lists_from_the_cursor(alice):
    # The offset is ignored after a cursor; a value the compiled SQL does not use must not break it.
    ids = [alice.create_task(title=f"t{n}")["id"] for n in range(3)]
    first = alice.get("/api/tasks?limit=1").get_json()
    response = alice.get(f"/api/tasks?limit=1&offset=1&cursor={first['next_cursor']}")
    assert response.status_code == 200
    assert [t["id"] for t in response.get_json()["tasks"]] == [ids[1]]


def test_cursor_round_trips_its_values():
    cursor = encode_cursor("due_date", True, None, 9)
    errors = []
    assert decode_cursor(cursor, "due_date", True, errors) == (None, 9) and not errors
    assert decode_cursor(cursor, "due_date", False, errors) is None and errors
