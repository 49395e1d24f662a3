"""User routes: the caller's own profile only."""
import json
import uuid

from conftest import Caller


def test_first_request_provisions_user_from_claims(client):
    email = f"Ada-{uuid.uuid4().hex[:8]}@Example.com"
    caller = Caller(client, email=email, name="Ada")
    body = caller.get("/api/users/me").get_json()
    assert body["id"] == caller.id
    assert (body["email"], body["name"]) == (email, "Ada")
    assert set(body) == {"id", "email", "name", "timezone", "created_at", "updated_at"}
    assert body["created_at"].endswith("+00:00")


def test_post_users_is_201_on_very_first_request_then_200(client):
    caller = Caller(client, name="New")
    first = caller.post("/api/users")
    assert first.status_code == 201
    assert first.get_json()["id"] == caller.id
    again = caller.post("/api/users", json={"name": "Renamed"})
    assert again.status_code == 200
    assert again.get_json()["name"] == "Renamed"


def test_post_users_is_201_after_the_row_was_deleted(alice):
    alice.get("/api/users/me")
    assert alice.delete("/api/users/me").status_code == 200
    assert alice.post("/api/users").status_code == 201


def test_token_email_taken_by_another_account_does_not_block_sign_in(client):
    shared = f"shared-{uuid.uuid4().hex[:8]}@example.com"
    first = Caller(client, email=shared)
    first.get("/api/users/me")
    second = Caller(client, email=shared.upper())
    response = second.get("/api/users/me")
    assert response.status_code == 200
    assert response.get_json()["email"] is None


def test_patch_me_updates_name_and_email(alice):
    email = f"alice-{uuid.uuid4().hex[:8]}@example.com"
    response = alice.patch("/api/users/me", json={"name": " Alice ", "email": email})
    assert response.status_code == 200
    body = response.get_json()
    assert (body["name"], body["email"]) == ("Alice", email)
    assert body["updated_at"] > body["created_at"]


def test_patch_me_email_clash_is_409_case_insensitive(alice, bob):
    taken = f"taken-{uuid.uuid4().hex[:8]}@example.com"
    bob.patch("/api/users/me", json={"email": taken})
    response = alice.patch("/api/users/me", json={"email": taken.upper()})
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"


def test_patch_me_invalid_email_or_nothing_is_422(alice):
    assert alice.patch("/api/users/me", json={"email": "not-an-email"}).status_code == 422
    assert alice.patch("/api/users/me", json={"name": "n" * 256}).status_code == 422
    assert alice.patch("/api/users/me", json={"id": "other"}).status_code == 422


def test_delete_me_cascades_to_tasks(alice, admin_db):
    for _ in range(3):
        alice.create_task()
    response = alice.delete("/api/users/me")
    assert response.status_code == 200
    assert response.get_json()["deleted_id"] == alice.id
    with admin_db.cursor() as cur:
        cur.execute("SELECT count(*) FROM tasks WHERE user_id = %s", (alice.id,))
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT count(*) FROM users WHERE id = %s", (alice.id,))
        assert cur.fetchone()[0] == 0


def test_requests_after_delete_start_afresh(alice):
    alice.create_task()
    alice.delete("/api/users/me")
    assert alice.get("/api/tasks").get_json()["count"] == 0
    assert alice.create_task()["user_id"] == alice.id
    assert alice.get("/api/users/me").status_code == 200


def test_export_is_a_download_of_user_and_all_tasks(alice, bob):
    mine = [alice.create_task(title=f"t{i}")["id"] for i in range(3)]
    bob.create_task()
    response = alice.get("/api/users/me/export")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    body = json.loads(response.data)
    assert body["user"]["id"] == alice.id
    assert [t["id"] for t in body["tasks"]] == mine


def test_get_user_by_id_only_self(alice, bob):
    bob.get("/api/users/me")
    assert alice.get(f"/api/users/{alice.id}").get_json()["id"] == alice.id
    assert alice.get(f"/api/users/{bob.id}").status_code == 404
    assert alice.get("/api/users/nobody-at-all").status_code == 404
