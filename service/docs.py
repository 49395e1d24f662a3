"""/api/openapi.json and /api/docs: the API described, public (no token).

The page is Swagger UI 5 (OpenAPI 3.1 capable) from the flask-swagger-ui package's dist folder,
served by this blueprint under /api/docs/static/, so the docs work offline and without a CDN.
The blueprint is registered outside the authenticated API blueprint (see `register`): under
/api, under /api/v1 like the rest of the API, and the document and page also at the root
(/openapi.json, /docs), where FastAPI serves them. Every copy of the page loads the assets from
/api/docs/static/ and the document from its own family.
"""
import functools
import importlib.util
from pathlib import Path

import orjson
from flask import Blueprint, Response, current_app, send_from_directory, url_for
from markupsafe import escape

from .openapi import spec

bp = Blueprint("docs", __name__)

# The package's files, located without importing it (its module does work at import time).
SWAGGER_UI_DIST = Path(importlib.util.find_spec("flask_swagger_ui").origin).parent / "dist"
ASSET_MAX_AGE = 24 * 3600

# Started by a file rather than an inline script, so a strict Content-Security-Policy can allow
# 'self' scripts only. The page tells it where the document is (data-spec-url).
INIT_JS = """\
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    displayRequestDuration: true,
    persistAuthorization: false,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""
OWN_ASSETS = {"init.js": (INIT_JS.encode(), "text/javascript")}

PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Todo service API</title>
  <link rel="stylesheet" href="{static}/swagger-ui.css">
  <link rel="stylesheet" href="{static}/index.css">
  <link rel="icon" type="image/png" href="{static}/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <noscript>This page needs JavaScript; the raw document is at
    <a href="{spec_url}">{spec_url}</a>.</noscript>
  <div id="swagger-ui" data-spec-url="{spec_url}"></div>
  <script src="{static}/swagger-ui-bundle.js"></script>
  <script src="{static}/init.js"></script>
</body>
</html>
"""


@functools.cache
def spec_json(vocabularies):
    """The document for these vocabularies, serialised once."""
    return orjson.dumps(spec(vocabularies))


# The root copies: the document and its page where FastAPI apps have them.
root_bp = Blueprint("docs_root", __name__)


@bp.get("/openapi.json")
@root_bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI 3.1 document of every route."""
    response = Response(spec_json(current_app.config["TODO_CONFIG"].vocabularies), mimetype="application/json")
    response.headers["Cache-Control"] = "no-cache"  # a deploy may change it
    return response


@bp.get("/docs")
@root_bp.get("/docs")
def page():
    """The human-readable docs: Swagger UI rendering the document of the page's own family."""
    static = url_for("docs.asset", filename="-").rsplit("/", 1)[0]  # the folder's URL
    html = PAGE.format(static=escape(static), spec_url=escape(url_for(".openapi_json")))
    return Response(html, mimetype="text/html")


@bp.get("/docs/static/<filename>")
def asset(filename):
    """A Swagger UI file from the installed package (or the page's own starter script)."""
    if filename in OWN_ASSETS:
        body, mimetype = OWN_ASSETS[filename]
        response = Response(body, mimetype=mimetype)
        response.headers["Cache-Control"] = f"public, max-age={ASSET_MAX_AGE}"
        return response
    return send_from_directory(SWAGGER_UI_DIST, filename, max_age=ASSET_MAX_AGE)


def register(app, prefixes):
    """Serve the document, the page and its assets under each of `prefixes` ({name: prefix}, the
    API's), and the document and the page at the root."""
    for name, prefix in prefixes.items():  # api -> docs (whose assets every page loads), api_v1 -> docs_v1
        app.register_blueprint(bp, name=f"docs{name.removeprefix('api')}", url_prefix=prefix)
    app.register_blueprint(root_bp)
