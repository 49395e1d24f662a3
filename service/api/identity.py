"""Identity, in one step: the API blueprint's hook verifies the bearer token, checks the user in
a Phase II path against it, binds that user's scope and opens the connection, all before the
view runs; its teardown gives the connection back. Rejections happen before any database work
and never echo the token.
"""
from flask import current_app, g, request

from ..db import database
from ..errors import ApiError
from ..store import users
from ..tokens import InvalidToken


def unauthorized(detail, token_given):
    """The 401 for a missing or rejected token."""
    challenge = 'Bearer realm="todo"'
    if token_given:
        challenge += f', error="invalid_token", error_description="{detail}"'
    return ApiError(401, detail, headers={"WWW-Authenticate": challenge},
                    code="invalid_token" if token_given else "unauthorized")


def bearer_token():
    """The token in `Authorization: Bearer ...`, or a 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise unauthorized("Authentication required: send Authorization: Bearer <token>.", False)
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("The Authorization header must be 'Bearer <token>'.", True)
    return token.strip()


def identify():
    """before_request of the API: the token's `sub` becomes g.user_id, the scope of every query."""
    if request.method == "OPTIONS":
        return
    try:
        claims = current_app.extensions["token_verifier"].verify(bearer_token())
    except InvalidToken as error:
        raise unauthorized(f"Invalid token: {error}.", True) from None
    # The Phase II family carries the user in the path; the views never see it.
    path_user = request.view_args.pop("path_user_id", None) if request.view_args else None
    if path_user is not None and path_user != claims["sub"]:
        raise ApiError(403, "The user in the path is not the signed-in user.")
    g.claims, g.user_id = claims, claims["sub"]
    database.open_for(g.user_id)
    g.user_created = users.ensure(claims, current_app.extensions["known_users"])


def release(_error=None):
    """teardown of the API: the connection goes back to the pool, the scope is dropped."""
    database.release()
