"""/api/openapi.json: a valid OpenAPI 3.1 document that describes exactly the registered routes,
and whose schemas agree with what the service really answers."""
import re

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from service.openapi import spec

IGNORED_METHODS = {"HEAD", "OPTIONS"}
HTTP_METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}


def openapi_path(rule):
    """A Flask rule as an OpenAPI path: <int:task_id> -> {task_id}, <path_user_id> -> {user_id}."""
    path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)
    return path.replace("{path_user_id}", "{user_id}")


def registered_operations(app):
    """{(path, method)} of every route the app serves (Flask's own /static excluded)."""
    operations = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in rule.methods - IGNORED_METHODS:
            operations.add((openapi_path(rule.rule), method.lower()))
    return operations


def split_aliases(operations, aliases):
    """(operations outside the aliases, {alias: the operations under it, as their originals})."""
    plain, aliased = set(), {alias: set() for alias in aliases}
    for path, method in operations:
        alias = next((a for a in aliases if path.startswith(f"{a}/")), None)
        if alias is None:
            plain.add((path, method))
        else:
            aliased[alias].add((aliases[alias] + path.removeprefix(alias), method))
    return plain, aliased


def documented_operations(document):
    return {(path, method) for path, item in document["paths"].items()
            for method in item if method in HTTP_METHODS}


def schema_validator(document, name):
    """A validator for components/schemas/`name`, resolving refs within the document."""
    schema = {"$ref": f"#/components/schemas/{name}", **{k: document[k] for k in ("components",)}}
    return Draft202012Validator(schema)


def resolve(document, node):
    while "$ref" in node:
        _, kind, name = node["$ref"].rsplit("/", 2)
        node = document["components"][kind][name]
    return node


@pytest.fixture(scope="module")
def document():
    return spec()


def test_openapi_json_is_public_and_a_valid_openapi_3_1_document(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["X-Request-ID"]
    body = response.get_json()
    assert body["openapi"] == "3.1.0"
    validate(body)


def test_every_registered_route_is_documented_with_the_same_methods_and_no_more(app, document):
    aliases = document["x-path-aliases"]
    assert aliases == {"/api/v1": "/api"}
    registered, aliased = split_aliases(registered_operations(app), aliases)
    documented = documented_operations(document)
    assert registered - documented == set(), "routes missing from the OpenAPI document"
    assert documented - registered == set(), "documented routes the app does not serve"
    # The alias serves exactly the documented operations under its original, no more, no less.
    under_api = {(path, method) for path, method in documented if path.startswith("/api/")}
    assert len(under_api) > 20
    assert aliased["/api/v1"] == under_api


def test_split_aliases_sees_a_route_missing_from_an_alias():
    operations = {("/api/tasks", "get"), ("/api/tasks", "post"), ("/api/v1/tasks", "get"),
                  ("/health", "get")}
    plain, aliased = split_aliases(operations, {"/api/v1": "/api"})
    assert plain == {("/api/tasks", "get"), ("/api/tasks", "post"), ("/health", "get")}
    assert aliased == {"/api/v1": {("/api/tasks", "get")}}


def test_every_path_parameter_is_declared(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            declared = {resolve(document, p)["name"] for p in operation.get("parameters", [])
                        if resolve(document, p)["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), (method, path)


def test_api_routes_need_a_bearer_token_except_the_document_and_its_page(document):
    assert document["security"] == [{"bearerAuth": []}]
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    public = {path for path, item in document["paths"].items()
              if all(op.get("security") == [] for op in item.values())}
    assert public == {"/health", "/readyz", "/api/openapi.json", "/api/docs",
                      "/api/docs/static/{filename}", "/openapi.json", "/docs"}
    for path, item in document["paths"].items():
        for operation in item.values():
            statuses = set(operation["responses"])
            assert "500" in statuses
            assert ("401" in statuses) == (path not in public), path


def test_every_error_answer_is_a_problem_document(document):
    for name, response in document["components"]["responses"].items():
        assert int(name) >= 400
        assert list(response["content"]) == ["application/problem+json"]
        assert response["headers"]["X-Request-ID"]
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "code", "detail"}
    assert problem["properties"]["errors"]["items"]["required"] == ["field", "message"]


def test_list_route_documents_every_query_parameter(document):
    for path in ("/api/tasks", "/api/{user_id}/tasks"):
        names = {resolve(document, p)["name"] for p in document["paths"][path]["get"]["parameters"]}
        assert {"status", "status_filter", "completed", "priority", "search", "q", "sort",
                "sort_by", "order", "limit", "cursor", "offset", "skip"} <= names
    limit = resolve(document, {"$ref": "#/components/parameters/limit"})["schema"]
    assert (limit["minimum"], limit["maximum"]) == (1, 500)


def test_request_bodies_allow_unknown_keys(document):
    for schema in document["components"]["schemas"].values():
        assert schema.get("additionalProperties", True) is not False


def test_task_answers_match_the_task_schema_and_headers(alice, document):
    created = alice.post("/api/tasks", json={"title": "  Document me  ", "due_date": "2026-12-01",
                                             "user_id": "someone-else", "id": 5})
    assert created.status_code == 201
    task_schema = schema_validator(document, "Task")
    task_schema.validate(created.get_json())
    assert re.fullmatch(r'"[0-9]+"', created.headers["ETag"])
    assert created.headers["Location"].endswith(f"/api/tasks/{created.get_json()['id']}")
    listing = alice.get("/api/tasks?limit=1")
    schema_validator(document, "TaskList").validate(listing.get_json())
    deleted = alice.delete(f"/api/tasks/{created.get_json()['id']}")
    schema_validator(document, "DeleteResult").validate(deleted.get_json())


def test_user_answers_match_the_user_schema(alice, document):
    schema_validator(document, "User").validate(alice.get("/api/users/me").get_json())
    schema_validator(document, "UserExport").validate(alice.get("/api/users/me/export").get_json())


def test_errors_match_the_problem_schema(client, alice, document):
    problem = schema_validator(document, "Problem")
    unauthorized = client.get("/api/tasks")
    assert unauthorized.status_code == 401
    problem.validate(unauthorized.get_json())
    invalid = alice.post("/api/tasks", json={"title": ""})
    assert invalid.status_code == 422
    assert invalid.mimetype == "application/problem+json"
    problem.validate(invalid.get_json())


@pytest.mark.parametrize(("title", "accepted"), [
    ("a", True), ("  padded  ", True), ("x" * 200, True), (" " + "x" * 198 + " ", True),
    ("", False), ("   ", False), ("x" * 201, False), ("nul\x00", False), ("\x85", False),
])
def test_title_schema_says_what_the_service_accepts(alice, document, title, accepted):
    schema = schema_validator(document, "TaskCreate")
    assert schema.is_valid({"title": title}) is accepted
    response = alice.post("/api/tasks", json={"title": title})
    assert response.status_code == (201 if accepted else 422)


def test_padded_titles_beyond_max_length_are_accepted_as_documented(alice):
    response = alice.post("/api/tasks", json={"title": " " + "x" * 200 + " "})
    assert response.status_code == 201
    assert response.get_json()["title"] == "x" * 200


@pytest.mark.parametrize(("body", "accepted"), [
    ({"name": "  Ada  "}, True), ({"name": ""}, True), ({"name": None}, True),
    ({"email": None}, True), ({"name": "x" * 256}, False), ({"name": "a\x00"}, False),
    ({"email": "not-an-address"}, False), ({"unknown": 1}, False), ({}, False),
])
def test_user_update_schema_says_what_the_service_accepts(alice, document, body, accepted):
    assert schema_validator(document, "UserUpdate").is_valid(body) is accepted
    response = alice.patch("/api/users/me", json=body)
    assert response.status_code == (200 if accepted else 422), response.get_json()


def test_task_update_needs_one_known_field(document):
    schema = schema_validator(document, "TaskUpdate")
    assert not schema.is_valid({"unknown": 1})
    assert schema.is_valid({"completed": True, "unknown": 1})


@pytest.mark.parametrize("body", [
    '{"title": "\\ud800"}',  # a lone surrogate: JSON can spell it, UTF-8 cannot hold it
    '{"title": "ok", "description": "x \\udfff"}',
    '{"title": "ok", "due_date": "0001-01-01T00:00:00+01:00"}',  # before year 1 in UTC
    '{"title": "ok", "due_date": "9999-12-31T23:59:59-01:00"}',  # after year 9999 in UTC
])
def test_values_a_fuzzer_may_send_are_422_not_500(alice, body):
    response = alice.post("/api/tasks", data=body, content_type="application/json")
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"


def test_any_iso_offset_the_schema_allows_is_stored(alice):
    # ISO-8601 allows offsets up to 23:59; PostgreSQL alone would refuse those beyond 15:59.
    response = alice.post("/api/tasks", json={"title": "far east", "due_date": "2026-12-01T09:00:00+20:30"})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["due_date"] == "2026-11-30T12:30:00+00:00"
