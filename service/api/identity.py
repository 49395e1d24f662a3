"""Identity, in one step: the API blueprint's hook verifies the bearer token, checks the user in
a Phase II path against it, binds that user's scope and opens the connection, all before the
view runs; its teardown gives the connection back. Rejections happen before any database work
and never echo the token.

With read replicas (DATABASE_REPLICA_URLS), a safe request of a known user may be served by a
replica (db/replicas.py decides which, if any); everything else runs on the primary, and a
request that may have written notes the primary's WAL position for its user's next reads.
"""
import functools

from flask import current_app, g, request
from peewee import InterfaceError, OperationalError

from ..db import database
from ..errors import ApiError
from ..store import users
from ..tokens import InvalidToken

SAFE_METHODS = frozenset({"GET", "HEAD"})  # what a replica may serve


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
    known = current_app.extensions["known_users"]
    # A newcomer's first request provisions their row, a write: it runs on the primary, and so
    # does its read, which must see that row.
    database.open_for(g.user_id, read_only=request.method in SAFE_METHODS and g.user_id in known)
    g.user_created = users.ensure(claims, known)


def release(_error=None):
    """teardown of the API: the connection goes back to the pool, the scope is dropped. It runs
    before the response's body is sent, so a write's position is noted before the client can
    send its next request."""
    database.release(wrote=request.method not in SAFE_METHODS or g.get("user_created", False))


def retry_reads_on_primary(app, blueprints):
    """Wrap every view of the API's blueprints (their registration names; whatever routes they
    gain): a read that a replica failed (it stopped, a recovery conflict cancelled it) is redone
    once on the primary, so a replica's trouble never reaches the client."""
    prefixes = tuple(f"{name}." for name in blueprints)
    for endpoint, view in list(app.view_functions.items()):
        if endpoint.startswith(prefixes):
            app.view_functions[endpoint] = _redone_on_primary(view)


def _redone_on_primary(view):
    @functools.wraps(view)
    def redone(**view_args):
        try:
            return view(**view_args)
        except (OperationalError, InterfaceError):
            if not database.on_replica():
                raise
            database.fall_back_to_primary()
            return view(**view_args)

    return redone
