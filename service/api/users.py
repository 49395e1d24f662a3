"""/api/users: the caller's own profile. Any other user's id answers 404."""
from datetime import UTC, datetime

from flask import Blueprint, current_app, g

from ..errors import ApiError
from ..fields import PROFILE_EDIT_FIELDS, PROFILE_SYNC_FIELDS
from ..idempotency import idempotent
from ..jsonio import json_array, json_response
from ..store import export, users
from ..validation import json_body, user_body

bp = Blueprint("users", __name__)
profile = Blueprint("profile", __name__)  # /api/{user_id}/profile: the caller's users/me


def gone():
    """The 404 for a caller whose row was deleted meanwhile (forgotten as provisioned)."""
    current_app.extensions["known_users"].discard(g.user_id)
    return ApiError(404, "Your user was deleted; sign in again to start afresh.")


def me_or_404():
    """The caller's row (provisioned by the identity hook), or 404 if it was deleted meanwhile."""
    user = users.get(g.user_id)
    if user is None:
        raise gone()
    return user


def saved(values):
    """The caller's row after applying `values`, or 404."""
    user = users.update(g.user_id, values)
    if user is None:
        raise gone()
    return user


@bp.post("", strict_slashes=False)
@idempotent
def create():
    """Provision or sync the caller's profile from the token; 201 when the row is new."""
    values = user_body(json_body(required=False), only=PROFILE_SYNC_FIELDS)
    created = g.user_created
    if not created and users.provision(g.claims):
        created = True
        current_app.extensions["known_users"].add(g.user_id)
    sync = {k: v for k, v in (("email", g.claims["email"]), ("name", g.claims["name"])) if v}
    sync.update(values)
    if sync and not created:
        try:
            user = saved(sync)
        except ApiError as error:  # the token's email is held by another account: keep ours
            if error.status != 409:
                raise
            sync.pop("email", None)
            user = saved(sync) if sync else me_or_404()
    else:
        user = saved(values) if values else me_or_404()
    return json_response(users.user_json(user), 201 if created else 200)


@profile.get("", strict_slashes=False)
@bp.get("/me")
def me():
    """The caller's profile."""
    return json_response(users.user_json(me_or_404()))


@profile.route("", methods=["PUT", "PATCH"], strict_slashes=False)
@bp.patch("/me")
def update_me():
    """Change the caller's `name`, `email` and/or `timezone` (PUT on the profile is partial too)."""
    return json_response(users.user_json(saved(user_body(json_body(), only=PROFILE_EDIT_FIELDS, nonempty=True))))


@bp.delete("/me")
def delete_me():
    """Delete the caller and, by cascade, all their tasks."""
    deleted = users.delete(g.user_id)
    current_app.extensions["known_users"].discard(g.user_id)
    if not deleted:
        raise ApiError(404, "Your user was already deleted.")
    return json_response({"message": "User and all their tasks deleted.", "deleted_id": g.user_id})


@bp.get("/me/export")
def export_me():
    """The caller's profile and every task, as a JSON download."""
    user, tags, tasks = export.user_export(g.user_id)
    if user is None:
        raise gone()
    stamp = datetime.now(UTC)
    body = {"exported_at": stamp, "user": users.user_json(user), "tags": json_array(tags),
            "tasks": json_array(tasks)}
    filename = f"todo-export-{stamp:%Y%m%dT%H%M%SZ}.json"
    return json_response(body, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.get("/<user_id>")
def get(user_id):
    """A user by id: only the caller's own; any other id is 404 (existence is not leaked)."""
    if user_id != g.user_id:
        raise ApiError(404, "No such user.")
    return json_response(users.user_json(me_or_404()))
