"""/api/reminders and /api/{user_id}/reminders: the caller's tasks whose reminder is due.

A frontend polls it for notifications, then clears (`remind_at: null`) or snoozes (a later
`remind_at`) each one with PATCH /api/tasks/{id}.
"""
from flask import Blueprint, current_app, g, request

from ..errors import ValidationError
from ..jsonio import json_response
from ..list_params import read
from ..store import reminders as store

bp = Blueprint("reminders", __name__)


@bp.get("", strict_slashes=False)
def index():
    """Tasks not completed whose remind_at is at or before now (or `until`), earliest first."""
    errors, vocabularies = [], current_app.config["TODO_CONFIG"].vocabularies
    until = read(request.args, "until", vocabularies, errors)
    limit = read(request.args, "limit", vocabularies, errors, store.DEFAULT_LIMIT)
    if errors:
        raise ValidationError(errors, detail="Invalid parameters.")
    return json_response(store.due(g.user_id, until, limit))
