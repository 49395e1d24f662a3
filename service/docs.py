"""/api/openapi.json and /api/docs: the API described, public (no token)."""
from flask import Blueprint

from .openapi import spec

bp = Blueprint("docs", __name__)


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI 3.1 document of every route."""
    return spec()
