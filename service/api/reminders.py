"""/api/reminders and /api/{user_id}/reminders: the caller's tasks whose reminder is due.

A frontend polls it for notifications, then clears (`remind_at: null`) or snoozes (a later
`remind_at`) each one with PATCH /api/tasks/{id}.
"""
from flask import Blueprint, g, request

from ..errors import ValidationError
from ..jsonio import json_response
from ..list_params import MAX_LIMIT, due_bound
from ..store import reminders as store

bp = Blueprint("reminders", __name__)


@bp.get("", strict_slashes=False)
def index():
    """Tasks not completed whose remind_at is at or before now (or `until`), earliest first."""
    errors = []
    until = due_bound(request.args, "until", errors)
    limit = request.args.get("limit", str(store.DEFAULT_LIMIT))
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
        errors.append({"field": "limit", "message": f"must be between 1 and {MAX_LIMIT}"})
    if errors:
        raise ValidationError(errors, detail="Invalid parameters.")
    return json_response(store.due(g.user_id, until, int(limit)))
