"""HTTP-level promises: CORS, problem documents for routing errors, request ids."""
import inspect
import re

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


def test_cors_headers_on_error_responses_and_only_for_browsers(client):
    # A browser needs the CORS headers on a 401 too, or it hides the error from the page.
    refused = client.get("/api/tasks", headers={"Origin": ORIGIN})
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert refused.headers["Access-Control-Allow-Credentials"] == "true"
    # Without an Origin header the caller is not a browser making a cross-origin request.
    plain = client.get("/api/tasks")
    assert plain.status_code == 401
    assert not [name for name in plain.headers.keys() if name.lower().startswith("access-control-")]


def test_no_view_or_hook_is_a_coroutine(app):
    # ServiceFlask.ensure_sync hands every view and hook to Flask as it is: an async one would
    # return an unawaited coroutine instead of running.
    hooks = [*app.view_functions.values()]
    for registry in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs,
                     app.url_value_preprocessors):
        hooks += [hook for functions in registry.values() for hook in functions]
    hooks += [handler for by_code in app.error_handler_spec.values() for by_class in by_code.values()
              for handler in by_class.values()]
    assert len(hooks) > 20
    for hook in hooks:
        assert not inspect.iscoroutinefunction(inspect.unwrap(hook)), hook


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
    generated = {client.get("/health", headers={"X-Request-ID": "bad id with spaces"}).headers["X-Request-ID"]
                 for _ in range(50)}
    assert len(generated) == 50
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in generated)
