"""The todo service: a Flask app over a pooled, row-level-secured PostgreSQL.

A request flows: `start_request` (request id) -> the API blueprint's `authenticate` (token ->
g.user_id, scoped connection) -> the view (tasks.py / users.py, queries via the scoping helpers)
-> errors.py turns anything raised into a problem document -> `finish_request` (log line) ->
`close_connection` (connection back to the pool, scope dropped).
"""
from flask import Blueprint, Flask, current_app, request
from flask_cors import CORS

from . import auth, cli, docs, health, requests, tasks, users
from .config import load_config
from .db import close_connection, database, init_database
from .errors import register_error_handlers
from .jsonio import OrjsonProvider

CORS_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
CORS_EXPOSED = ["ETag", "Location", "X-Request-ID", "Retry-After", "Idempotent-Replayed",
                "Content-Disposition"]


class ServiceFlask(Flask):
    """Flask, minus a per-call cost the service does not need."""

    def ensure_sync(self, func):
        # Flask inspects every hook and view on every call in case it is a coroutine; the
        # service has none (tests/test_http.py checks), so each is returned as it is.
        return func


def use_app_database():
    """Point the module-level database proxy at this app's pool. One app per process is the
    norm; this keeps a second app (tests, tools) from serving requests on the other's pool."""
    db = current_app.extensions["database"]
    if database.obj is not db:
        database.initialize(db)


def create_app(config=None, database_url=None):
    """Build the app for `config` (default: read from the environment)."""
    config = config or load_config()
    app = ServiceFlask(__name__)
    app.json = OrjsonProvider(app)
    app.config.update(MAX_CONTENT_LENGTH=config.max_content_length, TODO_CONFIG=config)
    app.extensions["database"] = init_database(config, database_url)
    app.extensions["token_verifier"] = auth.TokenVerifier(config)
    app.extensions["known_users"] = auth.KnownUsers()
    requests.configure_logging(config)
    cli.register(app)

    app.before_request(use_app_database)
    app.before_request(requests.start_request)
    app.after_request(requests.finish_request)
    app.teardown_request(close_connection)
    register_error_handlers(app)

    api = Blueprint("api", __name__, url_prefix="/api")
    api.before_request(auth.authenticate)
    api.register_blueprint(tasks.bp, url_prefix="/tasks")
    api.register_blueprint(tasks.bp, url_prefix="/<path_user_id>/tasks", name="user_tasks")
    api.register_blueprint(users.bp, url_prefix="/users")
    app.register_blueprint(api)
    app.register_blueprint(docs.bp, url_prefix="/api")
    app.register_blueprint(health.bp)

    # CORS headers answer browsers, which always send Origin on a cross-origin request
    # (always_send=False). Error responses pass through the after_request hooks too, so
    # flask-cors need not also wrap the exception handlers.
    CORS(app, resources={r"/api/*": {"origins": list(config.cors_origins)}},
         supports_credentials=True, allow_headers=["Authorization", "Content-Type", "If-Match",
                                                   "Idempotency-Key", "X-Request-ID"],
         methods=CORS_METHODS, expose_headers=CORS_EXPOSED, max_age=600,
         always_send=False, intercept_exceptions=False)
    _only_for_origin_requests(app)
    return app


def _only_for_origin_requests(app):
    """Run flask-cors's after_request hook only for requests with an Origin header. Without one
    it adds nothing (always_send=False) but still matches the path against its resources and
    reads its options: a measurable share of a short request's CPU (docs/benchmarks.md)."""
    hooks = app.after_request_funcs[None]
    (position,) = [i for i, hook in enumerate(hooks) if hook.__name__ == "cors_after_request"]
    cors_hook = hooks[position]

    def cors_for_browsers(response):
        return cors_hook(response) if "HTTP_ORIGIN" in request.environ else response

    hooks[position] = cors_for_browsers
