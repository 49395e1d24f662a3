"""The OpenAPI 3.1 description of the service, served at /api/openapi.json.

The field schemas are generated from the field table (schemas.py); the paths, parameters and
other components are written by hand (paths.py, components.py). Fuzzers generate requests from
it and check every answer against it. Request schemas never forbid unknown keys, because the
service ignores them.
"""
import copy
import functools

from ..api import PREFIXES
from ..vocabularies import DEFAULT_VOCABULARIES
from .components import HEADERS, other_schemas, parameters, responses
from .paths import public_paths, tag_paths, task_paths, time_paths, user_paths
from .schemas import field_schemas

DESCRIPTION = """\
A multi-user todo service. Every `/api` route except this document and its page needs
`Authorization: Bearer <JWT>` (Better Auth's EdDSA tokens via its JWKS, or HS256/384/512 with the
shared secret); the token's `sub` is the user, and every query is scoped to it.

Each task route exists twice: `/api/tasks...` and, for Phase II clients, `/api/{user_id}/tasks...`
(403 when `{user_id}` is not the token's `sub`). Another user's task is always 404. A route word
(`tasks`, `users`, `v1`, `docs`, ...) is never read as a `{user_id}`.

**Every path under `/api` is also served under `/api/v1`, identically** (for frontends written
against a versioned backend); they are not listed twice here (`x-path-aliases`). This document
and its page are also at `/openapi.json` and `/docs`.

Errors are RFC 9457 problem documents (`application/problem+json`) with a stable `code` to
branch on (see the Problem schema); 422 lists the wrong fields. An unknown route is 404 and a
wrong method 405. Every response carries `X-Request-ID`. Browsers on the origins of
`CORS_ORIGINS` may call every route with credentials.
Task responses carry `ETag: "<version>"`; send it back in `If-Match` to update or delete only if
nobody changed the task meanwhile (412 otherwise). `POST` accepts an `Idempotency-Key`.
"""


@functools.cache
def _build(vocabularies):
    params = parameters(vocabularies)
    params["filename"] = {"name": "filename", "in": "path", "required": True,
                              "schema": {"type": "string", "pattern": "^[^/]+$"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Todo service", "version": "1.0.0", "description": DESCRIPTION,
                 "license": {"name": "MIT", "identifier": "MIT"}},
        "tags": [
            {"name": "tasks", "description": "The caller's tasks."},
            {"name": "tasks (Phase II paths)",
             "description": "The same routes with the user in the path, for Phase II clients."},
            {"name": "tags", "description": "The caller's own labels for tasks."},
            {"name": "tags (Phase II paths)",
             "description": "The same routes with the user in the path."},
            {"name": "time", "description": "Due reminders and statistics."},
            {"name": "time (Phase II paths)", "description": "The same routes with the user in the path."},
            {"name": "users", "description": "The caller's profile."},
            {"name": "operations", "description": "Probes for load balancers and orchestrators."},
            {"name": "docs", "description": "This description."},
        ],
        "paths": {**task_paths("/api/tasks", "", False),
                  **task_paths("/api/{user_id}/tasks", "ForUser", True),
                  **tag_paths("/api/tags", "", False), **tag_paths("/api/{user_id}/tags", "ForUser", True),
                  **time_paths("/api", "", False), **time_paths("/api/{user_id}", "ForUser", True),
                  **user_paths(), **public_paths()},
        "components": {
            "schemas": {**field_schemas(vocabularies), **other_schemas()},
            "parameters": params,
            "headers": HEADERS,
            "responses": responses(),
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "A Better Auth JWT (EdDSA, via the JWKS) or an HS256/384/512 "
                               "token signed with BETTER_AUTH_SECRET.",
            }, "metricsToken": {
                "type": "http", "scheme": "bearer",
                "description": "METRICS_TOKEN, when the operator set one (GET /metrics only).",
            }},
        },
        "security": [{"bearerAuth": []}],
        # Each documented path under a value (/api/...) is also served under its key (/api/v1/...).
        "x-path-aliases": {PREFIXES["api_v1"]: PREFIXES["api"]},
    }


def spec(vocabularies=DEFAULT_VOCABULARIES):
    """The OpenAPI document for these vocabularies (built once; a copy, so callers cannot change
    the cached one)."""
    return copy.deepcopy(_build(vocabularies))
