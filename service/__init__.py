"""The todo service: a Flask app over a pooled, row-level-secured PostgreSQL.

The house, each layer importing only those below it (docs/architecture.md has the whole map):
- ground: config.py (the environment, validated once), fields.py (every field of a task, tag and
  user, once; field_types.py: what a field can say), vocabularies.py, recurrence.py, errors.py
  (the one problem envelope), jsonio.py, instruments.py (Prometheus counters), request_log.py
- db/: the pooled, user-scoped database (pool.py, built by connect.py), its watchdog, the
  compiled-query cache, the models, the embedded PostgreSQL and the read replicas
- validation.py and list_params.py (request input to typed values or 422), tokens.py (bearer
  tokens, no Flask)
- store/: every query of the request path (tasks.py + task_sql.py, tags.py, reminders.py,
  stats.py, users.py, ...)
- idempotency.py; then the web: api/ (the authenticated /api routes, also under /api/v1;
  identity.py is its hook; one module per URL's first word), health.py, metrics.py, docs.py +
  openapi/, cors.py
- ops/: operator commands (cli, seeding, export/import, vocabularies, doctor), apart from the
  request path

A request flows: `request_log.start_request` (request id, clock) -> `cors.answer_preflight`
(a CORS preflight ends here, on any path) -> the API blueprint's
`identity.identify` (token -> g.user_id, scoped connection) -> the view (parse -> store -> respond)
-> errors.py turns anything raised into a problem document -> `request_log.finish_request` (one
log line) -> `identity.release` (connection back to the pool, scope dropped).
"""
from flask import Flask

from . import api, cors, docs, health, metrics, request_log
from .config import load_config
from .db import init_database
from .errors import register_error_handlers
from .jsonio import OrjsonProvider
from .ops import cli
from .store.users import KnownUsers
from .tokens import TokenVerifier


def create_app(config=None, database_url=None):
    """Build the app for `config` (default: read from the environment)."""
    config = config or load_config()
    app = Flask(__name__)
    app.json = OrjsonProvider(app)
    app.config.update(MAX_CONTENT_LENGTH=config.max_content_length, TODO_CONFIG=config)
    app.extensions["database"] = init_database(config, database_url)
    app.extensions["token_verifier"] = TokenVerifier(config)
    app.extensions["known_users"] = KnownUsers()
    request_log.configure_logging(config)
    cli.register(app)

    app.before_request(request_log.start_request)
    app.after_request(request_log.finish_request)
    register_error_handlers(app)

    api.register(app)  # under /api and /api/v1
    docs.register(app, api.PREFIXES)  # the same, and /openapi.json and /docs at the root
    api.identity.retry_reads_on_primary(app, api.PREFIXES)  # a replica's failure: the read again, on the primary
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)  # /metrics: outside /api, so no token or database work
    cors.configure(app, config.cors_origins)
    return app
