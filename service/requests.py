"""Per-request plumbing: the request id and one structured log line per request."""
import logging
import random
import re
import time
from datetime import UTC, datetime

import orjson
from flask import g, request

log = logging.getLogger("service.requests")
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def start_request():
    """Take the caller's X-Request-ID when it is sane, else make one; start the clock."""
    ctx_g = g._get_current_object()
    ctx_g.started = time.perf_counter()
    given = request.environ.get("HTTP_X_REQUEST_ID", "")
    # 32 random hex digits, as uuid4().hex was. An id needs to be unique, not unguessable, so it
    # comes from `random` (reseeded in each forked worker) rather than a system call per request.
    ctx_g.request_id = given if REQUEST_ID_RE.match(given) else f"{random.getrandbits(128):032x}"  # noqa: S311


def finish_request(response):
    """Echo the request id and log the request in one line (never its headers or body)."""
    # Runs on every request: the context objects are looked up once, not per attribute.
    ctx_g, req = g._get_current_object(), request._get_current_object()
    request_id = ctx_g.get("request_id")
    response.headers["X-Request-ID"] = request_id if request_id is not None else "-"
    if log.isEnabledFor(logging.INFO):
        now = time.perf_counter()
        rule = req.url_rule
        # makeRecord + handle is what log.info does, minus the walk up the stack for the
        # caller's file and line, which no formatter here prints.
        log.handle(log.makeRecord(log.name, logging.INFO, "", 0, "request", (), None, extra={"request": {
            "method": req.method,
            "route": rule.rule if rule else None,
            "path": req.path,
            "status": response.status_code,
            "duration_ms": round((now - ctx_g.get("started", now)) * 1000, 2),
            "request_id": request_id,
            "user_id": ctx_g.get("user_id"),
        }}))
    return response


class JsonFormatter(logging.Formatter):
    """One JSON object per line: request lines carry their fields, others their message."""

    def format(self, record):
        entry = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name}
        fields = getattr(record, "request", None)
        if fields:
            entry.update(fields)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """A human-readable line; request lines as `METHOD route status ms id user`."""

    def format(self, record):
        fields = getattr(record, "request", None)
        if fields:
            record.msg = ("{method} {route} {status} {duration_ms}ms id={request_id} "
                          "user={user_id}").format(**fields)
            record.args = ()
        return super().format(record)


def configure_logging(config):
    """Send the service's logs to stderr in the configured format."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if config.log_format == "json"
                         else TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("service")
    root.handlers[:] = [handler]
    root.setLevel(config.log_level)
    root.propagate = False
