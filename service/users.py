"""/api/users: the caller's own profile. Any other user's id answers 404."""
import contextlib
from datetime import UTC, datetime

from flask import Blueprint, current_app, g
from peewee import IntegrityError

from .db import database
from .errors import ApiError
from .idempotency import idempotent
from .models import TASK_FIELDS, Task, User, task_json
from .validation import json_body, user_fields

bp = Blueprint("users", __name__)


def current_user_or_404():
    """The caller's row (provisioned by the identity hook), or 404 if it was deleted meanwhile."""
    user = User.get_or_none(User.id == g.user_id)
    if user is None:
        current_app.extensions["known_users"].discard(g.user_id)
        raise ApiError(404, "Your user was deleted; sign in again to start afresh.")
    return user


def _save(user_id, fields):
    """Apply `fields` to the caller's row; 409 when the email belongs to someone else."""
    # Inside a transaction (an Idempotency-Key's), a failed UPDATE would abort it for whatever
    # follows; a savepoint keeps the failure to this statement.
    guard = database.savepoint() if database.in_transaction() else contextlib.nullcontext()
    try:
        with guard:
            rows = list(User.update(**fields).where(User.id == user_id).returning(User).execute())
    except IntegrityError:
        raise ApiError(409, "That email address is already in use.",
                       errors=[{"field": "email", "message": "is already in use"}]) from None
    if not rows:
        raise ApiError(404, "Your user was deleted; sign in again to start afresh.")
    return rows[0]


@bp.post("", strict_slashes=False)
@idempotent
def create():
    """Provision or sync the caller's profile from the token; 201 when the row is new."""
    fields = user_fields(json_body(required=False), allow_email=False)
    created = g.user_created
    if not created and User.provision(g.user_id, g.claims["email"], g.claims["name"]):
        created = True
        current_app.extensions["known_users"].add(g.user_id)
    sync = {k: v for k, v in (("email", g.claims["email"]), ("name", g.claims["name"])) if v}
    sync.update(fields)
    if sync and not created:
        try:
            user = _save(g.user_id, sync)
        except ApiError:  # the token's email is held by another account: keep ours
            sync.pop("email", None)
            user = _save(g.user_id, sync) if sync else current_user_or_404()
    elif fields:
        user = _save(g.user_id, fields)
    else:
        user = current_user_or_404()
    return user.to_dict(), 201 if created else 200


@bp.get("/me")
def me():
    """The caller's profile."""
    return current_user_or_404().to_dict()


@bp.patch("/me")
def update_me():
    """Change the caller's `name` and/or `email`."""
    fields = user_fields(json_body(), allow_email=True)
    if not fields:
        raise ApiError(422, "Nothing to update.",
                       errors=[{"field": "body", "message": "give name and/or email"}])
    return _save(g.user_id, fields).to_dict()


@bp.delete("/me")
def delete_me():
    """Delete the caller and, by cascade, all their tasks."""
    deleted = User.delete().where(User.id == g.user_id).execute()
    current_app.extensions["known_users"].discard(g.user_id)
    if not deleted:
        raise ApiError(404, "Your user was already deleted.")
    return {"message": "User and all their tasks deleted.", "deleted_id": g.user_id}


@bp.get("/me/export")
def export_me():
    """The caller's profile and every task, as a JSON download."""
    with database.atomic():  # one snapshot: the tasks match the profile
        user = current_user_or_404()
        tasks = [task_json(row) for row in
                 Task.owned(g.user_id, *TASK_FIELDS).order_by(Task.id).tuples()]
    stamp = datetime.now(UTC)
    body = {"exported_at": stamp, "user": user.to_dict(), "tasks": tasks}
    filename = f"todo-export-{stamp:%Y%m%dT%H%M%SZ}.json"
    return body, 200, {"Content-Disposition": f'attachment; filename="{filename}"'}


@bp.get("/<user_id>")
def get(user_id):
    """A user by id: only the caller's own; any other id is 404 (existence is not leaked)."""
    if user_id != g.user_id:
        raise ApiError(404, "No such user.")
    return current_user_or_404().to_dict()


