"""/api/tasks and /api/{user_id}/tasks: the caller's tasks.

Registered twice (see api/__init__.py); the identity hook has checked the path's user. Each view
reads: parse the request, call the task store (service/store/tasks.py: its SQL), answer.
"""
from flask import Blueprint, Response, current_app, g, request

from ..fields import MAX_VERSION, STATUS_FIELDS, TAGGING_FIELDS
from ..idempotency import idempotent
from ..jsonio import json_response
from ..list_params import list_params
from ..store import tasks as store
from ..validation import completion_body, json_body, task_body

bp = Blueprint("tasks", __name__)


def vocabularies():
    """The configured vocabularies (priority, ...)."""
    return current_app.config["TODO_CONFIG"].vocabularies


def task_response(task, status=200, headers=None):
    """A stored task with its ETag (the version); after completing a recurring task, with its
    `next_occurrence` (the new task, or null when the rule has ended)."""
    body = task.json
    if task.next_occurrence is not store.NO_NEXT:
        body = f'{body[:-1]},"next_occurrence":{task.next_occurrence or "null"}}}'
    return Response(body, status, {"ETag": f'"{task.version}"', **(headers or {})}, mimetype="application/json")


def if_match():
    """The versions `If-Match` accepts: None when it is absent or `*`, else a tuple. Entity tags
    compare strongly (RFC 9110 13.1.1): a weak tag (`W/"3"`) or one that is not a version
    matches nothing, and a list matches when any of its tags does."""
    if "If-Match" not in request.headers:
        return None
    tags = request.if_match  # a malformed header parses to no tags: it matches nothing
    if tags.star_tag or "*" in tags:  # `*` alone, or inside a list
        return None
    return tuple(int(tag) for tag in tags.as_set() if tag and tag.isascii() and tag.isdigit()
                 and len(tag) <= 10 and int(tag) <= MAX_VERSION)


@bp.get("", strict_slashes=False)
def index():
    """List the caller's tasks: filters, sort, keyset cursor and total count."""
    return json_response(store.page(g.user_id, list_params(request, vocabularies()), vocabularies()))


@bp.post("", strict_slashes=False)
@idempotent
def create():
    """Create a task for the caller; other body keys (even user_id, id) are ignored."""
    task = store.create(g.user_id, task_body(json_body(), vocabularies(), creating=True), g.claims)
    return task_response(task, 201, {"Location": f"{request.path.rstrip('/')}/{task.id}"})


@bp.get("/<int:task_id>")
def get(task_id):
    """One of the caller's tasks."""
    return task_response(store.get(g.user_id, task_id))


@bp.route("/<int:task_id>", methods=["PUT", "PATCH"])
def update(task_id):
    """Change the given fields of a task (PUT behaves as PATCH); 422 when none is given."""
    values = task_body(json_body(), vocabularies(), creating=False)
    return task_response(store.update(g.user_id, task_id, values, if_match(), vocabularies().done))


@bp.patch("/<int:task_id>/complete")
def complete(task_id):
    """Toggle a task's completion, or set it with `{"completed": bool}`."""
    wanted = completion_body(json_body(required=False), vocabularies())
    return task_response(store.set_completed(g.user_id, task_id, wanted, if_match()))


@bp.patch("/<int:task_id>/status")
def set_status(task_id):
    """Move a task to another workflow state; `completed` follows (done is the last state)."""
    values = task_body(json_body(), vocabularies(), creating=False, only=STATUS_FIELDS)
    return task_response(store.update(g.user_id, task_id, values, if_match(), vocabularies().done))


@bp.put("/<int:task_id>/tags")
def set_tags(task_id):
    """Replace a task's tags: `{"tag_ids": [...]}` or `{"tags": ["name", ...]}` (missing ones created)."""
    values = task_body(json_body(), vocabularies(), creating=False, only=TAGGING_FIELDS)
    return task_response(store.update(g.user_id, task_id, values, if_match()))


@bp.delete("/<int:task_id>")
def delete(task_id):
    """Delete a task."""
    deleted = store.delete(g.user_id, task_id, if_match())
    return json_response({"message": f"Task {deleted} deleted.", "deleted_id": deleted})
