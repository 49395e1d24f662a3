"""/api/stats (and /api/{user_id}/stats, /api/{user_id}/statistics): counts, completion rate,
streaks and this week's completions, in the user's time zone (`tz` overrides it)."""
from flask import Blueprint, current_app, g, request

from ..errors import ValidationError
from ..jsonio import json_response
from ..recurrence import time_zone
from ..store import stats as store

bp = Blueprint("stats", __name__)


@bp.get("", strict_slashes=False)
def index():
    """The caller's statistics."""
    zone = request.args.get("tz")
    if zone is not None:
        try:
            time_zone(zone)
        except ValueError as error:
            raise ValidationError([{"field": "tz", "message": str(error)}], detail="Invalid parameters.") from None
    return json_response(store.of(g.user_id, current_app.config["TODO_CONFIG"].vocabularies, zone))
