"""/api/docs in a real headless browser (Debian's chromium, see tests/browser.py): the page,
rendered from /api/openapi.json by assets the service serves itself, shows every route, with the
network cut off except for the loopback server (so it works offline).
"""
import re
import threading
from html.parser import HTMLParser

import pytest
from werkzeug.serving import make_server

from service.openapi import spec
from tests.browser import find_chromium, headless


@pytest.fixture(scope="module")
def chromium():
    return find_chromium()


@pytest.fixture(scope="module")
def server_url(app):
    """The app served over HTTP on a loopback port, for the browser."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


class Operations(HTMLParser):
    """Collects what Swagger UI rendered for each operation: its path (data-path) and the
    path text a reader sees."""

    VOID = {"wbr", "br", "img", "input", "hr", "meta", "link"}

    def __init__(self):
        super().__init__()
        self.paths = []
        self.paths_shown = []
        self._depth = 0
        self._text = []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        attrs = dict(attrs)
        if self._depth:
            self._depth += 1
        elif "opblock-summary-path" in (attrs.get("class") or "").split():
            self.paths.append(attrs.get("data-path"))
            self._depth = 1
            self._text = []

    def handle_endtag(self, tag):
        if self._depth and tag not in self.VOID:
            self._depth -= 1
            if not self._depth:
                self.paths_shown.append("".join(self._text).replace("\u200b", "").strip())

    def handle_data(self, data):
        if self._depth:
            self._text.append(data)


def test_docs_page_is_public_and_serves_its_assets_itself(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, html
    for asset in assets:
        assert asset.startswith("/api/"), f"{asset} is not served by the service"
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert response.get_data(), asset
    assert client.get("/api/docs/static/swagger-ui-bundle.js").mimetype == "text/javascript"
    assert client.get("/api/docs/static/no-such-file.js").status_code == 404
    assert client.get("/api/docs/static/..%2F__init__.py").status_code == 404


@pytest.mark.slow
def test_docs_page_renders_every_route_in_a_real_browser(chromium, server_url, tmp_path):
    dom = headless(chromium, tmp_path / "profile", f"{server_url}/api/docs", "--dump-dom")
    parser = Operations()
    parser.feed(dom)
    rendered = parser.paths
    document = spec()
    expected = sorted((path for path, item in document["paths"].items() for _ in item))
    # Swagger UI drew one summary per operation, each naming its path ...
    assert sorted(rendered) == expected, dom[:3000]
    # ... and the visible text shows them (the raw page itself names no route).
    assert "/api/tasks" in parser.paths_shown
    assert "/api/users/me" in parser.paths_shown
    assert "/api/{user_id}/tasks/{task_id}/complete" in parser.paths_shown
    assert "Todo service" in dom


@pytest.mark.slow
def test_docs_page_shows_an_operation_in_detail(chromium, server_url, tmp_path):
    dom = headless(chromium, tmp_path / "profile", f"{server_url}/api/docs#/tasks/listTasks", "--dump-dom")
    # Deep-linked and expanded: its parameters table lists the query parameters.
    for name in ("status_filter", "sort_by", "cursor", "limit"):
        assert f'data-param-name="{name}"' in dom, name
