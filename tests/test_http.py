"""HTTP-level promises: CORS, problem documents for routing errors, request ids."""
ORIGIN = "http://localhost:3000"


def test_preflight_needs_no_token_and_allows_credentials(client):
    response = client.options("/api/tasks", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]


def test_cors_headers_on_actual_response_for_allowed_origin_only(alice):
    ok = alice.get("/api/tasks", headers={"Origin": ORIGIN})
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "ETag" in ok.headers["Access-Control-Expose-Headers"]
    other = alice.get("/api/tasks", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_unknown_route_is_404_problem(client):
    response = client.get("/api/nothing/here/at/all")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 404


def test_wrong_method_is_405_problem_with_allow(alice):
    response = alice.request("POST", "/api/users/me")
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert "GET" in response.headers["Allow"]


def test_request_id_is_echoed_or_generated(client):
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    generated = client.get("/health", headers={"X-Request-ID": "bad id with spaces"}).headers["X-Request-ID"]
    assert generated and generated != "bad id with spaces"
