"""Per-request plumbing: the request id, one structured log line and the metrics of each request."""
import logging
import random
import re
import time
from datetime import UTC, datetime

import orjson
from flask import g, request

from . import instruments

log = logging.getLogger("service.requests")
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def start_request():
    """Take the caller's X-Request-ID when it is sane, else make one; start the clock."""
    instruments.request_started()
    g.started = time.perf_counter()
    given = request.headers.get("X-Request-ID", "")
    # 32 random hex digits, as uuid4().hex was. An id needs to be unique, not unguessable, so it
    # comes from `random` (reseeded in each forked worker) rather than a system call per request.
    g.request_id = given if REQUEST_ID_RE.match(given) else f"{random.getrandbits(128):032x}"  # noqa: S311


def finish_request(response):
    """Echo the request id, count the request and log it in one line (never its headers or
    body)."""
    now = time.perf_counter()
    # Each use of a context proxy (request, g) looks the context up again: once each here.
    context, current = g._get_current_object(), request._get_current_object()  # noqa: SLF001
    request_id = context.get("request_id")
    response.headers["X-Request-ID"] = request_id if request_id is not None else "-"
    rule = current.url_rule.rule if current.url_rule else None
    # A failing after_request hook sends the error's response through here once more: count once.
    started = context.pop("started", None)
    if started is not None:
        instruments.request_finished()
        instruments.observe_request(rule, current.method, response.status_code, now - started)
    if log.isEnabledFor(logging.INFO):
        log.info("request", extra={"request": {
            "method": current.method,
            "route": rule,
            "path": current.path,
            "status": response.status_code,
            "duration_ms": round((now - (started or now)) * 1000, 2),
            "request_id": request_id,
            "user_id": context.get("user_id"),
        }})
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
    # No formatter here prints the caller's file and line; this is logging's documented switch
    # for not looking them up (a walk up the stack per record).
    logging._srcfile = None  # noqa: SLF001
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if config.log_format == "json"
                         else TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("service")
    root.handlers[:] = [handler]
    root.setLevel(config.log_level)
    root.propagate = False
