"""/api/v1/...: the whole API again, identical, for frontends written against a versioned backend;
/openapi.json and /docs at the root, where FastAPI serves them."""
import re

import pytest

from service.api import PREFIXES
from tests.conftest import Caller


@pytest.fixture
def database(app):
    return app.extensions["database"]


@pytest.mark.parametrize("family", ["/api/v1", "/api/v1/{user}"])
def test_every_task_route_works_under_v1_and_locations_stay_in_the_family(alice, family):
    base = family.format(user=alice.id)
    created = alice.post(f"{base}/tasks", json={"title": "versioned", "priority": "high"})
    assert created.status_code == 201, created.get_json()
    task = created.get_json()
    assert created.headers["Location"] == f"{base}/tasks/{task['id']}"
    assert created.headers["ETag"] == '"1"'

    fetched = alice.get(created.headers["Location"])
    assert fetched.status_code == 200
    assert fetched.get_json() == task
    assert alice.get(f"/api/tasks/{task['id']}").get_json() == task  # one task, two families

    listed = alice.get(f"{base}/tasks?priority=high")
    assert listed.status_code == 200
    assert [t["id"] for t in listed.get_json()["tasks"]] == [task["id"]]

    updated = alice.patch(f"{base}/tasks/{task['id']}", json={"title": "renamed"},
                          headers={"If-Match": '"1"'})
    assert updated.status_code == 200
    assert updated.get_json()["title"] == "renamed"
    assert alice.put(f"{base}/tasks/{task['id']}", json={"title": "again"},
                     headers={"If-Match": '"1"'}).status_code == 412

    completed = alice.patch(f"{base}/tasks/{task['id']}/complete")
    assert completed.status_code == 200
    assert completed.get_json()["completed"] is True

    deleted = alice.delete(f"{base}/tasks/{task['id']}")
    assert deleted.get_json() == {"message": f"Task {task['id']} deleted.", "deleted_id": task["id"]}
    assert alice.get(f"{base}/tasks/{task['id']}").status_code == 404


def test_v1_answers_exactly_as_api(alice):
    alice.create_task(title="first")
    alice.create_task(title="second", priority="low")
    for path in ("/tasks?sort=title", "/tasks?limit=1", "/users/me", f"/{alice.id}/tasks",
                 f"/users/{alice.id}", "/tasks/999999", "/users/someone-else"):
        plain, versioned = alice.get(f"/api{path}"), alice.get(f"/api/v1{path}")
        assert versioned.status_code == plain.status_code, path
        assert versioned.get_json() == plain.get_json(), path


def test_v1_family_checks_the_token_and_the_path_user(client, alice, bob):
    refused = client.get("/api/v1/tasks")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert refused.get_json()["code"] == "unauthorized"
    forbidden = alice.get(f"/api/v1/{bob.id}/tasks")
    assert forbidden.status_code == 403
    assert forbidden.get_json()["code"] == "forbidden"
    bobs = bob.create_task(title="bob's")
    assert alice.get(f"/api/v1/tasks/{bobs['id']}").status_code == 404
    assert bobs["id"] not in [t["id"] for t in alice.get("/api/v1/tasks").get_json()["tasks"]]


def test_v1_requests_give_their_connection_back(alice, database):
    # The identity hook opened a connection (the view read the database through it); the
    # blueprint's teardown, registered for both families, returned it and dropped the scope.
    for method, path, status in (("GET", "/api/v1/tasks", 200), ("GET", "/api/v1/users/me", 200),
                                 ("GET", f"/api/v1/{alice.id}/tasks", 200),
                                 ("POST", "/api/v1/tasks", 201),
                                 ("GET", "/api/v1/tasks/999999", 404)):
        response = alice.request(method, path, json={"title": "x"} if method == "POST" else None)
        assert response.status_code == status, path
        assert database.is_closed(), path
        assert database.scope_params() is None, path


def test_v1_users_routes(client):
    carol = Caller(client)
    created = carol.post("/api/v1/users", json={"name": "Carol"})
    assert created.status_code == 201
    assert carol.get("/api/v1/users/me").get_json()["name"] == "Carol"
    assert carol.patch("/api/v1/users/me", json={"name": "C."}).get_json()["name"] == "C."
    export = carol.get("/api/v1/users/me/export")
    assert export.status_code == 200
    assert export.headers["Content-Disposition"].startswith("attachment;")
    assert carol.delete("/api/v1/users/me").get_json()["deleted_id"] == carol.id


def test_v1_is_registered_as_a_second_name_of_the_same_blueprint(app):
    assert PREFIXES == {"api": "/api", "api_v1": "/api/v1"}
    assert app.blueprints["api"] is app.blueprints["api_v1"]
    hooks = app.before_request_funcs
    assert hooks["api"] == hooks["api_v1"] != []
    assert app.teardown_request_funcs["api"] == app.teardown_request_funcs["api_v1"] != []


@pytest.mark.parametrize("path", ["/openapi.json", "/api/v1/openapi.json"])
def test_the_document_is_the_same_everywhere(client, path):
    reference = client.get("/api/openapi.json")
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_data() == reference.get_data()
    assert response.get_json()["openapi"] == "3.1.0"


@pytest.mark.parametrize(("page", "document"), [("/docs", "/openapi.json"),
                                                ("/api/docs", "/api/openapi.json"),
                                                ("/api/v1/docs", "/api/v1/openapi.json")])
def test_each_docs_page_loads_its_assets_and_its_familys_document(client, page, document):
    response = client.get(page)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert f'data-spec-url="{document}"' in html
    links = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert document in links  # the page's fallback for browsers without JavaScript
    assets = [link for link in links if link != document]
    assert len(assets) == 5, assets
    for asset in assets:
        assert asset.startswith("/api/docs/static/"), asset
        loaded = client.get(asset)
        assert loaded.status_code == 200, asset
        assert loaded.get_data(), asset


def test_docs_need_no_token_anywhere(client):
    for path in ("/openapi.json", "/docs", "/api/v1/openapi.json", "/api/v1/docs",
                 "/api/v1/docs/static/init.js"):
        assert client.get(path).status_code == 200, path
