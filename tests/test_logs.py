"""Request logs: one line per request (JSON by default, text with LOG_FORMAT=text) carrying
method, route template, status, duration, request id and user id, and never a token or secret."""
import io
import json
import logging

import pytest

from service import create_app
from service.request_log import configure_logging
from tests.conftest import SECRET, Caller, make_config, make_token


class LogCapture:
    """Builds apps whose logs go to buffers, and captures the root logger too."""

    def __init__(self, database_url):
        self.database_url = database_url
        self.buffers = []
        self.root = logging.StreamHandler(io.StringIO())
        logging.getLogger().addHandler(self.root)

    def __call__(self, log_format="json", level="INFO"):
        """An app logging in `log_format` at `level` into a new buffer: (app, buffer)."""
        application = create_app(make_config(LOG_FORMAT=log_format, LOG_LEVEL=level),
                                 database_url=self.database_url)
        application.config["TESTING"] = True
        buffer = io.StringIO()
        for handler in logging.getLogger("service").handlers:
            handler.setStream(buffer)
        self.buffers.append(buffer)
        return application, buffer

    def everything(self):
        """All text logged so far, by the service or anything else."""
        return "".join(b.getvalue() for b in self.buffers) + self.root.stream.getvalue()

    def close(self):
        logging.getLogger().removeHandler(self.root)
        configure_logging(make_config())  # the service's usual test logging


@pytest.fixture
def logged(database_url):
    """A LogCapture; the service's logging is restored afterwards."""
    capture = LogCapture(database_url)
    yield capture
    capture.close()


def json_lines(buffer):
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_each_request_logs_one_json_line_with_its_fields(logged):
    app, buffer = logged()
    alice = Caller(app.test_client())
    task = alice.create_task(title="logged")
    buffer.truncate(0)
    buffer.seek(0)
    response = alice.get(f"/api/tasks/{task['id']}", headers={"X-Request-ID": "req-12345"})
    assert response.status_code == 200
    [line] = json_lines(buffer)
    assert line["method"] == "GET"
    assert line["route"].startswith("/api/tasks/<") and str(task["id"]) not in line["route"]
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0
    assert line["request_id"] == "req-12345" == response.headers["X-Request-ID"]
    assert line["user_id"] == alice.id


def test_a_generated_request_id_is_logged_and_returned(logged):
    app, buffer = logged()
    response = app.test_client().get("/health")
    [line] = json_lines(buffer)
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert line["route"] == "/health"
    assert line["user_id"] is None


def test_a_rejected_request_logs_its_status_and_no_user(logged):
    app, buffer = logged()
    response = app.test_client().get("/api/tasks", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    [line] = json_lines(buffer)
    assert (line["status"], line["user_id"], line["route"]) == (401, None, "/api/tasks")


def test_an_unknown_route_logs_404(logged):
    app, buffer = logged()
    assert app.test_client().get("/nowhere/at/all").status_code == 404
    [line] = json_lines(buffer)
    assert line["status"] == 404
    assert line["method"] == "GET"


def test_text_format_logs_one_readable_line(logged):
    app, buffer = logged(log_format="text")
    alice = Caller(app.test_client())
    buffer.truncate(0)
    buffer.seek(0)
    response = alice.get("/api/tasks", headers={"X-Request-ID": "text-req-1"})
    assert response.status_code == 200
    [line] = [line for line in buffer.getvalue().splitlines() if line.strip()]
    assert not line.startswith("{")
    assert "GET /api/tasks 200" in line
    assert "id=text-req-1" in line
    assert f"user={alice.id}" in line


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_logs_never_contain_a_token_or_the_secret(logged, log_format):
    app, _buffer = logged(log_format=log_format, level="DEBUG")
    client = app.test_client()
    alice = Caller(client)
    other = Caller(client)
    forged = make_token(alice.id, secret="another-secret-that-is-long-enough-0123456789")
    expired = make_token(alice.id, ttl=-60)
    tokens = [alice.token, forged, expired, other.token]
    task = alice.create_task(title="secret-free", description="password=hunter2")
    alice.get("/api/tasks?search=secret")
    alice.patch(f"/api/tasks/{task['id']}", json={"title": "still secret-free"})
    alice.get(f"/api/{other.id}/tasks")  # 403: another user's path
    other.get(f"/api/tasks/{task['id']}")  # 404: not theirs
    for token in (forged, expired):
        assert client.get("/api/tasks", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    client.get(f"/api/tasks?access_token={alice.token}")
    client.get("/api/tasks", headers={"Authorization": f"Basic {alice.token}"})
    everything = logged.everything()
    assert everything.count("/api/tasks") >= 8  # the requests were logged and captured
    for token in tokens:
        assert token not in everything
        assert token.rsplit(".", 1)[1] not in everything  # not even the signature
    assert SECRET not in everything
    assert "hunter2" not in everything
