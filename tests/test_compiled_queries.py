"""The compiled-query cache (service/compiled.py): SQL compiled once per shape must return exactly
what Peewee's freshly built query returns, for other values of the same shape too."""
import contextlib
from datetime import UTC, datetime

import pytest
from peewee import fn

from service.compiled import CompiledQueries
from service.db import database
from service.listing import encode_cursor, page_query, parse_list_params
from service.models import TASK_FIELDS, Task

SORTS = ["created", "updated", "title", "due_date", "priority"]


@contextlib.contextmanager
def scoped(app, user_id):
    """The app's database, bound to `user_id` as a request would be."""
    db = app.extensions["database"]
    database.initialize(db)
    db.bind_user(user_id)
    db.connect(reuse_if_open=True)
    try:
        yield db
    finally:
        db.unbind()
        db.close()


@pytest.fixture
def two_users_with_tasks(alice, bob):
    for caller in (alice, bob):
        for n in range(7):
            caller.create_task(title=f"{'BCA'[n % 3]} task {n}", priority=("low", "medium", "high")[n % 3],
                               completed=n % 2 == 0,
                               due_date=None if n % 3 == 0 else f"2027-0{n + 1}-01T00:00:00Z")
    return alice, bob


def fresh(build, **values):
    return list(build(**values).dicts())


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_every_list_shape_returns_what_peewee_builds_afresh(app, two_users_with_tasks, sort, order):
    cache = CompiledQueries()
    for caller in two_users_with_tasks:
        with scoped(app, caller.id):
            for extra in ({}, {"status": "pending"}, {"priority": "high"}, {"offset": "2"}):
                args = {"sort": sort, "order": order, "limit": "3", **extra}
                for _page in range(4):  # the first page, then by cursor, as clients walk it
                    params = parse_list_params(args)
                    after_value, after_id = params.after or (None, None)
                    values = {"user": caller.id, "fetch": params.limit + 1, "priority": params.priority,
                              "after_value": after_value, "after_id": after_id,
                              "offset": params.offset or None if params.after is None else None}
                    shape = ("list", params.completed, sort, params.descending, params.after is not None)

                    def build(params=params, **v):
                        return page_query(params, **v)

                    rows = cache.rows(shape, build, **values)
                    assert rows == fresh(build, **values)
                    if len(rows) <= params.limit:
                        break
                    args = {**args, "cursor": encode_cursor(params, rows[params.limit - 1])}
    assert cache.compiles <= 4 * 2 * 2 + 2  # one per shape, not one per query


def test_a_shape_compiles_once_and_serves_other_values(app, two_users_with_tasks):
    alice, bob = two_users_with_tasks
    cache = CompiledQueries()

    def build(user, task_id):
        return Task.owned(user, *TASK_FIELDS).where(Task.id == task_id).limit(1)

    for caller in (alice, bob):
        task_id = caller.get("/api/tasks?limit=1").get_json()["tasks"][0]["id"]
        with scoped(app, caller.id):
            assert cache.rows("get", build, user=caller.id, task_id=task_id) == \
                fresh(build, user=caller.id, task_id=task_id)
            assert cache.rows("get", build, user=caller.id, task_id=task_id)[0]["user"] == caller.id
    assert cache.compiles == 1


def test_a_value_the_builder_transforms_is_refused_not_misused(app, alice):
    cache = CompiledQueries()
    with scoped(app, alice.id), pytest.raises(RuntimeError, match="fetch"):
        cache.rows("bad", lambda user, fetch: Task.owned(user, Task.id).limit(fetch + 1),
                   user=alice.id, fetch=5)


def test_none_and_booleans_are_part_of_the_shape(app, two_users_with_tasks):
    alice, _ = two_users_with_tasks
    cache = CompiledQueries()

    def build(user, completed, due):
        query = Task.owned(user, Task.id, Task.completed)
        if completed is not None:
            query = query.where(Task.completed == completed)
        if due is None:
            query = query.where(Task.due_date.is_null())
        else:
            query = query.where(Task.due_date.is_null() | (Task.due_date > due))
        return query.order_by(Task.id)

    with scoped(app, alice.id):
        for completed in (None, True, False):
            for due in (None, datetime(2000, 1, 1, tzinfo=UTC)):
                assert cache.rows("b", build, user=alice.id, completed=completed, due=due) == \
                    fresh(build, user=alice.id, completed=completed, due=due)
    assert cache.compiles == 6


def test_a_value_without_a_stand_in_runs_uncompiled(app, two_users_with_tasks):
    alice, _ = two_users_with_tasks
    cache = CompiledQueries()

    def build(user, since):
        return Task.owned(user, fn.COUNT(Task.id).alias("n")).where(Task.created_at > since)

    naive = datetime(2000, 1, 1)  # noqa: DTZ001 - deliberately naive: no stand-in for it
    with scoped(app, alice.id):
        assert cache.rows("naive", build, user=alice.id, since=naive) == [{"n": 7}]
    assert cache.compiles == 0


def test_a_cursor_with_an_offset_lists_from_the_cursor(alice):
    # The offset is ignored after a cursor; a value the compiled SQL does not use must not break it.
    ids = [alice.create_task(title=f"t{n}")["id"] for n in range(3)]
    first = alice.get("/api/tasks?limit=1").get_json()
    response = alice.get(f"/api/tasks?limit=1&offset=1&cursor={first['next_cursor']}")
    assert response.status_code == 200
    assert [t["id"] for t in response.get_json()["tasks"]] == [ids[1]]
