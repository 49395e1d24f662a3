"""The per-user export (`GET /api/users/me/export`): the profile, every tag and every task, one
snapshot."""
from ..db import database
from . import tags, users
from .task_sql import ROW, ROW_JSON


def user_export(user):
    """(the user's row or None, the JSON texts of all their tags, and of all their tasks by id),
    read in one transaction so the three agree."""
    with database.atomic():
        row = users.get(user)
        tag_json = tags.all_of(user)
        task_json = [json for (json,) in ROW.select(ROW_JSON).where(ROW.user == user).order_by(ROW.id).tuples()]
    return row, tag_json, task_json
