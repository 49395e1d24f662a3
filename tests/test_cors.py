"""CORS with headers (the test client): a preflight from an allowed origin to any path gets the
grant with a 2xx status, even where no route is; every answer to an allowed origin, whatever
its status, carries the CORS headers; an origin not allowed gets none. The same in a real browser:
tests/test_cors_browser.py."""
import io

import pytest

import service.store.tasks
from tests.conftest import Caller
from tests.servers import free_port, fresh_app

ORIGIN = "http://localhost:3000"  # in CORS_ORIGINS of the test configuration
STRANGER = "https://evil.example"
MIB = 1024 * 1024


def preflight(client, path, origin=ORIGIN, method="PATCH", headers="authorization, content-type"):
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                         "Access-Control-Request-Headers": headers})


def cors_headers(response):
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


def assert_granted(response, origin=ORIGIN):
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    exposed = response.headers["Access-Control-Expose-Headers"]
    for name in ("ETag", "Location", "X-Request-ID", "Retry-After", "WWW-Authenticate"):
        assert name in exposed


@pytest.mark.parametrize("path", [
    "/api/tasks", "/api/tasks/1", "/api/someone/tasks/1/complete", "/api/users/me",
    "/api/v1/tasks", "/api/v1/someone/tasks/3", "/api/v1/users/me/export",
    "/api/no/such/route", "/api/v1/nothing", "/api/tasks/not-a-number", "/api/tasks/1/nope",
    "/api/v1", "/api/", "/nowhere", "/openapi.json", "/health",
])
def test_preflight_to_any_path_is_granted_with_a_2xx(client, round_trips, path):
    with round_trips.counting():
        response = preflight(client, path, headers="authorization, content-type, if-match, x-requested-with")
    assert response.status_code == 200
    assert_granted(response)
    assert set(response.headers["Access-Control-Allow-Methods"].split(", ")) == {
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
    # Every header the page asked for, its own ones too.
    assert response.headers["Access-Control-Allow-Headers"] == \
        "authorization, content-type, if-match, x-requested-with"
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert response.get_data() == b""
    assert round_trips.count == 0  # no token, no database


def test_preflight_from_a_public_page_to_a_private_address_is_allowed(client):
    response = client.options("/api/tasks", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Private-Network": "true"})
    assert response.headers["Access-Control-Allow-Private-Network"] == "true"


@pytest.mark.parametrize("path", ["/api/tasks", "/api/v1/no/such/route", "/api/users/me"])
def test_preflight_from_an_unknown_origin_gets_no_grant(client, path):
    response = preflight(client, path, origin=STRANGER)
    assert cors_headers(response) == {}
    response = client.options(path, headers={"Origin": STRANGER, "Access-Control-Request-Method": "GET",
                                             "Access-Control-Request-Private-Network": "true"})
    assert cors_headers(response) == {}


def test_options_without_preflight_headers_is_routed_as_usual(client):
    # Not a preflight (no Access-Control-Request-Method): Flask's own answer, Allow included.
    assert client.options("/api/no/such/route").status_code == 404
    allowed = client.options("/api/users/me").headers["Allow"]
    assert {"GET", "PATCH", "DELETE"} <= set(allowed.split(", "))


# Every status carries the headers ---------------------------------------------------------------
def every_status(alice, bob):
    """(status, response) for each kind of answer, as an allowed browser page would get it."""
    headers = {"Origin": ORIGIN}
    task = alice.create_task()
    bob.get("/api/users/me")
    big = b'{"title": "' + b"x" * (2 * MIB) + b'"}'
    client = alice.client
    return [
        (200, alice.get("/api/tasks", headers=headers)),
        (200, alice.get("/api/v1/tasks", headers=headers)),
        (201, alice.post("/api/v1/tasks", json={"title": "cors"}, headers=headers)),
        (400, alice.post("/api/tasks", data="{", content_type="application/json", headers=headers)),
        (401, client.get("/api/tasks", headers=headers)),
        (401, client.get("/api/v1/tasks", headers={**headers, "Authorization": "Bearer nope"})),
        (403, alice.get(f"/api/{bob.id}/tasks", headers=headers)),
        (404, alice.get("/api/tasks/999999", headers=headers)),
        (404, client.get("/api/v1/no/such/route", headers=headers)),
        (405, alice.post("/api/users/me", headers=headers)),
        (409, alice.patch("/api/users/me", json={"email": f"{bob.id}@example.com"}, headers=headers)),
        (412, alice.patch(f"/api/tasks/{task['id']}", json={"title": "x"},
                          headers={**headers, "If-Match": '"9"'})),
        (413, alice.post("/api/tasks", data=big, content_type="application/json", headers=headers)),
        (413, alice.post("/api/tasks", input_stream=io.BytesIO(big), content_type="application/json",
                         headers=headers, environ_overrides={"wsgi.input_terminated": True})),
        (415, alice.post("/api/tasks", data="title", content_type="text/plain", headers=headers)),
        (422, alice.post("/api/tasks", json={"title": ""}, headers=headers)),
        (200, client.get("/openapi.json", headers=headers)),
        (200, client.get("/health", headers=headers)),
    ]


def test_every_answer_to_an_allowed_origin_carries_the_cors_headers(alice, bob):
    answers = every_status(alice, bob)
    assert [status for status, response in answers] == [response.status_code for _s, response in answers]
    for status, response in answers:
        assert_granted(response)
        if status >= 400:
            assert response.get_json()["code"], status


def test_every_answer_varies_on_origin_for_caches(client, alice):
    # With or without a grant: a cache must not hand the answer without one to a browser page.
    for response in (client.get("/api/openapi.json"), client.get("/api/docs/static/init.js"),
                     client.get("/api/tasks", headers={"Origin": ORIGIN}),
                     alice.get("/api/tasks", headers={"Origin": STRANGER}),
                     preflight(client, "/api/tasks")):
        assert "Origin" in response.vary, response.headers


def test_no_answer_to_an_unknown_origin_carries_cors_headers(client):
    stranger = Caller(client)
    for response in (stranger.get("/api/tasks", headers={"Origin": STRANGER}),
                     client.get("/api/tasks", headers={"Origin": STRANGER}),
                     client.get("/api/v1/nothing", headers={"Origin": STRANGER})):
        assert cors_headers(response) == {}, response.status_code


def test_a_500_from_a_view_carries_the_cors_headers(alice, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(service.store.tasks, "page", broken)
    response = alice.get("/api/tasks", headers={"Origin": ORIGIN})
    assert response.status_code == 500
    assert_granted(response)


def test_a_500_from_the_identity_hook_carries_the_cors_headers(app, client, monkeypatch):
    def broken(token):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(app.extensions["token_verifier"], "verify", broken)
    response = client.get("/api/v1/tasks", headers={"Origin": ORIGIN, "Authorization": "Bearer x"})
    assert response.status_code == 500
    assert_granted(response)


def test_a_503_carries_the_cors_headers():
    with fresh_app(f"postgresql://nobody@127.0.0.1:{free_port()}/nothing", DATABASE_CONNECT_TIMEOUT="2") as app:
        client = app.test_client()
        for response in (Caller(client).get("/api/tasks", headers={"Origin": ORIGIN}),
                         client.get("/readyz", headers={"Origin": ORIGIN})):
            assert response.status_code == 503
            assert response.headers["Retry-After"]
            assert_granted(response)
