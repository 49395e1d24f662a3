"""/metrics: every instrument of every worker (service/instruments.py), in Prometheus' text format
0.0.4. Public unless METRICS_TOKEN is set; outside the /api blueprint, so a scrape does no token
verification and no database work. A refused scrape is a werkzeug Unauthorized, which the error
envelope turns into a problem document."""
import hmac

from flask import Blueprint, current_app, request
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from .instruments import MULTIPROCESS, REGISTRY, sample

bp = Blueprint("metrics", __name__)


def _authorised(token):
    """True when METRICS_TOKEN is unset, or the request carries it as a bearer token."""
    if token is None:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # compare_digest: the time taken does not tell how much of a guess was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@bp.get("/metrics")
def scrape():
    """Every metric of every worker, in Prometheus' text format."""
    if not _authorised(current_app.config["TODO_CONFIG"].metrics_token):
        raise Unauthorized("Send the metrics token as Authorization: Bearer <METRICS_TOKEN>.",
                           www_authenticate=WWWAuthenticate("Bearer", {"realm": "metrics"}))
    registry = REGISTRY
    if MULTIPROCESS:
        sample()  # this worker's gauges as they are now; the others' are at most a second old
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry), 200, {"Content-Type": CONTENT_TYPE_PLAIN_0_0_4}
