"""CORS in a real browser (headless Chromium, tests/browser.py): a page served from another
loopback port fetches the service (under gunicorn) cross-origin with credentials and a bearer
token, and reports what it could read. From an allowed origin every answer is readable: its
status, its problem `code` and its exposed headers, errors included (401, 403, 404, 405, 412,
413, 415, 422, a 500 from a database without the schema and a 503 from an unreachable one),
and preflights to routes that do not exist pass. From an origin not allowed nothing is readable.
"""
import html
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.browser import find_chromium, headless
from tests.conftest import create_database, drop_database, make_token, role_url
from tests.servers import Gunicorn, free_port

pytestmark = pytest.mark.slow

MIB = 1024 * 1024

# The page's script: each call in CALLS (placeholders filled in per page), one after the other;
# what it could read goes into <pre id="out"> as JSON.
SCRIPT = """
const calls = JSON.parse(document.getElementById("calls").textContent);
async function call(c) {
  const init = {method: c.method, credentials: "include", headers: c.headers || {}};
  if (c.body === "BIG") init.body = JSON.stringify({title: "x".repeat(2 * 1024 * 1024)});
  else if (c.body !== undefined) init.body = c.body;
  try {
    const response = await fetch(c.url, init);
    const text = await response.text();
    let code = null;
    try { code = JSON.parse(text).code || null; } catch (e) {}
    const headers = {};
    for (const name of ["x-request-id", "location", "etag", "retry-after", "www-authenticate", "allow"]) {
      headers[name] = response.headers.get(name);
    }
    return {name: c.name, status: response.status, code, headers};
  } catch (error) {
    return {name: c.name, error: String(error)};
  }
}
(async () => {
  const results = [];
  for (const c of calls) results.push(await call(c));
  document.getElementById("out").textContent = JSON.stringify(results);
})();
"""
PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>cors</title></head><body>
<script type="application/json" id="calls">{calls}</script><pre id="out">pending</pre>
<script>{script}</script></body></html>"""


class PageServer:
    """Serves one HTML page at / from its own loopback port (a second origin)."""

    def __init__(self):
        self.page = b""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(owner.page)))
                self.end_headers()
                self.wfile.write(owner.page)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def chromium():
    return find_chromium()


@pytest.fixture(scope="module")
def pages():
    """Two page origins: `allowed` is in the services' CORS_ORIGINS, `stranger` is not."""
    allowed, stranger = PageServer(), PageServer()
    yield allowed, stranger
    allowed.stop()
    stranger.stop()


@pytest.fixture(scope="module")
def services(chromium, pages, database_url, admin_url):
    """The service under gunicorn three times, for the allowed page's origin: on the test
    database, on a database without the schema (its queries fail: 500) and on a port where no
    database listens (503)."""
    allowed, _stranger = pages
    env = {"CORS_ORIGINS": allowed.origin, "MAX_CONTENT_LENGTH": str(MIB)}
    unmigrated = create_database(admin_url, prefix="todo_unmigrated")
    started = {}
    try:
        started["ok"] = Gunicorn(database_url, workers=1, **env)
        started["broken"] = Gunicorn(role_url(admin_url, unmigrated), workers=1, **env)
        started["down"] = Gunicorn(f"postgresql://nobody@127.0.0.1:{free_port()}/nothing", workers=1,
                                   DATABASE_CONNECT_TIMEOUT="2", **env)
        yield {name: f"http://127.0.0.1:{server.port}" for name, server in started.items()}
    finally:
        for server in started.values():
            server.stop()
        drop_database(admin_url, unmigrated)


def browse(chromium, tmp_path, page, calls):
    """Load `page` with `calls` in Chromium; what the page could read, by call name."""
    page.page = PAGE.format(calls=json.dumps(calls).replace("</", "<\\/"), script=SCRIPT).encode()
    dom = headless(chromium, tmp_path / "profile", f"{page.origin}/", "--dump-dom", budget_ms=30000)
    found = re.search(r'<pre id="out">(.*?)</pre>', dom, flags=re.S)
    assert found and found.group(1) != "pending", dom[-2000:]
    return {result["name"]: result for result in json.loads(html.unescape(found.group(1)))}


def test_an_allowed_page_reads_every_status_and_code(chromium, tmp_path, pages, services):
    allowed, _stranger = pages
    ok, user, other = services["ok"], f"browser-{uuid.uuid4().hex[:8]}", f"other-{uuid.uuid4().hex[:8]}"
    auth = {"Authorization": f"Bearer {make_token(user)}"}
    json_auth = {**auth, "Content-Type": "application/json"}
    calls = [
        {"name": "list", "method": "GET", "url": f"{ok}/api/tasks", "headers": auth},
        {"name": "create", "method": "POST", "url": f"{ok}/api/v1/tasks", "headers": json_auth,
         "body": json.dumps({"title": "from the browser"})},
        {"name": "phase2", "method": "GET", "url": f"{ok}/api/v1/{user}/tasks", "headers": auth},
        {"name": "no token", "method": "GET", "url": f"{ok}/api/tasks"},
        {"name": "bad token", "method": "GET", "url": f"{ok}/api/tasks",
         "headers": {"Authorization": "Bearer not-a-token"}},
        {"name": "someone else", "method": "GET", "url": f"{ok}/api/{other}/tasks", "headers": auth},
        {"name": "no route", "method": "DELETE", "url": f"{ok}/api/no/such/route", "headers": auth},
        {"name": "wrong method", "method": "POST", "url": f"{ok}/api/users/me", "headers": json_auth,
         "body": "{}"},
        {"name": "stale", "method": "PATCH", "url": f"{ok}/api/tasks/999999999",
         "headers": {**json_auth, "If-Match": '"1"'}, "body": json.dumps({"title": "x"})},
        {"name": "too large", "method": "POST", "url": f"{ok}/api/tasks", "headers": json_auth,
         "body": "BIG"},
        {"name": "not json", "method": "POST", "url": f"{ok}/api/tasks",
         "headers": {**auth, "Content-Type": "text/plain"}, "body": "title"},
        {"name": "invalid", "method": "POST", "url": f"{ok}/api/tasks", "headers": json_auth,
         "body": json.dumps({"title": ""})},
        {"name": "broken", "method": "GET", "url": f"{services['broken']}/api/tasks", "headers": auth},
        {"name": "down", "method": "GET", "url": f"{services['down']}/api/v1/tasks", "headers": auth},
    ]
    results = browse(chromium, tmp_path, allowed, calls)
    expected = {
        "list": (200, None), "create": (201, None), "phase2": (200, None),
        "no token": (401, "unauthorized"), "bad token": (401, "invalid_token"),
        "someone else": (403, "forbidden"), "no route": (404, "not_found"),
        "wrong method": (405, "method_not_allowed"), "stale": (404, "not_found"),
        "too large": (413, "payload_too_large"), "not json": (415, "unsupported_media_type"),
        "invalid": (422, "validation_failed"), "broken": (500, "internal_error"),
        "down": (503, "unavailable"),
    }
    assert {name: (r.get("status"), r.get("code")) for name, r in results.items()} == expected, results
    for name, result in results.items():
        assert re.fullmatch(r"[0-9a-f]{32}", result["headers"]["x-request-id"]), name  # exposed
    assert re.fullmatch(r"/api/v1/tasks/\d+", results["create"]["headers"]["location"])
    assert results["create"]["headers"]["etag"] == '"1"'
    assert results["no token"]["headers"]["www-authenticate"].startswith("Bearer")
    assert "GET" in results["wrong method"]["headers"]["allow"]
    assert results["down"]["headers"]["retry-after"]


def test_a_page_from_another_origin_reads_nothing(chromium, tmp_path, pages, services):
    _allowed, stranger = pages
    ok = services["ok"]
    auth = {"Authorization": f"Bearer {make_token('stranger-' + uuid.uuid4().hex[:8])}"}
    calls = [
        {"name": "list", "method": "GET", "url": f"{ok}/api/tasks", "headers": auth},
        {"name": "simple", "method": "GET", "url": f"{ok}/api/tasks"},  # no preflight needed
        {"name": "no route", "method": "GET", "url": f"{ok}/api/no/such/route", "headers": auth},
    ]
    results = browse(chromium, tmp_path, stranger, calls)
    for name, result in results.items():
        assert "status" not in result, (name, result)
        assert result["error"].startswith("TypeError"), (name, result)
