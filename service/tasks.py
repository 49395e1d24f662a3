"""/api/tasks and /api/{user_id}/tasks: a user's tasks.

Registered twice (see create_app): the Phase II family carries the user in the path, which the
identity hook compares with the token (403 on a mismatch). Every query starts from
`Task.owned(g.user_id)`; a task of someone else is indistinguishable from a missing one (404).
"""
from flask import Blueprint, g, request
from peewee import IntegrityError, fn

from .errors import ApiError
from .idempotency import idempotent
from .listing import encode_cursor, filtered, ordered_page, parse_list_params
from .models import TASK_FIELDS, Task, User
from .validation import completed_toggle, json_body, task_fields

bp = Blueprint("tasks", __name__)

MAX_ID = 2**63 - 1


@bp.url_value_preprocessor
def pop_path_user(endpoint, values):
    """Keep the Phase II path's user id for the identity hook, out of the views' arguments."""
    if values and "path_user_id" in values:
        g.path_user_id = values.pop("path_user_id")


def task_json(row):
    """A task row (dict) as the API shows it."""
    return {
        "id": row["id"], "user_id": row["user"], "title": row["title"],
        "description": row["description"], "completed": row["completed"],
        "priority": row["priority"], "due_date": row["due_date"],
        "created_at": row["created_at"], "updated_at": row["updated_at"],
    }


def task_response(row, status=200, headers=None):
    """A task with its ETag (the version)."""
    return task_json(row), status, {"ETag": f'"{row["version"]}"', **(headers or {})}


def if_match_version():
    """The version named by `If-Match`, None when absent; 412 when it cannot match a task."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    tag = header.split(",")[0].strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    try:
        return int(tag.strip('"'))
    except ValueError:
        raise ApiError(412, "If-Match must be the task's ETag, e.g. \"3\".") from None


def get_task_or_404(task_id):
    """The caller's task `task_id` as a dict, or 404 (missing and not-yours look the same)."""
    row = (Task.owned(g.user_id, *TASK_FIELDS).where(Task.id == task_id).dicts().first()
           if task_id <= MAX_ID else None)
    if row is None:
        raise ApiError(404, f"Task {task_id} not found.")
    return row


def _changed_or_error(rows, task_id, expected_version):
    if rows:
        return rows[0]
    if expected_version is not None:
        current = get_task_or_404(task_id)
        raise ApiError(412, f"Task {task_id} has changed (now version {current['version']}).",
                       headers={"ETag": f'"{current["version"]}"'})
    raise ApiError(404, f"Task {task_id} not found.")


def _write(query, task_id):
    """Run an owner-scoped UPDATE/DELETE (from Task.update_owned/delete_owned) of one task,
    honouring If-Match; the changed row."""
    if task_id > MAX_ID:
        raise ApiError(404, f"Task {task_id} not found.")
    expected = if_match_version()
    query = query.where(Task.id == task_id)
    if expected is not None:
        query = query.where(Task.version == expected)
    return _changed_or_error(list(query.dicts().execute()), task_id, expected)


@bp.get("", strict_slashes=False)
def index():
    """List the caller's tasks: filters, sort, keyset cursor and total count."""
    params = parse_list_params(request.args)
    # The total rides along as a scalar subquery: one round trip for page and count.
    total = filtered(Task.owned(g.user_id, fn.COUNT(Task.id)), params)
    page = ordered_page(filtered(Task.owned(g.user_id, *TASK_FIELDS, total.alias("total")), params),
                        params)
    rows = list(page.dicts())
    if rows:
        count = rows[0]["total"]
    elif params.after is not None or params.offset:
        count = total.scalar()
    else:
        count = 0
    next_cursor = encode_cursor(params, rows[params.limit - 1]) if len(rows) > params.limit else None
    return {"tasks": [task_json(row) for row in rows[:params.limit]], "count": count,
            "next_cursor": next_cursor}


@bp.post("", strict_slashes=False)
@idempotent
def create():
    """Create a task for the caller; other body keys (even user_id, id) are ignored."""
    fields = task_fields(json_body(), creating=True)
    insert = Task.insert(user=g.user_id, **fields).returning(*TASK_FIELDS)
    try:
        row = list(insert.dicts().execute())[0]
    except IntegrityError:
        # The caller's row was removed by another process since this one cached it: heal, retry.
        claims = g.claims
        User.provision(claims["sub"], claims["email"], claims["name"])
        row = list(insert.dicts().execute())[0]
    return task_response(row, 201, {"Location": f"{request.path.rstrip('/')}/{row['id']}"})


@bp.get("/<int:task_id>")
def get(task_id):
    """One of the caller's tasks."""
    return task_response(get_task_or_404(task_id))


@bp.route("/<int:task_id>", methods=["PUT", "PATCH"])
def update(task_id):
    """Change the given fields of a task (PUT behaves as PATCH); 422 when none is given."""
    fields = task_fields(json_body(), creating=False)
    return task_response(_write(Task.update_owned(g.user_id, **fields).returning(*TASK_FIELDS), task_id))


@bp.patch("/<int:task_id>/complete")
def complete(task_id):
    """Toggle a task's completion, or set it with `{"completed": bool}`."""
    wanted = completed_toggle(json_body(required=False))
    value = ~Task.completed if wanted is None else wanted
    return task_response(_write(Task.update_owned(g.user_id, completed=value).returning(*TASK_FIELDS), task_id))


@bp.delete("/<int:task_id>")
def delete(task_id):
    """Delete a task."""
    row = _write(Task.delete_owned(g.user_id).returning(Task.id), task_id)
    return {"message": f"Task {row['id']} deleted.", "deleted_id": row["id"]}
