"""Isolation between users (contract sections 2 and 4): another user's task is indistinguishable
from a missing one (404, never 403 or 412), a foreign `{user_id}` in the path is 403 before any
database work, ids in bodies are ignored, and lists, counts and exports hold the caller's rows only.
"""
import pytest

FAMILIES = ["/api/tasks", "/api/{user}/tasks"]
ITEM_ROUTES = [("GET", ""), ("PUT", ""), ("PATCH", ""), ("PATCH", "/complete"), ("DELETE", "")]
BODIES = {"PUT": {"title": "hijacked"}, "PATCH": {"title": "hijacked", "completed": True}}


def body_for(method, suffix):
    return None if suffix or method in ("GET", "DELETE") else BODIES[method]


def snapshot(owner, task_id):
    """The task as its owner sees it, with its ETag."""
    response = owner.get(f"/api/tasks/{task_id}")
    assert response.status_code == 200
    return response.get_json(), response.headers["ETag"]


def missing_id(owner):
    """An id that certainly belongs to nobody (created then deleted)."""
    task = owner.create_task()
    assert owner.delete(f"/api/tasks/{task['id']}").status_code == 200
    return task["id"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("method", "suffix"), ITEM_ROUTES)
def test_other_users_task_is_404(alice, bob, family, method, suffix):
    task = alice.create_task(title="Alice's secret", description="private")
    before = snapshot(alice, task["id"])
    path = f"{family.format(user=bob.id)}/{task['id']}{suffix}"
    response = bob.request(method, path, json=body_for(method, suffix))
    assert response.status_code == 404, response.get_json()
    assert "Alice's secret" not in response.get_data(as_text=True)
    assert "ETag" not in response.headers
    assert snapshot(alice, task["id"]) == before


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("method", "suffix"), ITEM_ROUTES)
def test_other_users_task_looks_exactly_like_a_missing_one(alice, bob, family, method, suffix):
    foreign = alice.create_task()["id"]
    gone = missing_id(bob)
    base = family.format(user=bob.id)
    answers = [bob.request(method, f"{base}/{task_id}{suffix}", json=body_for(method, suffix))
               for task_id in (foreign, gone)]
    assert [a.status_code for a in answers] == [404, 404]
    details = [a.get_json()["detail"].replace(str(task_id), "N") for a, task_id in zip(answers, (foreign, gone),
                                                                                         strict=True)]
    assert details[0] == details[1]
    assert set(answers[0].get_json()) == set(answers[1].get_json())


@pytest.mark.parametrize(("method", "suffix"), [r for r in ITEM_ROUTES if r[0] != "GET"])
def test_if_match_on_other_users_task_is_404_not_412(alice, bob, method, suffix):
    """A 412 would confirm the task exists (and leak its version)."""
    task = alice.create_task()
    before = snapshot(alice, task["id"])
    for tag in ('"1"', '"999"', "*"):
        response = bob.request(method, f"/api/tasks/{task['id']}{suffix}", json=body_for(method, suffix),
                               headers={"If-Match": tag})
        assert response.status_code == 404, (tag, response.get_json())
    assert snapshot(alice, task["id"]) == before


PATH_ROUTES = [("GET", ""), ("POST", ""), ("GET", "/{id}"), ("PUT", "/{id}"), ("PATCH", "/{id}"),
               ("PATCH", "/{id}/complete"), ("DELETE", "/{id}")]


@pytest.mark.parametrize(("method", "suffix"), PATH_ROUTES)
def test_foreign_user_in_path_is_403_without_sql(alice, bob, round_trips, method, suffix):
    task = alice.create_task()
    before = snapshot(alice, task["id"])
    path = f"/api/{alice.id}/tasks" + suffix.format(id=task["id"])
    body = {"title": "planted"} if method in ("POST", "PUT", "PATCH") and not suffix.endswith("complete") else None
    with round_trips.counting():
        response = bob.request(method, path, json=body)
    assert response.status_code == 403, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert round_trips.count == 0, round_trips.statements
    assert snapshot(alice, task["id"]) == before
    assert alice.get("/api/tasks").get_json()["count"] == 1


@pytest.mark.parametrize(("path_user", "status"), [
    ("{a}", 403), ("{b_upper}", 403), ("{b}%20", 403), ("nobody-at-all", 403), ("{b}%00", 403),
    ("{a}%2F..%2F{b}", 404)])  # an encoded slash is a path separator: no such route
def test_any_path_user_but_ones_own_is_refused(alice, bob, path_user, status):
    user = path_user.format(a=alice.id, b_upper=bob.id.upper(), b=bob.id)
    response = bob.get(f"/api/{user}/tasks")
    assert response.status_code == status, response.get_json()


def test_own_path_user_is_allowed(bob):
    bob.create_task(title="mine")
    assert bob.get(f"/api/{bob.id}/tasks").status_code == 200


@pytest.mark.parametrize("family", FAMILIES)
def test_user_id_and_id_in_create_body_are_ignored(alice, bob, admin_db, family):
    victim = alice.create_task()
    response = bob.post(family.format(user=bob.id), json={
        "title": "planted", "user_id": alice.id, "id": victim["id"], "version": 99,
        "created_at": "2000-01-01T00:00:00Z"})
    assert response.status_code == 201
    created = response.get_json()
    assert created["user_id"] == bob.id
    assert created["id"] != victim["id"]
    assert created["created_at"] != "2000-01-01T00:00:00Z"
    assert response.headers["ETag"] == '"1"'
    with admin_db.cursor() as cur:
        cur.execute("SELECT user_id FROM tasks WHERE id = %s", (created["id"],))
        assert cur.fetchone()[0] == bob.id
    assert [t["id"] for t in alice.get("/api/tasks").get_json()["tasks"]] == [victim["id"]]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_user_id_and_id_in_update_body_are_ignored(alice, bob, admin_db, family, method):
    victim = alice.create_task(title="victim")
    before = snapshot(alice, victim["id"])
    own = bob.create_task(title="own")
    response = bob.request(method, f"{family.format(user=bob.id)}/{own['id']}",
                           json={"title": "renamed", "user_id": alice.id, "id": victim["id"]})
    assert response.status_code == 200, response.get_json()
    updated = response.get_json()
    assert (updated["id"], updated["user_id"], updated["title"]) == (own["id"], bob.id, "renamed")
    with admin_db.cursor() as cur:
        cur.execute("SELECT id, user_id, title FROM tasks WHERE id IN (%s, %s) ORDER BY id",
                    (victim["id"], own["id"]))
        assert cur.fetchall() == [(victim["id"], alice.id, "victim"), (own["id"], bob.id, "renamed")]
    assert snapshot(alice, victim["id"]) == before


def test_user_id_in_query_string_is_ignored(alice, bob):
    alice.create_task(title="alice only")
    for query in (f"user_id={alice.id}", f"user={alice.id}", f"sub={alice.id}"):
        listing = bob.get(f"/api/tasks?{query}").get_json()
        assert listing["tasks"] == [] and listing["count"] == 0


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("query", ["", "status=pending", "status=completed", "completed=false", "priority=high",
                                   "search=shared", "q=SHARED", "sort=title&order=asc", "sort=priority",
                                   "sort=due_date", "sort=updated", "limit=1", "offset=1", "skip=2"])
def test_lists_never_contain_another_users_task(alice, bob, family, query):
    mine = {bob.create_task(title=f"shared bob {i}", priority="high", due_date="2030-01-01T00:00:00Z")["id"]
            for i in range(3)}
    for i in range(4):
        alice.create_task(title=f"shared alice {i}", priority="high", description="shared",
                          due_date="2029-01-01T00:00:00Z", completed=bool(i % 2))
    response = bob.get(f"{family.format(user=bob.id)}?{query}")
    assert response.status_code == 200
    listing = response.get_json()
    assert {t["user_id"] for t in listing["tasks"]} <= {bob.id}
    assert {t["id"] for t in listing["tasks"]} <= mine
    assert listing["count"] <= 3


def test_cursor_walk_stays_within_the_callers_tasks(alice, bob):
    mine = {bob.create_task(title=f"b{i}")["id"] for i in range(5)}
    for i in range(5):
        alice.create_task(title=f"a{i}")
    seen, cursor = [], None
    for _ in range(10):
        response = bob.get("/api/tasks?limit=2" + (f"&cursor={cursor}" if cursor else "")).get_json()
        seen += [t["id"] for t in response["tasks"]]
        cursor = response["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(mine)


def test_cursor_from_another_user_reveals_nothing(alice, bob):
    """A cursor carries only a sort key and an id: in Bob's hands it is a position in Bob's own
    list (his older tasks), never a way into Alice's."""
    older = [bob.create_task(title=f"b{i}")["id"] for i in range(2)]
    for i in range(3):
        alice.create_task(title=f"a{i}")
    cursor = alice.get("/api/tasks?limit=1").get_json()["next_cursor"]
    assert cursor
    response = bob.get(f"/api/tasks?limit=5&cursor={cursor}")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [t["id"] for t in body["tasks"]] == older[::-1]
    assert body["count"] == 2


def test_other_users_profile_is_404(alice, bob):
    alice.get("/api/users/me")
    response = bob.get(f"/api/users/{alice.id}")
    assert response.status_code == 404
    assert f"{alice.id}@example.com" not in response.get_data(as_text=True)
    assert bob.get(f"/api/users/{bob.id}").get_json()["id"] == bob.id


def test_other_users_profile_looks_like_a_missing_one(alice, bob):
    alice.get("/api/users/me")
    known = bob.get(f"/api/users/{alice.id}")
    unknown = bob.get("/api/users/nobody-ever-signed-in")
    assert known.status_code == unknown.status_code == 404
    assert known.get_json()["detail"] == unknown.get_json()["detail"]


def test_export_holds_only_the_callers_tasks(alice, bob):
    alice.create_task(title="alice's")
    own = bob.create_task(title="bob's")
    response = bob.get("/api/users/me/export")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "alice's" not in text and alice.id not in text
    assert str(own["title"]) in text


def test_idempotency_keys_are_per_user(alice, bob):
    """Bob reusing Alice's key must create his own task, never replay hers."""
    key = "shared-key-123"
    first = alice.post("/api/tasks", json={"title": "same"}, headers={"Idempotency-Key": key})
    assert first.status_code == 201
    second = bob.post("/api/tasks", json={"title": "same"}, headers={"Idempotency-Key": key})
    assert second.status_code == 201
    assert second.get_json()["user_id"] == bob.id
    assert second.get_json()["id"] != first.get_json()["id"]
    assert alice.get("/api/tasks").get_json()["count"] == 1


def test_deleting_own_account_leaves_others_untouched(alice, bob):
    kept = alice.create_task(title="stays")
    bob.create_task(title="goes")
    assert bob.delete("/api/users/me").status_code == 200
    assert snapshot(alice, kept["id"])[0]["title"] == "stays"
    assert alice.get("/api/tasks").get_json()["count"] == 1
