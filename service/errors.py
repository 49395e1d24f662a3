"""The one error envelope: RFC 9457 problem details for every failure the service reports.

Views raise (`ApiError`, a werkzeug HTTPException, a database error); the handlers registered
here turn each into `application/problem+json`. Nothing else builds an error response.
"""
import logging

from flask import g
from peewee import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError
from playhouse.pool import MaxConnectionsExceeded
from werkzeug.exceptions import HTTPException

from . import metrics
from .jsonio import json_response

log = logging.getLogger("service.errors")

PROBLEM_TYPE = "about:blank"
RETRY_AFTER_SECONDS = "2"


class ApiError(Exception):
    """An error a view raises to answer with a problem document."""

    def __init__(self, status, detail, title=None, errors=None, headers=None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title
        self.errors = errors
        self.headers = headers or {}


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
    413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content",
    428: "Precondition Required", 500: "Internal Server Error", 503: "Service Unavailable",
}


def problem(status, detail, title=None, errors=None, headers=None):
    """A problem+json response."""
    body = {"type": PROBLEM_TYPE, "title": title or _TITLES.get(status, "Error"),
            "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return json_response(body, status, headers, mimetype="application/problem+json")


def _api_error(error):
    return problem(error.status, error.detail, error.title, error.errors, error.headers)


def _http_error(error):
    headers = {k: v for k, v in error.get_headers() if k.lower() not in ("content-type",)}
    detail = error.description or _TITLES.get(error.code, "Error")
    if error.code == 404:
        detail = "No such resource."
    return problem(error.code or 500, detail, headers=headers)


def _unavailable(error):
    metrics.count_db_error(error)
    log.warning("database unavailable: %s", type(error).__name__)
    return problem(503, "The database is unavailable; try again shortly.",
                   headers={"Retry-After": RETRY_AFTER_SECONDS})


def _integrity_error(error):
    metrics.count_db_error(error)
    return problem(409, "The change conflicts with existing data.")


def _data_error(error):
    metrics.count_db_error(error)
    return problem(422, "A value is out of range or malformed for the database.")


def _database_error(error):
    metrics.count_db_error(error)
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
