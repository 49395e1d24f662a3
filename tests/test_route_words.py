"""A user id that is also a route word (`v1`, `users`, `tags`, `docs`, ...): the route wins. Such a
user works through /api/tasks (the user from the token); /api/<word>/tasks is never read as the
Phase II path of user <word>, so nothing answers 500 and nobody sees another user's tasks."""
import contextlib
import re

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound

from service.api import PREFIXES, ROUTE_WORDS, USER_PREFIX
from tests.conftest import Caller

WORDS = sorted(ROUTE_WORDS)
# GET /api/<word>/tasks with the token of the user whose id is <word>: the route's own answer.
LIST_ANSWER = {"v1": 200,  # the v1 family's list: the caller's own tasks
               "users": 404}  # the users route: /api/users/{id} with id "tasks", not the caller
# POST /api/<word>/tasks: the v1 family creates; /api/users/{id} has GET only (405); no other
# route has such a path (404).
CREATE_ANSWER = {"v1": 201, "users": 405}


def expected(answers, prefix, word):
    """The status of <prefix>/<word>/tasks: as listed for /api, the same under /api/v1, but
    /api/v1/v1/tasks is no route (404)."""
    if prefix == PREFIXES["api_v1"] and word == "v1":
        return 404
    return answers.get(word, 404)


def first_words(app):
    """The first path segment after each API prefix, of every route the app serves there."""
    words = set()
    for rule in app.url_map.iter_rules():
        path = rule.rule
        for prefix in sorted(PREFIXES.values(), key=len, reverse=True):
            if path.startswith(f"{prefix}/"):
                first = path.removeprefix(f"{prefix}/").split("/", 1)[0]
                if not first.startswith("<"):
                    words.add(first)
                break
    return words


def test_every_first_word_of_an_api_route_is_a_route_word(app):
    served = first_words(app)
    assert {"tasks", "users", "docs", "openapi.json"} <= served
    assert served - ROUTE_WORDS == set()


def test_every_phase2_route_reads_its_user_with_the_converter_that_refuses_route_words(app):
    phase2 = [rule.rule for rule in app.url_map.iter_rules() if "path_user_id" in rule.arguments]
    assert len(phase2) >= 12  # the task routes, in both families
    assert [rule for rule in phase2 if f"{USER_PREFIX}/" not in rule] == []


def test_no_phase2_route_takes_a_route_word_for_a_user(app):
    adapter = app.url_map.bind("localhost")
    matched = []
    for prefix in PREFIXES.values():
        for word in WORDS:
            for method in ("GET", "POST"):
                with contextlib.suppress(NotFound, MethodNotAllowed):  # no route: as wanted
                    matched.append(adapter.match(f"{prefix}/{word}/tasks", method=method))
    assert ("api_v1.tasks.index", {}) in matched  # the check sees real matches
    assert [args for _endpoint, args in matched if "path_user_id" in args] == []


@pytest.fixture
def word_users(client):
    """A user for each route word (the id is the word), each with one task; deleted after."""
    users = {}
    for word in WORDS:
        user = Caller(client, word, email=f"{re.sub(r'[^a-z0-9]', '-', word)}@words.example")
        user.create_task(title=f"{word}'s task")
        users[word] = user
    yield users
    for user in users.values():
        assert user.delete("/api/users/me").status_code == 200


@pytest.mark.parametrize("word", WORDS)
def test_a_user_named_like_a_route_works_through_the_token_family(word_users, word):
    user = word_users[word]
    for prefix in PREFIXES.values():
        listed = user.get(f"{prefix}/tasks")
        assert listed.status_code == 200
        assert [t["title"] for t in listed.get_json()["tasks"]] == [f"{word}'s task"]
        assert {t["user_id"] for t in listed.get_json()["tasks"]} == {word}
    assert user.get("/api/users/me").get_json()["id"] == word


@pytest.mark.parametrize("word", WORDS)
@pytest.mark.parametrize("prefix", sorted(PREFIXES.values()))
def test_the_route_wins_over_a_user_named_like_it(word_users, prefix, word):
    user = word_users[word]
    listed = user.get(f"{prefix}/{word}/tasks")
    assert listed.status_code == expected(LIST_ANSWER, prefix, word), listed.get_json()
    if listed.status_code == 200:
        assert [t["user_id"] for t in listed.get_json()["tasks"]] == [word]
    else:
        assert listed.mimetype == "application/problem+json"
    created = user.post(f"{prefix}/{word}/tasks", json={"title": "where does this go?"})
    assert created.status_code == expected(CREATE_ANSWER, prefix, word), created.get_json()


@pytest.mark.parametrize("word", WORDS)
def test_another_user_never_sees_the_tasks_of_a_user_named_like_a_route(word_users, alice, word):
    own = alice.create_task(title="alice's")
    for prefix in PREFIXES.values():
        for path in (f"{prefix}/{word}/tasks", f"{prefix}/{word}/tasks/{own['id']}"):
            response = alice.get(path)
            if prefix == "/api" and word == "v1":  # /api/v1/tasks...: alice's own, by her token
                assert response.status_code == 200, path
                body = response.get_json()
                assert {t["user_id"] for t in body.get("tasks", [body])} == {alice.id}, path
            else:  # no route, or the users route for an id that is not alice's
                assert response.status_code == 404, (path, response.get_json())
                assert response.get_json()["code"] == "not_found"


def test_alice_reaches_her_own_tasks_through_v1_not_the_user_named_v1(word_users, alice):
    alice.create_task(title="alice's")
    listed = alice.get("/api/v1/tasks")
    assert listed.status_code == 200
    assert [t["title"] for t in listed.get_json()["tasks"]] == ["alice's"]


def test_only_the_exact_word_is_reserved(client):
    for user_id in ("V1", "Users", "users2", "v2", "my-tasks", "me"):
        user = Caller(client, user_id, email=f"{user_id.lower()}@exact.example")
        task = user.create_task(title=f"{user_id}'s")
        listed = user.get(f"/api/{user_id}/tasks")
        assert listed.status_code == 200, user_id
        assert [t["id"] for t in listed.get_json()["tasks"]] == [task["id"]]
        assert user.get(f"/api/v1/{user_id}/tasks/{task['id']}").get_json() == task
        assert user.delete("/api/users/me").status_code == 200
