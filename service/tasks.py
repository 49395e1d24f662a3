"""/api/tasks and /api/{user_id}/tasks: a user's tasks.

Registered twice (see create_app): the Phase II family carries the user in the path, which the
identity hook compares with the token (403 on a mismatch). Every query starts from
`Task.owned(g.user_id)`; a task of someone else is indistinguishable from a missing one (404).
"""
import re

from flask import Blueprint, g, request
from peewee import IntegrityError

from .compiled import queries
from .errors import ApiError
from .idempotency import idempotent
from .jsonio import json_response
from .listing import list_page, list_params
from .models import TASK_FIELDS, TASK_ID, TASK_VERSION, Task, User, task_json
from .validation import completed_toggle, json_body, task_fields

bp = Blueprint("tasks", __name__)

MAX_ID = 2**63 - 1
MAX_VERSION = 2**31 - 1  # tasks.version is an integer column
NO_VERSION = -1  # versions start at 1


@bp.url_value_preprocessor
def pop_path_user(endpoint, values):
    """Keep the Phase II path's user id for the identity hook, out of the views' arguments."""
    if values and "path_user_id" in values:
        g.path_user_id = values.pop("path_user_id")


def task_response(row, status=200, headers=None):
    """A task with its ETag (the version)."""
    return json_response(task_json(row), status, {"ETag": f'"{row[TASK_VERSION]}"', **(headers or {})})


def if_match_versions():
    """The versions `If-Match` accepts: None when it is absent or `*` (any current task), else a
    tuple. Entity tags compare strongly (RFC 9110 13.1.1): a weak tag (`W/"3"`) or one that is not
    a version matches nothing, and a list matches when any of its tags does. Nothing matching, the
    write answers 412 (404 when the task is missing, RFC 9110 13.2.2)."""
    header = request.headers.get("If-Match")
    if header is None:
        return None
    tags = [tag.strip() for tag in header.split(",")]
    if "*" in tags:
        return None
    versions = []
    for tag in tags:
        match = _VERSION_TAG.fullmatch(tag)
        if match and (version := int(match[1] or match[2])) <= MAX_VERSION:
            versions.append(version)
    return tuple(versions)


_VERSION_TAG = re.compile(r'"([0-9]{1,10})"|([0-9]{1,10})', re.ASCII)  # "3", or a bare 3


def get_task_or_404(task_id):
    """The caller's task `task_id` as a row, or 404 (missing and not-yours look the same)."""
    rows = (queries.rows("get", _get_query, user=g.user_id, task_id=task_id, tuples=True)
            if task_id <= MAX_ID else None)
    if not rows:
        raise ApiError(404, f"Task {task_id} not found.")
    return rows[0]


def _get_query(user, task_id):
    return Task.owned(user, *TASK_FIELDS).where(Task.id == task_id).limit(1)


def _changed_or_error(rows, task_id, expected_version):
    if rows:
        return rows[0]
    if expected_version is not None:
        current = get_task_or_404(task_id)
        raise ApiError(412, f"Task {task_id} has changed (now version {current[TASK_VERSION]}).",
                       headers={"ETag": f'"{current[TASK_VERSION]}"'})
    raise ApiError(404, f"Task {task_id} not found.")


def _write(shape, build, task_id, **values):
    """Run an owner-scoped UPDATE/DELETE of one task, `build(user, **values)` (from
    Task.update_owned/delete_owned), honouring If-Match; the changed row. `shape` names the
    statement for the compiled-query cache (see compiled.py)."""
    if task_id > MAX_ID:
        raise ApiError(404, f"Task {task_id} not found.")
    versions = if_match_versions()
    # One version (the usual If-Match) is a value like any other, compiled once; a list is rare
    # and built per request (compiled.py does not stand in for tuples).
    expected = None if versions is None else versions[0] if len(versions) == 1 else versions or NO_VERSION

    def one_task(user, task_id, expected, **values):
        query = build(user, **values).where(Task.id == task_id)
        if isinstance(expected, tuple):
            query = query.where(Task.version.in_(expected))
        elif expected is not None:
            query = query.where(Task.version == expected)
        return query

    rows = queries.rows(shape, one_task, user=g.user_id, task_id=task_id, expected=expected, tuples=True,
                        **values)
    return _changed_or_error(rows, task_id, expected)


@bp.get("", strict_slashes=False)
def index():
    """List the caller's tasks: filters, sort, keyset cursor and total count (see listing.py)."""
    return json_response(list_page(list_params(request), g.user_id))


@bp.post("", strict_slashes=False)
@idempotent
def create():
    """Create a task for the caller; other body keys (even user_id, id) are ignored."""
    fields = task_fields(json_body(), creating=True)
    shape = ("create", *sorted(fields))
    try:
        row = queries.rows(shape, _insert_query, user=g.user_id, tuples=True, **fields)[0]
    except IntegrityError:
        # The caller's row was removed by another process since this one cached it: heal, retry.
        claims = g.claims
        User.provision(claims["sub"], claims["email"], claims["name"])
        row = queries.rows(shape, _insert_query, user=g.user_id, tuples=True, **fields)[0]
    return task_response(row, 201, {"Location": f"{request.path.rstrip('/')}/{row[TASK_ID]}"})


def _insert_query(user, **fields):
    return Task.insert(user=user, **fields).returning(*TASK_FIELDS)


@bp.get("/<int:task_id>")
def get(task_id):
    """One of the caller's tasks."""
    return task_response(get_task_or_404(task_id))


@bp.route("/<int:task_id>", methods=["PUT", "PATCH"])
def update(task_id):
    """Change the given fields of a task (PUT behaves as PATCH); 422 when none is given."""
    fields = task_fields(json_body(), creating=False)
    return task_response(_write(("update", *sorted(fields)), _update_query, task_id, **fields))


def _update_query(user, **fields):
    return Task.update_owned(user, **fields).returning(*TASK_FIELDS)


@bp.patch("/<int:task_id>/complete")
def complete(task_id):
    """Toggle a task's completion, or set it with `{"completed": bool}`."""
    wanted = completed_toggle(json_body(required=False))
    return task_response(_write("complete", _complete_query, task_id, completed=wanted))


def _complete_query(user, completed):
    value = ~Task.completed if completed is None else completed
    return Task.update_owned(user, completed=value).returning(*TASK_FIELDS)


@bp.delete("/<int:task_id>")
def delete(task_id):
    """Delete a task."""
    row = _write("delete", _delete_query, task_id)
    return json_response({"message": f"Task {row[TASK_ID]} deleted.", "deleted_id": row[TASK_ID]})


def _delete_query(user):
    return Task.delete_owned(user).returning(Task.id)
