"""Every problem document carries a stable `code` (contract section 7), always the one listed for
its case, in the OpenAPI Problem schema's enum and in docs/api.md's table; each case is caused
here for real and its code checked."""
import io
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

import service.store.tasks
from service.errors import CODES, code_for
from service.openapi import spec
from tests.conftest import PROJECT, Caller, create_database, drop_database, make_token, role_url
from tests.servers import free_port, fresh_app

MIB = 1024 * 1024
LISTED = {  # the contract's list: code -> status
    "unauthorized": 401, "invalid_token": 401, "forbidden": 403, "not_found": 404,
    "method_not_allowed": 405, "conflict": 409, "precondition_failed": 412,
    "payload_too_large": 413, "unsupported_media_type": 415, "malformed_json": 400,
    "validation_failed": 422, "unavailable": 503, "internal_error": 500,
}


@pytest.fixture(scope="module")
def problem_schema():
    document = spec()
    return Draft202012Validator({"$ref": "#/components/schemas/Problem",
                                 "components": document["components"]})


@pytest.fixture
def expect(problem_schema):
    """Check a response is a problem of `status` with `code`, valid against the schema."""
    def check(response, status, code):
        assert response.status_code == status, (response.status_code, response.get_data()[:300])
        assert response.mimetype == "application/problem+json"
        body = response.get_json()
        problem_schema.validate(body)
        assert (body["status"], body["code"]) == (status, code), body
        return body
    return check


# The table ------------------------------------------------------------------------------------
def test_each_listed_code_belongs_to_its_status():
    for code, status in LISTED.items():
        assert code_for(status, code) == code, code
    assert {code: status for status, code in CODES.items() if code in LISTED} == {
        code: status for code, status in LISTED.items() if code != "invalid_token"}


def test_a_code_cannot_stand_in_for_another_status():
    assert code_for(404, "invalid_token") == "not_found"
    assert code_for(401, "forbidden") == "unauthorized"
    assert code_for(401) == "unauthorized"


def test_openapi_enumerates_and_describes_every_code():
    code = spec()["components"]["schemas"]["Problem"]["properties"]["code"]
    assert set(code["enum"]) == set(LISTED) | set(CODES.values()) | {"error"}
    assert set(code["x-enumDescriptions"]) == set(code["enum"])
    for name in code["enum"]:
        assert f"`{name}`" in code["description"]
    # Every error status the document answers with has its own code.
    statuses = {int(s) for s in spec()["components"]["responses"]}
    assert {s for s in statuses if s not in CODES} == set()


def test_docs_api_md_has_a_row_for_every_code():
    text = Path(PROJECT, "docs/api.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| (\d{3}|other) \|", text, flags=re.M))
    assert {code: int(status) for code, status in rows.items() if code in LISTED} == LISTED
    assert set(rows) == set(LISTED) | set(CODES.values()) | {"error"}


# Each case, caused ----------------------------------------------------------------------------
def test_unauthorized_without_credentials(client, expect):
    body = expect(client.get("/api/tasks"), 401, "unauthorized")
    assert "Bearer" in body["detail"]


@pytest.mark.parametrize("header", [
    f"Bearer {make_token('someone', ttl=-120)}",  # expired
    f"Bearer {make_token('someone', secret='another-secret-that-is-long-enough-0123456789')}",
    "Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "Bearer ",
])
def test_invalid_token_when_a_credential_is_rejected(client, expect, header):
    response = client.get("/api/v1/tasks", headers={"Authorization": header})
    expect(response, 401, "invalid_token")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_forbidden_for_another_users_path(alice, bob, expect):
    expect(alice.get(f"/api/{bob.id}/tasks"), 403, "forbidden")


@pytest.mark.parametrize("path", ["/api/tasks/999999", "/api/nothing/here", "/nowhere",
                                  "/api/users/someone-else"])
def test_not_found(alice, expect, path):
    expect(alice.get(path), 404, "not_found")


def test_method_not_allowed(alice, expect):
    response = alice.post("/api/users/me")
    expect(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_conflict_on_an_email_in_use(alice, bob, expect):
    bob.get("/api/users/me")
    expect(alice.patch("/api/users/me", json={"email": f"{bob.id}@example.com"}), 409, "conflict")


def test_precondition_failed(alice, expect):
    task = alice.create_task()
    response = alice.patch(f"/api/tasks/{task['id']}", json={"title": "x"}, headers={"If-Match": '"7"'})
    expect(response, 412, "precondition_failed")


def test_payload_too_large_by_content_length(alice, expect):
    # werkzeug's own limit (MAX_CONTENT_LENGTH) refuses the declared length before reading.
    body = b'{"title": "' + b"x" * (2 * MIB) + b'"}'
    expect(alice.post("/api/tasks", data=body, content_type="application/json"), 413,
           "payload_too_large")


def test_payload_too_large_without_content_length(alice, expect):
    body = b'{"title": "' + b"x" * (2 * MIB) + b'"}'
    response = alice.post("/api/tasks", input_stream=io.BytesIO(body), content_type="application/json",
                          environ_overrides={"wsgi.input_terminated": True})  # chunked, as servers pass it
    expect(response, 413, "payload_too_large")


def test_unsupported_media_type(alice, expect):
    expect(alice.post("/api/tasks", data='{"title": "x"}', content_type="text/plain"), 415,
           "unsupported_media_type")


@pytest.mark.parametrize("body", [b'{"title": ', b"\xff\xfe{}", b"[" * 40 + b"]" * 40])
def test_malformed_json(alice, expect, body):
    expect(alice.post("/api/tasks", data=body, content_type="application/json"), 400,
           "malformed_json")


def test_malformed_json_when_a_body_is_required_but_missing(alice, expect):
    task = alice.create_task()
    expect(alice.patch(f"/api/tasks/{task['id']}", content_type="application/json"), 400,
           "malformed_json")


def test_validation_failed(alice, expect):
    body = expect(alice.post("/api/tasks", json={"title": ""}), 422, "validation_failed")
    assert body["errors"][0]["field"] == "title"
    expect(alice.get("/api/tasks?limit=0"), 422, "validation_failed")


def test_range_not_satisfiable_on_a_docs_file(client, expect):
    expect(client.get("/api/docs/static/swagger-ui.css", headers={"Range": "bytes=99999999-"}), 416,
           "range_not_satisfiable")


def test_internal_error_from_an_unexpected_exception(alice, expect, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug, with a secret in its message")

    monkeypatch.setattr(service.store.tasks, "page", broken)
    body = expect(alice.get("/api/tasks"), 500, "internal_error")
    assert "secret" not in body["detail"]
    assert re.search(r"Request id: [0-9a-f]{32}\.", body["detail"])


def test_internal_error_from_an_unexpected_database_error(admin_url, expect):
    # A database without the schema: the queries fail with ProgrammingError, not an outage.
    name = create_database(admin_url, prefix="todo_unmigrated")
    try:
        with fresh_app(role_url(admin_url, name)) as app:
            expect(Caller(app.test_client()).get("/api/tasks"), 500, "internal_error")
    finally:
        drop_database(admin_url, name)


def test_unavailable_when_the_database_is_unreachable(expect):
    dead = f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"  # nothing listens there
    with fresh_app(dead, DATABASE_CONNECT_TIMEOUT="2") as app:
        client = app.test_client()
        response = Caller(client).get("/api/v1/tasks")
        expect(response, 503, "unavailable")
        assert response.headers["Retry-After"]
        expect(client.get("/readyz"), 503, "unavailable")
