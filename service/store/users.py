"""The user store: provisioning from a token's claims, the caller's profile, its deletion.

Every function takes the user id the identity hook bound (the token's `sub`); there is no way to
name another user here.
"""
import contextlib
import threading
from collections import OrderedDict

from peewee import IntegrityError

from .. import fields
from ..db import database, query_cache
from ..db.models import User
from ..errors import ApiError


def user_json(user):
    """A User row as the API shows it."""
    return {field.name: getattr(user, field.name) for field in fields.USER if field.in_json}


def provision(claims):
    """Create the user's row from the token's claims unless it exists (race-safe); True when
    this call created it. An email already held by another account is left out rather than
    failing the sign-in."""
    email = claims["email"]
    for candidate in (email, None) if email else (None,):
        try:
            return bool(query_cache.rows(_provision_query, (), user=claims["sub"], email=candidate,
                                         name=claims["name"]))
        except IntegrityError:
            if candidate is None:
                raise
    return False  # pragma: no cover - the loop always returns or raises


def _provision_query(_shape, user, email, name):
    return (User.insert(id=user, email=email, name=name)
            .on_conflict(conflict_target=[User.id], action="IGNORE")
            .returning(User.id))


class KnownUsers:
    """User ids this process has seen provisioned, so the check costs nothing after the first
    request. Bounded; a stale entry (user deleted by another process) is healed where it
    matters (creating a task re-provisions on a foreign-key failure)."""

    def __init__(self, size=100_000):
        self._ids = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def __contains__(self, user_id):
        return user_id in self._ids

    def add(self, user_id):
        """Remember `user_id` as provisioned."""
        with self._lock:
            self._ids[user_id] = True
            while len(self._ids) > self._size:
                self._ids.popitem(last=False)

    def discard(self, user_id):
        """Forget `user_id` (deleted)."""
        with self._lock:
            self._ids.pop(user_id, None)


def ensure(claims, known):
    """Provision the caller on first sight in this process; True when this request created it."""
    if claims["sub"] in known:
        return False
    created = provision(claims)
    known.add(claims["sub"])
    return created


def get(user):
    """The user's row, or None when it was deleted."""
    return User.get_or_none(User.id == user)


def update(user, values):
    """Apply `values` to the user's row; 409 when the email belongs to someone else, None when
    the row is gone."""
    # Inside a transaction (an Idempotency-Key's), a failed UPDATE would abort it for whatever
    # follows; a savepoint keeps the failure to this statement.
    guard = database.savepoint() if database.in_transaction() else contextlib.nullcontext()
    try:
        with guard:
            rows = list(User.update(**values).where(User.id == user).returning(User).execute())
    except IntegrityError:
        raise ApiError(409, "That email address is already in use.",
                       errors=[{"field": "email", "message": "is already in use"}]) from None
    return rows[0] if rows else None


def delete(user):
    """Delete the user and, by cascade, everything they own; True when there was a row."""
    return bool(User.delete().where(User.id == user).execute())
