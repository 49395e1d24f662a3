"""/api/tags and /api/{user_id}/tags: the caller's own labels for tasks.

Each view reads: parse the body, call the tag store (service/store/tags.py: its SQL), answer.
A tag of someone else is indistinguishable from a missing one (404).
"""
from flask import Blueprint, Response, g, request

from ..idempotency import idempotent
from ..jsonio import json_array, json_response
from ..store import tags as store
from ..validation import json_body, tag_body

bp = Blueprint("tags", __name__)


def tag_response(json, status=200, headers=None):
    """A tag's JSON text as the answer."""
    return Response(json, status, headers, mimetype="application/json")


@bp.get("", strict_slashes=False)
def index():
    """The caller's tags, ordered by name."""
    tags = store.all_of(g.user_id)
    return json_response({"tags": json_array(tags), "count": len(tags)})


@bp.post("", strict_slashes=False)
@idempotent
def create():
    """Create a tag; 409 when the name exists (ignoring case)."""
    tag_id, json = store.create(g.user_id, tag_body(json_body(), creating=True))
    return tag_response(json, 201, {"Location": f"{request.path.rstrip('/')}/{tag_id}"})


@bp.get("/<int:tag_id>")
def get(tag_id):
    """One of the caller's tags."""
    return tag_response(store.get(g.user_id, tag_id))


@bp.route("/<int:tag_id>", methods=["PATCH", "PUT"])
def update(tag_id):
    """Rename or recolour a tag; 409 on a clash."""
    return tag_response(store.update(g.user_id, tag_id, tag_body(json_body(), creating=False)))


@bp.delete("/<int:tag_id>")
def delete(tag_id):
    """Delete a tag: it leaves every task."""
    deleted = store.delete(g.user_id, tag_id)
    return json_response({"message": f"Tag {deleted} deleted.", "deleted_id": deleted})
