"""The per-user export (`GET /api/users/me/export`): the profile and every task, one snapshot."""
from ..db import database
from . import tasks, users


def user_export(user):
    """(the user's row or None, the JSON texts of all their tasks by id), read in one transaction
    so the tasks match the profile."""
    with database.atomic():
        row = users.get(user)
        task_json = [json for (json,) in
                     tasks.ROW.select(tasks.ROW_JSON).where(tasks.ROW.user == user).order_by(tasks.ROW.id).tuples()]
    return row, task_json
