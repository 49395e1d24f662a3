"""SQL round trips per request, pinned (docs/benchmarks.md lists them): each statement carries the
caller's row-level-security scope in the same message, so a known user's request costs one round
trip per statement, and a user's first request in a process one more (provisioning).

The counts must not grow with the number of tasks a user has (no per-row queries)."""
import pytest

from tests.conftest import Caller

FAMILIES = ["/api/tasks", "/api/{user}/tasks"]


def counted(round_trips, call):
    with round_trips.counting():
        response = call()
    assert response.status_code < 400, response.get_json()
    return round_trips.count


@pytest.fixture
def known(client):
    """A user this process has already seen (provisioned), with one task."""
    caller = Caller(client)
    caller.create_task(title="first")
    return caller


@pytest.mark.parametrize("family", FAMILIES)
def test_each_task_route_is_one_round_trip_for_a_known_user(round_trips, known, family):
    base = family.format(user=known.id)
    task_id = known.create_task(title="counted")["id"]
    assert counted(round_trips, lambda: known.get(f"{base}?limit=20")) == 1
    assert counted(round_trips, lambda: known.get(f"{base}/{task_id}")) == 1
    assert counted(round_trips, lambda: known.post(base, json={"title": "new"})) == 1
    assert counted(round_trips, lambda: known.patch(f"{base}/{task_id}/complete")) == 1
    assert counted(round_trips, lambda: known.put(f"{base}/{task_id}", json={"title": "renamed"})) == 1
    assert counted(round_trips, lambda: known.patch(f"{base}/{task_id}", json={"priority": "high"})) == 1
    assert counted(round_trips, lambda: known.delete(f"{base}/{task_id}")) == 1


def test_the_next_page_by_cursor_is_one_round_trip(round_trips, known):
    for n in range(3):
        known.create_task(title=f"t{n}")
    cursor = known.get("/api/tasks?limit=2").get_json()["next_cursor"]
    assert counted(round_trips, lambda: known.get(f"/api/tasks?limit=2&cursor={cursor}")) == 1


def test_users_me_is_one_round_trip(round_trips, known):
    assert counted(round_trips, lambda: known.get("/api/users/me")) == 1


def test_a_users_first_request_adds_one_round_trip_for_provisioning(round_trips, client):
    newcomer = Caller(client)
    assert counted(round_trips, lambda: newcomer.get("/api/tasks?limit=20")) == 2
    assert counted(round_trips, lambda: newcomer.get("/api/tasks?limit=20")) == 1


def test_list_and_get_cost_the_same_with_1_or_50_tasks(round_trips, known):
    task_id = known.get("/api/tasks").get_json()["tasks"][0]["id"]
    with_one = (counted(round_trips, lambda: known.get("/api/tasks?limit=20")),
                counted(round_trips, lambda: known.get(f"/api/tasks/{task_id}")))
    for n in range(49):
        known.create_task(title=f"more {n}")
    assert known.get("/api/tasks?limit=1").get_json()["count"] == 50
    with_fifty = (counted(round_trips, lambda: known.get("/api/tasks?limit=20")),
                  counted(round_trips, lambda: known.get(f"/api/tasks/{task_id}")))
    assert with_one == with_fifty == (1, 1)


# Organising (contract section 6): tags ride in the same statements -----------------------------
@pytest.fixture
def tagged(known):
    """The known user with a few tasks carrying tags."""
    for n in range(3):
        known.create_task(title=f"tagged {n}", tags=["home", f"t{n}"], category="work")
    return known


@pytest.mark.parametrize("family", FAMILIES)
def test_a_list_with_tags_filters_and_counts_is_one_round_trip(round_trips, tagged, family):
    base = family.format(user=tagged.id)
    body = tagged.get(f"{base}?tag=home&limit=2").get_json()
    assert (len(body["tasks"]), body["total"], len(body["tasks"][0]["tags"])) == (2, 3, 2)
    for query in ("limit=20", "tag=home&tags=t1", "category=WORK&status=in_progress", "status=pending&tag=home",
                  "sort=priority&status=done"):
        assert counted(round_trips, lambda q=query: tagged.get(f"{base}?{q}")) == 1, query
    cursor = tagged.get(f"{base}?tag=home&limit=2").get_json()["next_cursor"]
    assert counted(round_trips, lambda: tagged.get(f"{base}?tag=home&limit=2&cursor={cursor}")) == 1


@pytest.mark.parametrize("family", FAMILIES)
def test_writes_with_tags_are_one_round_trip(round_trips, tagged, family):
    base = family.format(user=tagged.id)
    tag_id = tagged.get("/api/tags").get_json()["tags"][0]["id"]
    task_id = tagged.create_task(title="counted")["id"]
    assert counted(round_trips, lambda: tagged.post(base, json={"title": "new", "tags": ["home", "fresh"]})) == 1
    assert counted(round_trips, lambda: tagged.post(base, json={"title": "ids", "tag_ids": [tag_id]})) == 1
    assert counted(round_trips, lambda: tagged.patch(f"{base}/{task_id}", json={"tags": ["x", "y"]})) == 1
    assert counted(round_trips, lambda: tagged.put(f"{base}/{task_id}", json={"title": "t", "tag_ids": []})) == 1
    assert counted(round_trips, lambda: tagged.put(f"{base}/{task_id}/tags", json={"tags": ["Home", "z"]})) == 1
    assert counted(round_trips, lambda: tagged.put(f"{base}/{task_id}/tags", json={"tag_ids": [tag_id]})) == 1
    assert counted(round_trips, lambda: tagged.patch(f"{base}/{task_id}/status", json={"status": "done"})) == 1


@pytest.mark.parametrize("family", ["/api/tags", "/api/{user}/tags"])
def test_each_tag_route_is_one_round_trip(round_trips, tagged, family):
    base = family.format(user=tagged.id)
    tag_id = tagged.post(base, json={"name": "counted"}).get_json()["id"]
    assert counted(round_trips, lambda: tagged.get(base)) == 1
    assert counted(round_trips, lambda: tagged.post(base, json={"name": "another"})) == 1
    assert counted(round_trips, lambda: tagged.get(f"{base}/{tag_id}")) == 1
    assert counted(round_trips, lambda: tagged.patch(f"{base}/{tag_id}", json={"color": "#123456"})) == 1
    assert counted(round_trips, lambda: tagged.delete(f"{base}/{tag_id}")) == 1


def test_readyz_is_one_round_trip(round_trips, client):
    assert counted(round_trips, lambda: client.get("/readyz")) == 1


# --- Time: reminders, statistics, recurring completions (issue 12) ------------------------------

@pytest.mark.parametrize("path", ["/api/reminders", "/api/reminders?until=2030-01-01T00:00:00Z&limit=5",
                                  "/api/{user}/reminders"])
def test_reminders_are_one_round_trip(round_trips, known, path):
    known.create_task(title="remind me", remind_at="2026-01-01T09:00:00Z")
    assert counted(round_trips, lambda: known.get(path.format(user=known.id))) == 1


@pytest.mark.parametrize("path", ["/api/stats", "/api/statistics?tz=Europe/Berlin", "/api/{user}/stats"])
def test_statistics_are_one_round_trip(round_trips, known, path):
    known.patch(f"/api/tasks/{known.create_task(category='work')['id']}/complete")
    assert counted(round_trips, lambda: known.get(path.format(user=known.id))) == 1


@pytest.mark.parametrize("suffix, body", [("/complete", None), ("/complete", {"completed": True}),
                                          ("/status", {"status": "done"}), ("", {"completed": True})])
def test_a_recurring_completion_is_at_most_two_round_trips_and_an_ordinary_one_still_one(
        round_trips, known, suffix, body):
    extra = {"json": body} if body else {}
    ordinary = known.create_task(title="once")
    assert counted(round_trips, lambda: known.patch(f"/api/tasks/{ordinary['id']}{suffix}", **extra)) == 1
    recurring = known.create_task(title="again", tags=["t"], recurrence="FREQ=DAILY", due_date="2026-03-02T09:00:00Z")
    assert counted(round_trips, lambda: known.patch(f"/api/tasks/{recurring['id']}{suffix}", **extra)) <= 2
    # and the completion did create the next occurrence within those
    assert known.get("/api/tasks?search=again").get_json()["count"] == 2
    # completing it again (already completed) writes in one
    if body:
        assert counted(round_trips, lambda: known.patch(f"/api/tasks/{recurring['id']}{suffix}", **extra)) == 1


def test_profile_and_time_zone_change_are_one_round_trip(round_trips, known):
    assert counted(round_trips, lambda: known.get(f"/api/{known.id}/profile")) == 1
    assert counted(round_trips, lambda: known.patch("/api/users/me", json={"timezone": "Asia/Tokyo"})) == 1
