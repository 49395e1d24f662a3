"""The one error envelope: RFC 9457 problem details for every failure the service reports.

Views raise (`ApiError`, a werkzeug HTTPException, a database error); the handlers registered
here turn each into `application/problem+json`. Nothing else builds an error response.

Every problem carries a stable `code` (CODES: one per status, and `invalid_token` for a 401
whose token was rejected), so clients branch on it without parsing `detail`.
"""
import logging

from flask import g
from peewee import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError
from playhouse.pool import MaxConnectionsExceeded
from werkzeug.exceptions import HTTPException

from . import instruments
from .jsonio import json_response

log = logging.getLogger("service.errors")

PROBLEM_TYPE = "about:blank"
RETRY_AFTER_SECONDS = "2"


class ApiError(Exception):
    """An error a view raises to answer with a problem document; `code` overrides the status's
    own (only where CODE_OVERRIDES allows it)."""

    def __init__(self, status, detail, title=None, errors=None, headers=None, code=None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title
        self.errors = errors
        self.headers = headers or {}
        self.code = code


class ValidationError(ApiError):
    """422 with the list of fields that were wrong."""

    def __init__(self, errors, detail="The request has invalid fields."):
        super().__init__(422, detail, errors=errors)


def field_error(field, message):
    """A 422 for a single field."""
    return ValidationError([{"field": field, "message": message}])


_TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 409: "Conflict", 412: "Precondition Failed",
    413: "Content Too Large", 415: "Unsupported Media Type", 416: "Range Not Satisfiable",
    422: "Unprocessable Content", 500: "Internal Server Error", 503: "Service Unavailable",
}


# The `code` of each status: a stable name clients can branch on (docs/api.md lists them, the
# OpenAPI Problem schema enumerates them). A status missing here (none is answered today) is
# `error`.
CODES = {
    400: "malformed_json", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 412: "precondition_failed",
    413: "payload_too_large", 415: "unsupported_media_type", 416: "range_not_satisfiable",
    422: "validation_failed", 500: "internal_error", 503: "unavailable",
}
FALLBACK_CODE = "error"
# The codes that may stand in for their status's own: a 401 whose token was rejected (a token
# was sent, unlike `unauthorized`: no credentials at all).
CODE_OVERRIDES = {401: {"invalid_token"}}


def code_for(status, code=None):
    """The `code` of a problem with this status (`code` when it is an allowed override)."""
    if code is not None and code in CODE_OVERRIDES.get(status, ()):
        return code
    return CODES.get(status, FALLBACK_CODE)


def problem(status, detail, title=None, errors=None, headers=None, code=None):
    """A problem+json response."""
    body = {"type": PROBLEM_TYPE, "title": title or _TITLES.get(status, "Error"),
            "status": status, "code": code_for(status, code), "detail": detail}
    if errors:
        body["errors"] = errors
    return json_response(body, status, headers, mimetype="application/problem+json")


def _api_error(error):
    return problem(error.status, error.detail, error.title, error.errors, error.headers, error.code)


def _http_error(error):
    headers = {k: v for k, v in error.get_headers() if k.lower() not in ("content-type",)}
    detail = error.description or _TITLES.get(error.code, "Error")
    if error.code == 404:
        detail = "No such resource."
    return problem(error.code or 500, detail, headers=headers)


def _unavailable(error):
    instruments.count_db_error(error)
    log.warning("database unavailable: %s", type(error).__name__)
    return problem(503, "The database is unavailable; try again shortly.",
                   headers={"Retry-After": RETRY_AFTER_SECONDS})


def _integrity_error(error):
    instruments.count_db_error(error)
    return problem(409, "The change conflicts with existing data.")


def _data_error(error):
    instruments.count_db_error(error)
    return problem(422, "A value is out of range or malformed for the database.")


def _database_error(error):
    instruments.count_db_error(error)
    return _unexpected(error)


def _unexpected(error):
    request_id = g.get("request_id", "-")
    log.exception("unhandled error (request %s)", request_id)
    return problem(500, f"An unexpected error occurred. Request id: {request_id}.")


def register_error_handlers(app):
    """Install the envelope on `app` for every kind of failure."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(IntegrityError, _integrity_error)
    app.register_error_handler(DataError, _data_error)
    app.register_error_handler(OperationalError, _unavailable)
    app.register_error_handler(InterfaceError, _unavailable)
    app.register_error_handler(MaxConnectionsExceeded, _unavailable)
    app.register_error_handler(DatabaseError, _database_error)
    app.register_error_handler(Exception, _unexpected)
