"""Task routes, both families, as the contract's table describes them."""
import pytest

FAMILIES = ["/api/tasks", "/api/{user}/tasks"]


def base(family, caller):
    return family.format(user=caller.id)


@pytest.mark.parametrize("family", FAMILIES)
def test_create_returns_201_location_etag_and_ignores_foreign_keys(alice, bob, family):
    response = alice.post(base(family, alice), json={
        "title": "  Write report ", "description": "by Friday", "priority": "high",
        "due_date": "2026-12-01T09:00:00Z", "completed": True, "user_id": bob.id, "id": 999999})
    assert response.status_code == 201
    task = response.get_json()
    assert task["title"] == "Write report"
    assert task["user_id"] == alice.id
    assert task["id"] != 999999
    assert task["priority"] == "high" and task["completed"] is True
    assert task["due_date"] == "2026-12-01T09:00:00+00:00"
    assert task["created_at"] == task["updated_at"]
    assert task["created_at"].endswith("+00:00")
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == f"{base(family, alice)}/{task['id']}"
    assert set(task) == {"id", "user_id", "title", "description", "completed", "is_completed", "priority",
                         "status", "completed_at", "category", "tags", "due_date", "remind_at", "recurrence",
                         "created_at", "updated_at"}


def test_create_defaults(alice):
    task = alice.create_task(title="x")
    assert (task["description"], task["completed"], task["priority"], task["due_date"]) == \
        (None, False, "medium", None)


@pytest.mark.parametrize("body, field", [
    ({}, "title"), ({"title": ""}, "title"), ({"title": "   "}, "title"), ({"title": "x" * 201}, "title"),
    ({"title": 5}, "title"), ({"title": None}, "title"), ({"title": "ok", "description": "d" * 1001}, "description"),
    ({"title": "ok", "priority": "urgent"}, "priority"), ({"title": "ok", "completed": "yes"}, "completed"),
    ({"title": "ok", "due_date": "tomorrow"}, "due_date"),
])
def test_create_rejects_invalid_fields_with_422(alice, body, field):
    response = alice.post("/api/tasks", json=body)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == 422 and problem["type"] and problem["title"] and problem["detail"]
    assert field in [e["field"] for e in problem["errors"]]


def test_title_of_200_chars_and_description_of_1000_are_accepted(alice):
    task = alice.create_task(title="t" * 200, description="d" * 1000)
    assert len(task["title"]) == 200 and len(task["description"]) == 1000


def test_date_only_due_date_is_midnight_utc(alice):
    assert alice.create_task(due_date="2026-12-24")["due_date"] == "2026-12-24T00:00:00+00:00"


def test_due_date_with_offset_is_returned_in_utc(alice):
    assert alice.create_task(due_date="2026-12-24T10:00:00+02:00")["due_date"] == "2026-12-24T08:00:00+00:00"


@pytest.mark.parametrize("family", FAMILIES)
def test_get_returns_task_with_etag(alice, family):
    task = alice.create_task()
    response = alice.get(f"{base(family, alice)}/{task['id']}")
    assert response.status_code == 200
    assert response.get_json() == task
    assert response.headers["ETag"] == '"1"'


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize("family", FAMILIES)
def test_update_changes_only_given_fields_and_bumps_version(alice, family, method):
    task = alice.create_task(title="before", description="keep", priority="low")
    response = alice.request(method, f"{base(family, alice)}/{task['id']}", json={"title": " after "})
    assert response.status_code == 200
    updated = response.get_json()
    assert updated["title"] == "after"
    assert (updated["description"], updated["priority"]) == ("keep", "low")
    assert updated["created_at"] == task["created_at"]
    assert updated["updated_at"] > task["updated_at"]
    assert response.headers["ETag"] == '"2"'


def test_update_can_clear_nullable_fields(alice):
    task = alice.create_task(description="d", due_date="2026-01-01")
    updated = alice.patch(f"/api/tasks/{task['id']}", json={"description": None, "due_date": None}).get_json()
    assert updated["description"] is None and updated["due_date"] is None


def test_update_without_known_fields_is_422(alice):
    task = alice.create_task()
    response = alice.patch(f"/api/tasks/{task['id']}", json={"user_id": "someone", "colour": "red"})
    assert response.status_code == 422
    assert alice.get(f"/api/tasks/{task['id']}").headers["ETag"] == '"1"'


def test_update_validates_like_create(alice):
    task = alice.create_task()
    response = alice.put(f"/api/tasks/{task['id']}", json={"title": "", "priority": "low"})
    assert response.status_code == 422
    assert alice.get(f"/api/tasks/{task['id']}").get_json()["priority"] == "medium"


@pytest.mark.parametrize("family", FAMILIES)
def test_complete_toggles_and_sets(alice, family):
    task = alice.create_task()
    url = f"{base(family, alice)}/{task['id']}/complete"
    assert alice.patch(url).get_json()["completed"] is True
    assert alice.patch(url).get_json()["completed"] is False
    assert alice.patch(url, json={"completed": True}).get_json()["completed"] is True
    response = alice.patch(url, json={"completed": True})
    assert response.get_json()["completed"] is True
    assert response.headers["ETag"] == '"5"'
    assert alice.patch(url, json={"completed": "no"}).status_code == 422


@pytest.mark.parametrize("family", FAMILIES)
def test_delete_answers_message_and_id_then_404(alice, family):
    task = alice.create_task()
    url = f"{base(family, alice)}/{task['id']}"
    response = alice.delete(url)
    assert response.status_code == 200
    body = response.get_json()
    assert body["deleted_id"] == task["id"] and body["message"]
    assert alice.get(url).status_code == 404
    assert alice.delete(url).status_code == 404


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_missing_task_is_404_problem(alice, method):
    response = alice.request(method, "/api/tasks/987654321", json={"title": "x"})
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_if_match_stale_is_412_and_current_passes(alice):
    task = alice.create_task()
    url = f"/api/tasks/{task['id']}"
    assert alice.patch(url, json={"title": "v2"}, headers={"If-Match": '"1"'}).status_code == 200
    stale = alice.patch(url, json={"title": "v3"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.headers["ETag"] == '"2"'
    assert alice.delete(url, headers={"If-Match": '"1"'}).status_code == 412
    assert alice.get(url).get_json()["title"] == "v2"
    assert alice.delete(url, headers={"If-Match": '"2"'}).status_code == 200


def test_trailing_slash_on_collection_is_accepted(alice):
    assert alice.get("/api/tasks/").status_code == 200
    assert alice.post(f"/api/{alice.id}/tasks/", json={"title": "x"}).status_code == 201


def test_ids_are_sequential_across_users(alice, bob):
    first = alice.create_task()["id"]
    second = bob.create_task()["id"]
    third = alice.create_task()["id"]
    assert first < second < third


def test_if_match_that_is_not_a_version_is_412_for_a_task_and_404_for_none(alice):
    task = alice.create_task()
    url = f"/api/tasks/{task['id']}"
    assert alice.patch(url, json={"title": "x"}, headers={"If-Match": '"abc"'}).status_code == 412
    assert alice.delete("/api/tasks/987654321", headers={"If-Match": '"abc"'}).status_code == 404
    assert alice.get(url).get_json()["title"] == task["title"]
