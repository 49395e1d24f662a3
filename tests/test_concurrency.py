"""Optimistic concurrency (contract section 4): every task response carries `ETag: "<version>"`;
a stale `If-Match` is 412 on every write; of concurrent writes carrying the same `If-Match`
exactly one wins. Concurrent requests run in real threads, each with its own test client."""
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import Caller
from tests.servers import race

FAMILIES = ["/api/tasks", "/api/{user}/tasks"]


def url(family, caller, task_id, suffix=""):
    return f"{family.format(user=caller.id)}/{task_id}{suffix}"


# ETag on every task response -----------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_every_task_response_carries_the_version_as_strong_etag(alice, family):
    created = alice.post(family.format(user=alice.id), json={"title": "a"})
    assert created.headers["ETag"] == '"1"'
    task_id = created.get_json()["id"]
    assert alice.get(url(family, alice, task_id)).headers["ETag"] == '"1"'
    assert alice.put(url(family, alice, task_id), json={"title": "b"}).headers["ETag"] == '"2"'
    assert alice.patch(url(family, alice, task_id), json={"priority": "high"}).headers["ETag"] == '"3"'
    assert alice.patch(url(family, alice, task_id, "/complete")).headers["ETag"] == '"4"'
    assert not alice.get(url(family, alice, task_id)).headers["ETag"].startswith("W/")


def test_failed_update_does_not_change_the_etag(alice):
    task = alice.create_task()
    assert alice.patch(f"/api/tasks/{task['id']}", json={"title": ""}).status_code == 422
    assert alice.get(f"/api/tasks/{task['id']}").headers["ETag"] == '"1"'


# Stale If-Match -> 412 on every write ------------------------------------------------------
WRITES = [
    ("PUT", "", {"json": {"title": "stale"}}),
    ("PATCH", "", {"json": {"title": "stale"}}),
    ("PATCH", "/complete", {}),
    ("PATCH", "/complete", {"json": {"completed": True}}),
    ("DELETE", "", {}),
]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method, suffix, kwargs", WRITES)
def test_stale_if_match_is_412_and_changes_nothing(alice, family, method, suffix, kwargs):
    task = alice.create_task(title="original")
    assert alice.patch(f"/api/tasks/{task['id']}", json={"description": "v2"}).status_code == 200
    response = alice.request(method, url(family, alice, task["id"], suffix),
                             headers={"If-Match": '"1"'}, **kwargs)
    assert response.status_code == 412
    assert response.mimetype == "application/problem+json"
    assert response.headers["ETag"] == '"2"'  # the current version, so the client can refetch
    current = alice.get(f"/api/tasks/{task['id']}")
    assert current.status_code == 200
    assert current.headers["ETag"] == '"2"'
    assert current.get_json()["title"] == "original" and current.get_json()["completed"] is False


@pytest.mark.parametrize("method, suffix, kwargs", WRITES)
def test_current_if_match_succeeds(alice, method, suffix, kwargs):
    task = alice.create_task()
    response = alice.request(method, f"/api/tasks/{task['id']}{suffix}", headers={"If-Match": '"1"'}, **kwargs)
    assert response.status_code == 200


@pytest.mark.parametrize("header", ['"1"', "*", '"7", "1"', '"7",  "1" , "9"', 'W/"1", *', "1"])
def test_if_match_forms_that_match(alice, header):
    # "*" means "any current version"; a list matches when one of its tags does; a bare
    # version is taken as its quoted tag.
    task = alice.create_task()
    response = alice.patch(f"/api/tasks/{task['id']}", json={"title": "x"}, headers={"If-Match": header})
    assert response.status_code == 200


@pytest.mark.parametrize("header", ["garbage", '"abc"', '""', 'W/"1"', 'W/"1", "2"', '"2", "3"',
                                    '"99999999999999999999"', '"1'])
def test_if_match_that_names_no_current_version_is_412_not_500(alice, header):
    # Strong comparison (RFC 9110 13.1.1): a weak tag never matches, nor a malformed one.
    task = alice.create_task()
    response = alice.patch(f"/api/tasks/{task['id']}", json={"title": "x"}, headers={"If-Match": header})
    assert response.status_code == 412
    assert alice.get(f"/api/tasks/{task['id']}").headers["ETag"] == '"1"'


def test_if_match_on_someone_elses_task_is_404_not_412(alice, bob):
    task = bob.create_task()
    response = alice.patch(f"/api/tasks/{task['id']}", json={"title": "x"}, headers={"If-Match": '"9"'})
    assert response.status_code == 404
    assert "ETag" not in response.headers  # nothing about bob's task leaks


def test_if_match_on_missing_task_is_404(alice):
    response = alice.delete("/api/tasks/987654320", headers={"If-Match": '"1"'})
    assert response.status_code == 404


# Races --------------------------------------------------------------------------------------
@pytest.mark.parametrize("writers", [2, 10])
@pytest.mark.parametrize("method, suffix", [("PUT", ""), ("PATCH", ""), ("PATCH", "/complete")])
def test_of_concurrent_updates_with_the_same_if_match_exactly_one_wins(app, alice, writers, method, suffix):
    task = alice.create_task(title="start")
    requests = [(method, f"/api/tasks/{task['id']}{suffix}",
                 {"json": {"title": f"writer {n}"} if not suffix else {"completed": True},
                  "headers": {"If-Match": '"1"'}}) for n in range(writers)]
    responses = race(app, alice, requests)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * (writers - 1), statuses
    winner = next(r for r in responses if r.status_code == 200)
    assert winner.headers["ETag"] == '"2"'
    for loser in responses:
        if loser.status_code == 412:
            assert loser.headers["ETag"] == '"2"'
    current = alice.get(f"/api/tasks/{task['id']}")
    assert current.headers["ETag"] == '"2"'
    assert current.get_json() == winner.get_json()


def test_of_concurrent_deletes_with_the_same_if_match_exactly_one_wins(app, alice):
    task = alice.create_task()
    responses = race(app, alice, [("DELETE", f"/api/tasks/{task['id']}", {"headers": {"If-Match": '"1"'}})] * 6)
    statuses = sorted(r.status_code for r in responses)
    # The losers find the task gone (404) or, if they looked before the delete committed, stale.
    assert statuses.count(200) == 1, statuses
    assert set(statuses) <= {200, 404, 412}, statuses
    assert alice.get(f"/api/tasks/{task['id']}").status_code == 404


def test_concurrent_update_and_delete_with_the_same_if_match_exactly_one_wins(app, alice):
    task = alice.create_task()
    path = f"/api/tasks/{task['id']}"
    responses = race(app, alice, [("PATCH", path, {"json": {"title": "x"}, "headers": {"If-Match": '"1"'}}),
                                  ("DELETE", path, {"headers": {"If-Match": '"1"'}})])
    assert sorted(r.status_code for r in responses).count(200) == 1, [r.status_code for r in responses]


def test_concurrent_updates_without_if_match_all_apply_and_count_versions(app, alice):
    # Without If-Match every write applies (last write wins) and none is lost: the version
    # counts all of them.
    task = alice.create_task()
    responses = race(app, alice, [("PATCH", f"/api/tasks/{task['id']}/complete", {})] * 10)
    assert [r.status_code for r in responses] == [200] * 10
    assert sorted(r.headers["ETag"] for r in responses) == sorted(f'"{v}"' for v in range(2, 12))
    final = alice.get(f"/api/tasks/{task['id']}")
    assert final.headers["ETag"] == '"11"'
    assert final.get_json()["completed"] is False  # ten toggles


def test_compare_and_set_loop_loses_no_update(app, alice):
    # Clients that retry on 412 with the fresh ETag all eventually succeed, each exactly once.
    task = alice.create_task(description="")
    path = f"/api/tasks/{task['id']}"
    barrier = threading.Barrier(5)

    def append(n):
        own = Caller(app.test_client(), alice.id)
        barrier.wait(timeout=10)
        for _attempt in range(200):
            current = own.get(path)
            body = current.get_json()
            response = own.patch(path, json={"description": body["description"] + str(n)},
                                 headers={"If-Match": current.headers["ETag"]})
            if response.status_code == 200:
                return True
            assert response.status_code == 412
        return False

    with ThreadPoolExecutor(max_workers=5) as pool:
        assert all(pool.map(append, range(5), timeout=60))
    final = alice.get(path).get_json()
    assert sorted(final["description"]) == list("01234")
