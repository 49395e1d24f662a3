"""Fuzzing (issue 5 item 6).

1. schemathesis against whatever /api/openapi.json the service publishes: for every operation,
   cases generated from the document (valid ones and, fewer, deliberately invalid ones) are sent
   with a valid token; no answer may be a 5xx, and every answer must match the document (status
   code, content type, headers, body schema). Bounded: FUZZ_EXAMPLES cases per operation and
   mode (default 20 valid, 8 invalid: a few hundred in all), no deadline per case.
2. A hypothesis state machine: several users create, update, toggle, delete, get and list tasks
   with random ids (their own, others', missing ones, out of range); a Python model of who owns
   what says what each answer must be, and the database itself is compared with the model, so
   no user can observe or change another's task.
"""
import os
import string
import time
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import Caller, create_database, drop_database, make_config, make_token, migrate, role_url
from tests.servers import bound_to, fresh_app

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
NEGATIVE_EXAMPLES = max(1, EXAMPLES * 2 // 5)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# Never fuzzed: deleting the caller would only make every later case a fresh user (still checked
# by the state machine and the user tests); the docs' static files are not API.
SKIPPED = {("DELETE", "/api/users/me")}


def _settings(examples):
    return settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def fuzz_app(admin_url):
    """The service on a database of its own: the fuzzer's random emails and names never meet
    the other tests' users (emails are unique)."""
    name = create_database(admin_url, prefix="todo_fuzz")
    try:
        url = role_url(admin_url, name)
        _router, db = migrate(url, make_config())
        db.close_all()
        with fresh_app(url) as app:
            pass  # built now; each test binds it (bound_to) only while it runs
        yield app
    finally:
        drop_database(admin_url, name)


@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    return schemathesis.openapi.from_wsgi("/api/openapi.json", fuzz_app)


def _operations(schema):
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED or "/static/" in operation.path:
            continue
        yield operation


def test_openapi_document_has_the_api(api_schema):
    paths = {(op.method.upper(), op.path) for op in _operations(api_schema)}
    assert ("POST", "/api/tasks") in paths and ("GET", "/api/tasks") in paths


@pytest.mark.parametrize("mode, examples", [(GenerationMode.POSITIVE, EXAMPLES),
                                            (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)])
def test_schemathesis_no_5xx_and_every_answer_matches_the_document(fuzz_app, api_schema, mode, examples):
    with bound_to(fuzz_app):
        _fuzz(fuzz_app, api_schema, mode, examples)


def _fuzz(app, api_schema, mode, examples):
    user = f"fuzz-{uuid.uuid4().hex[:10]}"
    headers = {"Authorization": f"Bearer {make_token(user, email=f'{user}@example.com', ttl=3600)}"}
    owner = Caller(app.test_client(), user)
    seeded = [owner.create_task(title=f"seed {n}", priority="high") for n in range(3)]
    failures, sent = [], 0

    def fuzz(operation):
        path_parameters = {}
        params = {p.name for p in operation.path_parameters}
        if "user_id" in params:
            path_parameters["user_id"] = user  # otherwise nearly every case stops at the 403
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters or None)
        label = f"{operation.method.upper()} {operation.path}"
        reach_rows = "task_id" in params and mode is GenerationMode.POSITIVE

        @_settings(examples)
        @given(case=strategy)
        def run(case):
            nonlocal sent
            if reach_rows and sent % 3 == 0:
                case.path_parameters["task_id"] = seeded[sent % len(seeded)]["id"]  # reach real rows too
            sent += 1
            try:
                case.call_and_validate(headers=headers, checks=CHECKS, app=app)
            except (AssertionError, FailureGroup) as failure:  # schemathesis's failures
                failures.append(f"{label}: {str(failure)[:1500]}")

        try:
            run()
        except Unsatisfiable:
            pass  # nothing invalid can be made for this operation (no parameters, no body)

    for operation in _operations(api_schema):
        started = time.monotonic()
        fuzz(operation)
        print(f"{operation.method.upper()} {operation.path}: {time.monotonic() - started:.1f}s")

    print(f"\nschemathesis {mode}: {sent} cases")
    assert sent >= examples * 3  # the document has operations and they were exercised
    assert not failures, f"{len(failures)} failing cases:\n" + "\n\n".join(failures[:8])


# The isolation state machine ---------------------------------------------------------------------
TEXT = st.text(alphabet=string.ascii_letters + string.digits + " -_.:äß漢🎉", min_size=1, max_size=40).filter(
    lambda s: s.strip())
PRIORITIES = st.sampled_from(["low", "medium", "high"])
FIELDS = st.fixed_dictionaries({}, optional={"title": TEXT, "description": st.none() | TEXT,
                                             "priority": PRIORITIES, "completed": st.booleans()}).filter(bool)
FAMILY = st.sampled_from(["/api/tasks", "/api/{user}/tasks"])
OUT_OF_REACH_IDS = st.sampled_from([0, 987654321987, 2**63 - 1, 2**63, 10**25])


def test_random_operations_by_several_users_never_cross_owners(app, admin_db):
    class Isolation(RuleBasedStateMachine):
        """Three users act at random; the model says who owns which task and what it holds."""

        tasks = Bundle("tasks")

        def __init__(self):
            super().__init__()
            run = uuid.uuid4().hex[:8]
            self.users = [Caller(app.test_client(), f"prop-{run}-{n}") for n in range(3)]
            self.model = {}  # id -> {"owner": user id, "title": ..., ..., "version": n}

        def _url(self, family, user, task_id, suffix=""):
            return f"{family.format(user=user.id)}/{task_id}{suffix}"

        def _expect_owner_view(self, response, user, task_id):
            """The answer `user` gets about `task_id`: theirs -> 200 and the model; else 404."""
            expected = self.model.get(task_id)
            if expected is None or expected["owner"] != user.id:
                assert response.status_code == 404, (response.status_code, response.get_json())
                assert "ETag" not in response.headers
                body = response.get_data(as_text=True)
                if expected is not None:  # nothing of the other user's task leaks into the 404
                    assert expected["owner"] not in body
                    assert len(expected["title"]) < 8 or expected["title"] not in body
                return False
            assert response.status_code == 200, (response.status_code, response.get_json())
            return True

        def _check_task(self, task, task_id):
            expected = self.model[task_id]
            assert task["id"] == task_id and task["user_id"] == expected["owner"]
            for field in ("title", "description", "priority", "completed"):
                assert task[field] == expected[field], (field, task, expected)

        @initialize()
        def start(self):
            for user in self.users:
                assert user.get("/api/tasks").status_code == 200

        @rule(target=tasks, who=st.integers(0, 2), title=TEXT, priority=PRIORITIES, completed=st.booleans(),
              family=FAMILY, spoof=st.booleans())
        def create(self, who, title, priority, completed, family, spoof):
            user = self.users[who]
            body = {"title": title, "priority": priority, "completed": completed}
            if spoof:  # a body naming another owner (or id) is ignored
                body.update(user_id=self.users[(who + 1) % 3].id, id=1)
            response = user.post(family.format(user=user.id), json=body)
            assert response.status_code == 201, response.get_json()
            task = response.get_json()
            assert task["id"] not in self.model
            self.model[task["id"]] = {"owner": user.id, "title": title.strip(), "description": None,
                                      "priority": priority, "completed": completed, "version": 1}
            self._check_task(task, task["id"])
            return task["id"]

        @rule(who=st.integers(0, 2), task_id=tasks | OUT_OF_REACH_IDS, fields=FIELDS, family=FAMILY,
              method=st.sampled_from(["PUT", "PATCH"]))
        def update(self, who, task_id, fields, family, method):
            user = self.users[who]
            response = user.request(method, self._url(family, user, task_id), json=fields)
            if self._expect_owner_view(response, user, task_id):
                expected = self.model[task_id]
                expected.update({k: (v.strip() if k == "title" else v) for k, v in fields.items()})
                expected["version"] += 1
                self._check_task(response.get_json(), task_id)
                assert response.headers["ETag"] == f'"{expected["version"]}"'

        @rule(who=st.integers(0, 2), task_id=tasks | OUT_OF_REACH_IDS, family=FAMILY,
              value=st.none() | st.booleans())
        def toggle(self, who, task_id, family, value):
            user = self.users[who]
            body = None if value is None else {"completed": value}
            response = user.patch(self._url(family, user, task_id, "/complete"), json=body)
            if self._expect_owner_view(response, user, task_id):
                expected = self.model[task_id]
                expected["completed"] = (not expected["completed"]) if value is None else value
                expected["version"] += 1
                self._check_task(response.get_json(), task_id)

        @rule(who=st.integers(0, 2), task_id=tasks | OUT_OF_REACH_IDS, family=FAMILY,
              stale=st.booleans())
        def delete(self, who, task_id, family, stale):
            user = self.users[who]
            expected = self.model.get(task_id)
            headers = {}
            if stale and expected is not None:
                headers["If-Match"] = f'"{expected["version"] + 1}"'
            response = user.delete(self._url(family, user, task_id), headers=headers)
            if expected is not None and expected["owner"] == user.id and stale:
                assert response.status_code == 412
                return
            if self._expect_owner_view(response, user, task_id):
                assert response.get_json()["deleted_id"] == task_id
                del self.model[task_id]

        @rule(who=st.integers(0, 2), task_id=tasks | OUT_OF_REACH_IDS, family=FAMILY)
        def get(self, who, task_id, family):
            user = self.users[who]
            response = user.get(self._url(family, user, task_id))
            if self._expect_owner_view(response, user, task_id):
                self._check_task(response.get_json(), task_id)
                assert response.headers["ETag"] == f'"{self.model[task_id]["version"]}"'

        @rule(who=st.integers(0, 2), family=FAMILY, status=st.sampled_from(["all", "pending", "completed"]),
              search=st.none() | st.sampled_from(["a", "e", "1", "漢", " "]))
        def list(self, who, family, status, search):
            user = self.users[who]
            query = {"status": status, "limit": 500}
            if search is not None:
                query["search"] = search
            response = user.get(family.format(user=user.id), query_string=query)
            assert response.status_code == 200
            body = response.get_json()
            expected = {task_id for task_id, task in self.model.items() if task["owner"] == user.id
                        and (status == "all" or task["completed"] == (status == "completed"))
                        and (search is None or search.lower() in task["title"].lower()
                             or search.lower() in (task["description"] or "").lower())}
            assert {task["id"] for task in body["tasks"]} == expected
            assert body["count"] == len(expected)
            for task in body["tasks"]:
                self._check_task(task, task["id"])

        @precondition(lambda self: self.model)
        @rule(who=st.integers(0, 2))
        def export(self, who):
            user = self.users[who]
            exported = user.get("/api/users/me/export").get_json()
            mine = {task_id for task_id, task in self.model.items() if task["owner"] == user.id}
            assert {task["id"] for task in exported["tasks"]} == mine

        @invariant()
        def database_matches_the_model(self):
            with admin_db.cursor() as cur:  # the truth, read past row-level security
                cur.execute("SELECT id, user_id, title, description, priority, completed, version FROM tasks "
                            "WHERE user_id = ANY(%s)", ([u.id for u in self.users],))
                rows = {row[0]: row[1:] for row in cur.fetchall()}
            assert rows == {task_id: (t["owner"], t["title"], t["description"], t["priority"], t["completed"],
                                      t["version"]) for task_id, t in self.model.items()}

    Isolation.TestCase.settings = settings(max_examples=int(os.environ.get("FUZZ_MACHINES", "40")),
                                           stateful_step_count=30, deadline=None, database=None,
                                           suppress_health_check=list(HealthCheck))
    Isolation.TestCase().runTest()
