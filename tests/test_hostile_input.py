"""Hostile input (issue 5 item 7, contract section 4 errors): oversized, deeply nested, malformed,
mistyped or NUL-carrying bodies, out-of-range ids and odd routes are each answered with the
right 4xx problem document quickly, never a 500, never a hang; every response has a request id;
a 500 tells the request id and nothing of the code.

The body-size limits are also checked against the service under gunicorn over a raw socket, so a
declared-but-unsent body shows that the limit is enforced before the body is read."""
import socket
import time

import pytest

from tests.conftest import make_token
from tests.servers import Gunicorn, fresh_app, http

FAMILIES = ["/api/tasks", "/api/{user}/tasks"]
MIB = 1024 * 1024
OUT_OF_RANGE_IDS = [2**63, 2**64, 10**30]


def is_problem(response, status):
    assert response.status_code == status, (response.status_code, response.get_data()[:300])
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    return body


# Body size -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(database_url):
    """The service under gunicorn on the test database (one worker)."""
    gunicorn = Gunicorn(database_url, workers=1, MAX_CONTENT_LENGTH=str(MIB))
    yield gunicorn
    gunicorn.stop()


def raw_exchange(port, head, body=b"", timeout=5.0):
    """Send `head` (and `body`) over a raw socket and read the answer until the server closes
    or `timeout`; returns (status line, everything read, seconds taken)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head + body)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            pass
    return data.split(b"\r\n", 1)[0], data, time.monotonic() - started


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/api/tasks", "/api/users"])
def test_declared_body_over_the_limit_is_413_without_reading_it(server, path):
    # 10 GB announced, 20 bytes sent: an answer within the timeout proves the body was not awaited.
    token = make_token("hostile-size")
    head = (f"POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {10 * 1024**3}\r\n\r\n").encode()
    status, data, elapsed = raw_exchange(server.port, head, b'{"title": "xxxxxxx"')
    assert status.startswith(b"HTTP/1.1 413"), data[:500]
    assert b"application/problem+json" in data
    assert elapsed < 3


@pytest.mark.slow
def test_declared_body_over_the_limit_is_413_even_before_authentication(server):
    head = (f"POST /api/tasks HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {5 * MIB}\r\n\r\n").encode()
    status, data, elapsed = raw_exchange(server.port, head, b"{")
    # Either answer is safe (neither reads the body); what matters is no wait and no 5xx.
    assert status.split(b" ")[1] in (b"401", b"413"), data[:500]
    assert elapsed < 3


@pytest.mark.slow
def test_chunked_body_over_the_limit_is_413(server):
    token = make_token("hostile-chunked")
    head = (f"POST /api/tasks HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    chunk = b"x" * 65536
    body = b"%x\r\n" % (len(chunk) * 40 + 13) + b'{"title": "' + chunk * 40 + b'"}\r\n0\r\n\r\n'  # 2.5 MiB
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        try:
            sock.sendall(body)
        except OSError:
            pass  # the server may stop reading (and close) once it has seen too much
        data = sock.recv(65536)
    assert data.startswith(b"HTTP/1.1 413"), data[:500]
    assert time.monotonic() - started < 5


@pytest.mark.slow
def test_chunked_body_under_the_limit_is_accepted(server):
    token = make_token("hostile-chunked-ok")
    payload = b'{"title": "sent in chunks"}'
    head = (f"POST /api/tasks HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
    body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (payload[:9], payload[9:])) + b"0\r\n\r\n"
    status, data, _elapsed = raw_exchange(server.port, head, body)
    assert status.startswith(b"HTTP/1.1 201"), data[:500]


@pytest.mark.slow
def test_body_just_under_the_limit_is_read_and_validated(server):
    token = make_token("hostile-under")
    body = b'{"title": "ok", "description": "' + b"d" * (MIB - 100) + b'"}'
    response = http(server.port, "POST", "/api/tasks", body,
                    {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert response.status == 422  # read whole, then refused by the field limit (1000 chars)
    assert response.json()["errors"][0]["field"] == "description"


def test_huge_json_is_413(alice):
    body = b'{"title": "x", "description": "' + b"a" * (2 * MIB) + b'"}'
    is_problem(alice.post("/api/tasks", data=body, content_type="application/json"), 413)


# Structure -------------------------------------------------------------------------------------
@pytest.mark.parametrize("opener, closer", [("[", "]"), ('{"a":', "}")])
def test_deeply_nested_json_is_400_fast(alice, opener, closer):
    depth = 100_000
    body = opener * depth + "1" + closer * depth
    started = time.monotonic()
    response = alice.post("/api/tasks", data=body, content_type="application/json")
    assert time.monotonic() - started < 1.0
    is_problem(response, 400)


def test_nesting_inside_strings_does_not_count(alice):
    task = alice.create_task(title="[[[[" * 40, description="{" * 900)
    assert task["title"] == "[[[[" * 40


@pytest.mark.parametrize("depth, status", [(32, 201), (33, 400)])
def test_nesting_limit_is_exact(alice, depth, status):
    # The body object is level 1; the ignored key holds the rest.
    inner = "[" * (depth - 1) + "1" + "]" * (depth - 1)
    body = '{"title": "ok", "extra": ' + inner + "}"
    assert alice.post("/api/tasks", data=body, content_type="application/json").status_code == status


def test_many_shallow_brackets_are_not_deep(alice):
    body = {"title": "ok", "extra": [[1]] * 40, "more": [{"a": {}}] * 20}  # 121 openers, depth 4
    assert alice.post("/api/tasks", json=body).status_code == 201


def test_moderate_nesting_in_an_ignored_key_is_fine(alice):
    body = {"title": "ok", "extra": [[[[[[1]]]]]]}
    assert alice.post("/api/tasks", json=body).status_code == 201


@pytest.mark.parametrize("body", [
    b"\xff\xfe{}", b'{"title": "caf\xe9"}', b'{"title": "\xed\xa0\x80"}', b'{"title": "ok\xc3"}'])
def test_invalid_utf8_is_400(alice, body):
    is_problem(alice.post("/api/tasks", data=body, content_type="application/json"), 400)


@pytest.mark.parametrize("body", [b"{", b'{"title": }', b"{'title': 'x'}", b'{"title": "x",}', b"nul",
                                  b'{"title": "x"} trailing', b'{"title": "a\x00b"}', b'{"id": 1' + b"0" * 5000 + b"}"])
def test_malformed_json_is_400(alice, body):
    is_problem(alice.post("/api/tasks", data=body, content_type="application/json"), 400)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/xml"])
def test_non_json_content_type_is_415(alice, content_type):
    response = alice.post("/api/tasks", data=b'{"title": "x"}', content_type=content_type)
    is_problem(response, 415)


def test_json_with_charset_and_vendor_suffix_is_accepted(alice):
    assert alice.post("/api/tasks", data=b'{"title": "x"}',
                      content_type="application/json; charset=utf-8").status_code == 201
    assert alice.post("/api/tasks", data=b'{"title": "x"}',
                      content_type="application/merge-patch+json").status_code == 201


@pytest.mark.parametrize("body", [b"[]", b'[{"title": "x"}]', b'"title"', b"42", b"null", b"true"])
def test_json_that_is_not_an_object_is_422(alice, body):
    problem = is_problem(alice.post("/api/tasks", data=body, content_type="application/json"), 422)
    assert problem["errors"][0]["field"] == "body"


@pytest.mark.parametrize("body, field", [
    ({"title": ["x"]}, "title"), ({"title": {"a": 1}}, "title"), ({"title": 1.5}, "title"),
    ({"title": True}, "title"), ({"title": "x", "description": 7}, "description"),
    ({"title": "x", "completed": 1}, "completed"), ({"title": "x", "completed": "true"}, "completed"),
    ({"title": "x", "priority": 2}, "priority"), ({"title": "x", "priority": None}, "priority"),
    ({"title": "x", "priority": ["high"]}, "priority"), ({"title": "x", "due_date": 1700000000}, "due_date"),
    ({"title": "x", "due_date": "10000-01-01"}, "due_date"), ({"title": "x", "due_date": "0000-01-01"}, "due_date"),
    ({"title": "x", "due_date": "2026-02-30"}, "due_date"), ({"title": "x", "due_date": ""}, "due_date"),
    ({"title": "x", "due_date": "9999-12-31T23:59:59-05:00"}, "due_date"),
    ({"title": "x", "due_date": {"$gt": ""}}, "due_date"),
])
def test_wrong_types_are_422_naming_the_field(alice, admin_db, body, field):
    problem = is_problem(alice.post("/api/tasks", json=body), 422)
    assert field in [e["field"] for e in problem["errors"]]
    assert all(e["message"] for e in problem["errors"])


def test_every_wrong_field_is_reported_at_once(alice):
    problem = is_problem(alice.post("/api/tasks", json={"title": 1, "priority": "x", "completed": "y"}), 422)
    assert {e["field"] for e in problem["errors"]} == {"title", "priority", "completed"}


@pytest.mark.parametrize("body", [{"title": 1}, {"completed": "yes"}, {"due_date": "soon"}, [1]])
def test_wrong_types_on_update_are_422(alice, body):
    task = alice.create_task()
    is_problem(alice.patch(f"/api/tasks/{task['id']}", json=body), 422)
    assert alice.get(f"/api/tasks/{task['id']}").headers["ETag"] == '"1"'


# NUL bytes (PostgreSQL cannot store \x00) -------------------------------------------------------------
@pytest.mark.parametrize("body, field", [
    ({"title": "a\u0000b"}, "title"), ({"title": "\u0000"}, "title"),
    ({"title": "ok", "description": "x\u0000"}, "description"),
    ({"title": "ok", "priority": "high\u0000"}, "priority"),
    ({"title": "ok", "due_date": "2026-01-01\u0000"}, "due_date"),
])
def test_nul_in_a_task_field_is_422_not_500(alice, admin_db, body, field):
    problem = is_problem(alice.post("/api/tasks", json=body), 422)
    assert field in [e["field"] for e in problem["errors"]]
    task = alice.create_task()
    is_problem(alice.put(f"/api/tasks/{task['id']}", json=body), 422)


@pytest.mark.parametrize("param", ["search", "q", "priority", "status", "sort", "order", "cursor", "limit"])
def test_nul_in_a_query_parameter_is_422_not_500(alice, param):
    alice.create_task()
    response = alice.get(f"/api/tasks?{param}=a%00b")
    is_problem(response, 422)


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/api/users", {"name": "a\u0000b"}),
    ("PATCH", "/api/users/me", {"name": "a\u0000b"}),
    ("PATCH", "/api/users/me", {"email": "a\u0000@example.com"}),
])
def test_nul_in_a_user_field_is_422_not_500(alice, method, path, body):
    problem = is_problem(alice.request(method, path, json=body), 422)
    assert problem["errors"][0]["field"] in body


@pytest.mark.parametrize(("path", "status"), [
    ("/api/users/a%00b", 404),  # not the caller's id
    ("/api/tasks/1%00", 404),  # not an integer: no such route
    ("/api/{me}%00/tasks", 403),  # not the token's user
])
def test_nul_in_a_path_is_a_4xx_not_500(alice, path, status):
    assert alice.get(path.format(me=alice.id)).status_code == status


def test_nul_in_an_idempotency_key_is_refused(alice, admin_db):
    # Not a valid header value for most clients; the service refuses it rather than storing it.
    response = alice.post("/api/tasks", json={"title": "x"}, headers={"Idempotency-Key": "a\x00b"})
    problem = is_problem(response, 422)
    assert problem["errors"][0]["field"] == "Idempotency-Key"
    assert alice.get("/api/tasks").get_json()["count"] == 0


def test_nul_in_token_claims_is_not_stored(client):
    token = make_token("nul-claims-user", email="a\u0000@example.com", name="N\u0000")
    response = client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.get_json()["email"] is None and response.get_json()["name"] is None


def test_nul_in_sub_is_401(client):
    token = make_token("evil\u0000user")
    assert client.get("/api/tasks", headers={"Authorization": f"Bearer {token}"}).status_code == 401


# Ids out of BIGINT range -------------------------------------------------------------------------
@pytest.mark.parametrize("task_id", OUT_OF_RANGE_IDS)
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method, suffix", [("GET", ""), ("PUT", ""), ("PATCH", ""), ("DELETE", ""),
                                            ("PATCH", "/complete")])
def test_task_id_out_of_bigint_range_is_404(alice, family, method, suffix, task_id):
    path = f"{family.format(user=alice.id)}/{task_id}{suffix}"
    is_problem(alice.request(method, path, json={"title": "x"}), 404)
    is_problem(alice.request(method, path, json={"title": "x"}, headers={"If-Match": '"1"'}), 404)


@pytest.mark.parametrize("task_id", ["-1", "0", "00000000000000000000001", "1e3", "0x10", "%2e%2e", "１"])
def test_odd_task_ids_are_404(alice, task_id):
    response = alice.get(f"/api/tasks/{task_id}")
    assert response.status_code == 404


def test_leading_zeros_address_the_same_task(alice):
    """Flask's int converter reads `0007` as 7: the same task, not an error."""
    task = alice.create_task()
    response = alice.get(f"/api/tasks/000{task['id']}")
    assert response.status_code == 200
    assert response.get_json() == task


def test_bigint_max_is_an_ordinary_missing_id(alice):
    is_problem(alice.get(f"/api/tasks/{2**63 - 1}"), 404)


# Routes, methods, headers ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/nope", "/api/nope", "/api/tasks/1/nope", "/api/users/me/nope",
                                  "/api/" + "a" * 5000, "/%ff", "/api/tasks/../../etc/passwd"])
def test_unknown_route_is_404_problem(alice, path):
    is_problem(alice.get(path), 404)


@pytest.mark.parametrize("method, path", [
    ("DELETE", "/api/tasks"), ("POST", "/api/tasks/1"), ("PUT", "/api/users/me"), ("POST", "/health"),
    ("PATCH", "/api/tasks"), ("GET", "/api/tasks/1/complete")])
def test_wrong_method_is_405_problem_with_allow(alice, method, path):
    response = alice.request(method, path, json={"title": "x"})
    is_problem(response, 405)
    assert response.headers.get("Allow")


@pytest.mark.parametrize("given", ["abc-123", "A.b:c_d-e", "x" * 128])
def test_a_sane_request_id_is_echoed(client, given):
    assert client.get("/health", headers={"X-Request-ID": given}).headers["X-Request-ID"] == given


@pytest.mark.parametrize("given", ["", "x" * 129, "a b", "<script>", "a\tb", "é", "id;drop"])
def test_an_insane_request_id_is_replaced(client, given):
    got = client.get("/health", headers={"X-Request-ID": given}).headers["X-Request-ID"]
    assert got and got != given and len(got) <= 128 and got.isalnum()


@pytest.mark.parametrize("method, path, kwargs", [
    ("GET", "/health", {}), ("GET", "/nope", {}), ("DELETE", "/api/tasks", {}), ("GET", "/api/tasks", {}),
    ("POST", "/api/tasks", {"data": b"{", "content_type": "application/json"}),
    ("POST", "/api/tasks", {"data": b"x", "content_type": "text/plain"}),
    ("GET", f"/api/tasks/{2**64}", {}), ("GET", "/api/tasks?limit=0", {}),
])
def test_every_response_has_a_request_id(alice, client, method, path, kwargs):
    for response in (alice.request(method, path, **kwargs), client.open(path, method=method, **kwargs)):
        assert response.headers.get("X-Request-ID")


def test_an_unexpected_error_is_500_with_request_id_and_no_stack_trace(database_url):
    with fresh_app(database_url) as app:
        def explode():
            secret_detail = "internal-detail-that-must-not-leak"
            raise RuntimeError(secret_detail)

        def explode_in_database():
            from service.db import database
            database.obj.bind_admin()
            with database.obj.connection_context():
                database.obj.execute_sql("SELECT * FROM table_that_does_not_exist_xyz")

        app.add_url_rule("/test-only/explode", view_func=explode)
        app.add_url_rule("/test-only/explode-db", view_func=explode_in_database)
        client = app.test_client()
        for path in ("/test-only/explode", "/test-only/explode-db"):
            response = client.get(path, headers={"X-Request-ID": "req-500-check"})
            problem = is_problem(response, 500)
            text = response.get_data(as_text=True)
            assert "req-500-check" in problem["detail"]
            assert response.headers["X-Request-ID"] == "req-500-check"
            for leak in ("Traceback", "internal-detail", "table_that_does_not_exist", ".py", "line "):
                assert leak not in text, leak
        # the app keeps serving after the failures
        assert client.get("/health").status_code == 200


# Odd but harmless ------------------------------------------------------------------------------
def test_unicode_and_control_characters_other_than_nul_round_trip(alice):
    title = "Ünïcødé ✓ 漢字 🎉 \u200b tab\there"
    task = alice.create_task(title=title, description="line1\nline2\r\n\u2028")
    assert task["title"] == title.strip()
    assert alice.get(f"/api/tasks/{task['id']}").get_json()["description"] == "line1\nline2\r\n\u2028"


def test_sql_looking_input_is_just_text(alice):
    title = "'; DROP TABLE tasks; --"
    task = alice.create_task(title=title)
    listed = alice.get("/api/tasks", query_string={"search": "'; DROP", "sort": "title"}).get_json()
    assert [t["id"] for t in listed["tasks"]] == [task["id"]]
    assert alice.get("/api/tasks", query_string={"search": "%_\\"}).status_code == 200


def test_duplicate_keys_take_the_last_value_consistently(alice):
    response = alice.post("/api/tasks", data=b'{"title": "first", "title": "second"}', content_type="application/json")
    assert response.status_code == 201 and response.get_json()["title"] == "second"


def test_huge_numbers_and_deep_values_in_ignored_keys_do_not_crash(alice):
    body = b'{"title": "x", "id": 1' + b"0" * 5000 + b', "user_id": 1e999}'
    response = alice.post("/api/tasks", data=body, content_type="application/json")
    # Python refuses to convert an integer of 5001 digits (int_max_str_digits): 400, not a crash
    assert is_problem(response, 400)["detail"] == "Malformed JSON: a number has too many digits."
