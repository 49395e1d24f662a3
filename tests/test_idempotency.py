"""Idempotent creates (contract section 4, issue 5 item 3): `Idempotency-Key` on
`POST /api/tasks` (both families) and `POST /api/users` replays the first answer for the same key
and user within 24 hours and creates nothing more, also under concurrent duplicates; the same key
with another body is 422; keys are per user, stored in PostgreSQL, and expire."""
import uuid

import pytest

from tests.conftest import Caller
from tests.servers import race

FAMILIES = ["/api/tasks", "/api/{user}/tasks"]


def new_key():
    return f"key-{uuid.uuid4()}"


def task_count(admin_db, user_id):
    with admin_db.cursor() as cur:
        cur.execute("SELECT count(*) FROM tasks WHERE user_id = %s", (user_id,))
        return cur.fetchone()[0]


def stored_key(admin_db, user_id, key):
    with admin_db.cursor() as cur:
        cur.execute("SELECT status, body, location, etag FROM idempotency_keys WHERE user_id = %s AND key = %s",
                    (user_id, key))
        return cur.fetchone()


@pytest.mark.parametrize("family", FAMILIES)
def test_same_key_replays_first_status_body_location_and_etag_and_creates_nothing_more(alice, admin_db, family):
    path, key = family.format(user=alice.id), new_key()
    first = alice.post(path, json={"title": "once"}, headers={"Idempotency-Key": key})
    assert first.status_code == 201
    for _ in range(3):
        again = alice.post(path, json={"title": "once"}, headers={"Idempotency-Key": key})
        assert again.status_code == 201
        assert again.get_json() == first.get_json()
        assert again.headers["Location"] == first.headers["Location"]
        assert again.headers["ETag"] == first.headers["ETag"]
        assert again.mimetype == "application/json"
    assert task_count(admin_db, alice.id) == 1


def test_both_task_families_share_one_key_space(alice, admin_db):
    # The same create sent through either spelling of the route is the same request.
    key = new_key()
    first = alice.post("/api/tasks", json={"title": "either"}, headers={"Idempotency-Key": key})
    again = alice.post(f"/api/{alice.id}/tasks", json={"title": "either"}, headers={"Idempotency-Key": key})
    assert again.status_code == 201 and again.get_json() == first.get_json()
    assert task_count(admin_db, alice.id) == 1


def test_a_task_key_is_not_a_users_key(alice):
    # Different views: the key's first request was a task create, so a profile POST with it
    # is a different request (422), not a replay of a task.
    key = new_key()
    alice.post("/api/tasks", json={"title": "x"}, headers={"Idempotency-Key": key})
    assert alice.post("/api/users", json={"title": "x"}, headers={"Idempotency-Key": key}).status_code == 422


def test_replay_is_the_first_answer_even_after_the_task_changed(alice):
    key = new_key()
    first = alice.post("/api/tasks", json={"title": "v1"}, headers={"Idempotency-Key": key})
    alice.patch(first.headers["Location"], json={"title": "v2"})
    again = alice.post("/api/tasks", json={"title": "v1"}, headers={"Idempotency-Key": key})
    assert again.get_json() == first.get_json()
    assert again.headers["ETag"] == '"1"'


def test_without_a_key_every_post_creates(alice, admin_db):
    for _ in range(3):
        assert alice.post("/api/tasks", json={"title": "same"}).status_code == 201
    assert task_count(admin_db, alice.id) == 3


def test_different_keys_create_separately(alice, admin_db):
    ids = {alice.post("/api/tasks", json={"title": "same"}, headers={"Idempotency-Key": new_key()}).get_json()["id"]
           for _ in range(3)}
    assert len(ids) == 3 and task_count(admin_db, alice.id) == 3


@pytest.mark.parametrize("other_body", [{"title": "two"}, {"title": "one", "priority": "high"}])
def test_same_key_with_a_different_body_is_422(alice, admin_db, other_body):
    key = new_key()
    assert alice.post("/api/tasks", json={"title": "one"}, headers={"Idempotency-Key": key}).status_code == 201
    response = alice.post("/api/tasks", json=other_body, headers={"Idempotency-Key": key})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["errors"][0]["field"] == "Idempotency-Key"
    assert task_count(admin_db, alice.id) == 1


def test_same_key_for_another_user_is_independent(alice, bob, admin_db):
    key = new_key()
    mine = alice.post("/api/tasks", json={"title": "t"}, headers={"Idempotency-Key": key})
    theirs = bob.post("/api/tasks", json={"title": "t"}, headers={"Idempotency-Key": key})
    other = bob.post("/api/tasks", json={"title": "different"}, headers={"Idempotency-Key": new_key()})
    assert (mine.status_code, theirs.status_code, other.status_code) == (201, 201, 201)
    assert theirs.get_json()["user_id"] == bob.id
    assert theirs.get_json()["id"] != mine.get_json()["id"]
    assert task_count(admin_db, alice.id) == 1 and task_count(admin_db, bob.id) == 2
    # and bob's use of the key did not consume alice's: she still gets her replay
    assert alice.post("/api/tasks", json={"title": "t"},
                      headers={"Idempotency-Key": key}).get_json() == mine.get_json()


def test_keys_are_stored_in_postgresql_with_the_first_answer(alice, admin_db):
    key = new_key()
    first = alice.post("/api/tasks", json={"title": "kept"}, headers={"Idempotency-Key": key})
    status, body, location, etag = stored_key(admin_db, alice.id, key)
    assert status == 201 and location == first.headers["Location"] and etag == first.headers["ETag"]
    assert str(first.get_json()["id"]) in body


def test_a_key_survives_a_new_app_instance(config, database_url, alice):
    # Stored in the database, not in process memory: another process (here a second app on the
    # same database) replays it too.
    from service import create_app

    key = new_key()
    first = alice.post("/api/tasks", json={"title": "x"}, headers={"Idempotency-Key": key})
    other = Caller(create_app(config, database_url=database_url).test_client(), alice.id)
    again = other.post("/api/tasks", json={"title": "x"}, headers={"Idempotency-Key": key})
    assert again.get_json() == first.get_json()


def test_an_expired_key_acts_as_new(alice, admin_db):
    key = new_key()
    first = alice.post("/api/tasks", json={"title": "old"}, headers={"Idempotency-Key": key})
    with admin_db.cursor() as cur:
        cur.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' "
                    "WHERE user_id = %s AND key = %s", (alice.id, key))
    fresh = alice.post("/api/tasks", json={"title": "new body is fine too"}, headers={"Idempotency-Key": key})
    assert fresh.status_code == 201
    assert fresh.get_json()["id"] != first.get_json()["id"]
    assert task_count(admin_db, alice.id) == 2
    # and the key now replays the new answer
    again = alice.post("/api/tasks", json={"title": "new body is fine too"}, headers={"Idempotency-Key": key})
    assert again.get_json() == fresh.get_json()


def test_a_key_just_inside_24_hours_still_replays(alice, admin_db):
    key = new_key()
    first = alice.post("/api/tasks", json={"title": "old"}, headers={"Idempotency-Key": key})
    with admin_db.cursor() as cur:
        cur.execute("UPDATE idempotency_keys SET created_at = now() - interval '23 hours 50 minutes' "
                    "WHERE user_id = %s AND key = %s", (alice.id, key))
    again = alice.post("/api/tasks", json={"title": "old"}, headers={"Idempotency-Key": key})
    assert again.get_json() == first.get_json()
    assert task_count(admin_db, alice.id) == 1


def test_a_failed_create_does_not_consume_the_key(alice, admin_db):
    key = new_key()
    assert alice.post("/api/tasks", json={"title": ""}, headers={"Idempotency-Key": key}).status_code == 422
    assert stored_key(admin_db, alice.id, key) is None
    assert alice.post("/api/tasks", json={"title": "ok"}, headers={"Idempotency-Key": key}).status_code == 201


@pytest.mark.parametrize("key", ["", "   ", "k" * 256])
def test_an_unusable_key_is_422(alice, admin_db, key):
    response = alice.post("/api/tasks", json={"title": "x"}, headers={"Idempotency-Key": key})
    assert response.status_code == 422
    assert task_count(admin_db, alice.id) == 0


@pytest.mark.parametrize("family", FAMILIES)
def test_ten_concurrent_duplicates_create_exactly_one_task_and_all_get_the_same_answer(app, client, admin_db, family):
    # A brand-new user, so the duplicates also race to provision the user row.
    caller = Caller(client)
    key = new_key()
    path = family.format(user=caller.id)
    duplicate = ("POST", path, {"json": {"title": "dup"}, "headers": {"Idempotency-Key": key}})
    responses = race(app, caller, [duplicate] * 10)
    assert [r.status_code for r in responses] == [201] * 10, [r.get_json() for r in responses]
    assert len({r.get_data() for r in responses}) == 1
    assert len({(r.headers["Location"], r.headers["ETag"]) for r in responses}) == 1
    assert task_count(admin_db, caller.id) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 9


def test_concurrent_duplicates_with_different_bodies_create_one_and_refuse_the_rest(app, alice, admin_db):
    key = new_key()
    requests = [("POST", "/api/tasks", {"json": {"title": f"body {n}"}, "headers": {"Idempotency-Key": key}})
                for n in range(6)]
    statuses = sorted(r.status_code for r in race(app, alice, requests))
    assert statuses == [201] + [422] * 5
    assert task_count(admin_db, alice.id) == 1


# POST /api/users ---------------------------------------------------------------------------
def test_users_post_replays_its_first_answer(alice):
    # The caller's very first request: 201 (the row did not exist before it).
    key = new_key()
    first = alice.post("/api/users", json={"name": "Alice"}, headers={"Idempotency-Key": key})
    assert first.status_code == 201
    again = alice.post("/api/users", json={"name": "Alice"}, headers={"Idempotency-Key": key})
    assert again.status_code == 201
    assert again.get_json() == first.get_json()
    # without the key the same request is the ordinary "already existed" answer
    assert alice.post("/api/users", json={"name": "Alice"}).status_code == 200


def test_users_post_same_key_different_body_is_422(alice):
    key = new_key()
    assert alice.post("/api/users", json={"name": "A"}, headers={"Idempotency-Key": key}).status_code == 201
    assert alice.post("/api/users", json={"name": "B"}, headers={"Idempotency-Key": key}).status_code == 422
    assert alice.get("/api/users/me").get_json()["name"] == "A"


def test_concurrent_users_posts_with_one_key_agree(app, client, admin_db):
    caller = Caller(client)
    key = new_key()
    responses = race(app, caller, [("POST", "/api/users", {"json": {"name": "N"},
                                                           "headers": {"Idempotency-Key": key}})] * 8)
    # All agree on one answer. (Which status: the duplicate that provisioned the row in the
    # identity hook need not be the one that ran the view, so 200 is possible here.)
    assert len({r.status_code for r in responses}) == 1
    assert len({r.get_data() for r in responses}) == 1
    with admin_db.cursor() as cur:
        cur.execute("SELECT count(*) FROM users WHERE id = %s", (caller.id,))
        assert cur.fetchone()[0] == 1


# Keys and a user row deleted behind this process's back ----------------------------------------------
def delete_user_row(admin_db, user_id):
    # As another gunicorn worker would on DELETE /api/users/me: this process still has the user
    # cached as provisioned.
    with admin_db.cursor() as cur:
        cur.execute("DELETE FROM users WHERE id = %s", (user_id,))


@pytest.mark.parametrize("family", FAMILIES)
def test_a_keyed_create_after_the_user_row_vanished_provisions_again(alice, admin_db, family):
    alice.create_task()
    delete_user_row(admin_db, alice.id)
    key = new_key()
    response = alice.post(family.format(user=alice.id), json={"title": "again"}, headers={"Idempotency-Key": key})
    assert response.status_code == 201, response.get_json()
    assert task_count(admin_db, alice.id) == 1
    assert stored_key(admin_db, alice.id, key)[0] == 201
    again = alice.post(family.format(user=alice.id), json={"title": "again"}, headers={"Idempotency-Key": key})
    assert again.get_json() == response.get_json()


def test_a_keyed_users_post_after_the_user_row_vanished_is_201(alice, admin_db):
    alice.get("/api/users/me")
    delete_user_row(admin_db, alice.id)
    response = alice.post("/api/users", json={"name": "Back"}, headers={"Idempotency-Key": new_key()})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["name"] == "Back"


def test_a_keyed_users_post_whose_token_email_is_taken_keeps_the_old_email_not_500(client):
    email = f"taken-{uuid.uuid4().hex[:10]}@example.com"
    owner = Caller(client, email=email)
    assert owner.get("/api/users/me").get_json()["email"] == email
    other = Caller(client)
    own_email = other.get("/api/users/me").get_json()["email"]
    same_user_new_token = Caller(client, other.id, email=email)
    key = new_key()
    response = same_user_new_token.post("/api/users", json={"name": "B"}, headers={"Idempotency-Key": key})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["email"] == own_email and response.get_json()["name"] == "B"
    again = same_user_new_token.post("/api/users", json={"name": "B"}, headers={"Idempotency-Key": key})
    assert again.get_json() == response.get_json()
