"""TypeScript types for frontends (contract section 7): `openapi-typescript`, run on the served
/api/openapi.json as the README shows, gives types that a small typed client
(tests/typescript/client.ts, on openapi-fetch) compiles against with `tsc --strict`; misuses the
types must refuse fail the compile (tests/typescript/misuse.ts); and the compiled client runs
against the service.

The npm packages are pinned in tests/typescript/package-lock.json and installed by scripts/test
(`npm ci`, via scripts/install-test-tools). Without Node or those packages the tests skip with
the reason, except in CI (CI=true), where they fail instead.
"""
import json
import os
import re
import shutil
import subprocess
import threading
import uuid

import pytest
from werkzeug.serving import make_server

from tests.conftest import PROJECT, make_token

pytestmark = pytest.mark.slow

TS = PROJECT / "tests" / "typescript"
TIMEOUT = 180


def tool(name):
    """The path of an npm tool of tests/typescript, or skip (fail in CI) without it."""
    path = TS / "node_modules" / ".bin" / name
    if shutil.which("node") is None or not path.exists():
        reason = (f"{name} is not installed: scripts/test runs `npm ci` in tests/typescript "
                  "where Node.js and npm are available")
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return str(path)


def run(*command, env=None):
    """Run a command in tests/typescript; returns the finished process (output as text)."""
    return subprocess.run(command, cwd=TS, capture_output=True, text=True, timeout=TIMEOUT,
                          env={**os.environ, "NO_COLOR": "1", **(env or {})}, check=False)


@pytest.fixture(scope="module")
def server_url(app):
    """The service over HTTP on a loopback port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def generated(server_url):
    """generated/api.d.ts, made from the served document: `openapi-typescript <url> -o api.d.ts`."""
    target = TS / "generated" / "api.d.ts"
    target.parent.mkdir(exist_ok=True)
    target.unlink(missing_ok=True)
    result = run(tool("openapi-typescript"), f"{server_url}/api/openapi.json", "-o", str(target))
    assert result.returncode == 0, result.stdout + result.stderr
    return target.read_text()


def declaration(types, name):
    """The body of `name: {...}` in the generated components (up to its closing brace)."""
    match = re.search(rf"^        {name}: {{\n(.*?)^        }};", types, flags=re.S | re.M)
    assert match, name
    return match.group(1)


def test_types_are_generated_from_the_served_document(generated):
    assert '"/api/tasks": {' in generated
    assert '"/api/{user_id}/tasks/{task_id}/complete": {' in generated
    # A new task needs its title only; the fields with defaults stay optional.
    create = declaration(generated, "TaskCreate")
    assert re.search(r"^\s+title: string;", create, flags=re.M)
    for optional in ("completed?: boolean;", 'priority?: "low" | "medium" | "high";', "due_date?:"):
        assert optional in create
    # Every answer's fields are there, and problem codes are a closed union.
    task = declaration(generated, "Task")
    for field in ("id: number;", "title: string;", "completed: boolean;", "due_date: string | null;"):
        assert field in task
    code = re.search(r"^\s+code: (.*);$", declaration(generated, "Problem"), flags=re.M).group(1)
    assert {'"unauthorized"', '"invalid_token"', '"not_found"', '"validation_failed"'} <= set(code.split(" | "))


def test_the_typed_client_compiles_with_strict_and_misuse_does_not(generated):
    result = run(tool("tsc"), "-p", "tsconfig.json", "--strict", "--noEmit")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compiled_client_runs_against_the_service(generated, server_url):
    compiled = run(tool("tsc"), "-p", "tsconfig.json", "--strict")
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    token = make_token(f"ts-{uuid.uuid4().hex[:10]}")
    result = run("node", "run.mjs", env={"API_URL": server_url, "TOKEN": token})
    assert result.returncode == 0, result.stdout + result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    task_id = outcome["created"]["id"]
    assert outcome == {
        "created": {"id": task_id, "title": "Typed task", "priority": "high", "completed": False},
        "listed": {"count": 1, "ids": [task_id]},
        "renamed": {"title": "Typed task, renamed", "etag": '"2"'},
        "stale": {"status": 412, "code": "precondition_failed"},
        "tagged": {"tag": "Errands", "names": ["Errands", "home"], "listed": ["Errands", "home"]},
        "completed": [True, False],
        "deleted": task_id,
        "gone": {"status": 404, "code": "not_found"},
    }
