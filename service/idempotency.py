"""`Idempotency-Key` on creates: the same key and user within 24 hours replays the first answer.

The key row is inserted in the same transaction as the create. A concurrent duplicate blocks on
that row's unique index entry until the first commits, then finds the stored answer and replays
it; if the first failed and rolled back, the duplicate proceeds as a first request.
"""
import functools
import hashlib

from flask import g, make_response, request
from peewee import SQL, IntegrityError

from . import instruments
from .db import database
from .db.models import IdempotencyKey
from .errors import ApiError, field_error
from .store import users

TTL = "24 hours"
MAX_KEY_LENGTH = 255


def _request_hash(view):
    # The view, not the URL: both task families share one key space.
    digest = hashlib.sha256(f"{view.__module__}.{view.__name__}\n".encode())
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _claim(key, request_hash):
    """Insert (or take over an expired) key row; True when this request owns it now."""
    expired = IdempotencyKey.created_at < SQL(f"now() - interval '{TTL}'")
    query = (IdempotencyKey.insert(user=g.user_id, key=key, request_hash=request_hash)
             .on_conflict(conflict_target=[IdempotencyKey.user, IdempotencyKey.key],
                          update={IdempotencyKey.request_hash: request_hash,
                                  IdempotencyKey.status: None, IdempotencyKey.body: None,
                                  IdempotencyKey.location: None, IdempotencyKey.etag: None,
                                  IdempotencyKey.created_at: SQL("now()")},
                          where=expired)
             .returning(IdempotencyKey.key))
    return bool(list(query.execute()))


def _replay(key, request_hash):
    stored = IdempotencyKey.get((IdempotencyKey.user == g.user_id) & (IdempotencyKey.key == key))
    if stored.request_hash != request_hash:
        raise ApiError(422, "This Idempotency-Key was used with a different request.",
                       errors=[{"field": "Idempotency-Key", "message": "reused with another body"}])
    response = make_response(stored.body, stored.status)
    response.mimetype = "application/json"
    for header, value in (("Location", stored.location), ("ETag", stored.etag)):
        if value:
            response.headers[header] = value
    response.headers["Idempotent-Replayed"] = "true"
    instruments.IDEMPOTENT_REPLAYS.inc()
    return response


def idempotent(view):
    """Make a create view replay its first answer for a repeated `Idempotency-Key`."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return view(*args, **kwargs)
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
            raise field_error("Idempotency-Key", f"must be 1..{MAX_KEY_LENGTH} characters")
        request_hash = _request_hash(view)
        try:
            return _claim_and_run(view, args, kwargs, key, request_hash)
        except IntegrityError:
            # The key row references the user's row. If another process deleted the user since
            # this one cached it as provisioned, the claim fails and takes the transaction down
            # with it: provision again and run the request afresh, once.
            if not _reprovision():
                raise
            return _claim_and_run(view, args, kwargs, key, request_hash)

    return wrapper


def _claim_and_run(view, args, kwargs, key, request_hash):
    """Claim the key and run the view in one transaction, or replay the stored answer."""
    with database.atomic():
        if not _claim(key, request_hash):
            return _replay(key, request_hash)
        response = make_response(view(*args, **kwargs))
        (IdempotencyKey.update(status=response.status_code, body=response.get_data(as_text=True),
                               location=response.headers.get("Location"),
                               etag=response.headers.get("ETag"))
         .where(IdempotencyKey.user == g.user_id, IdempotencyKey.key == key).execute())
    return response


def _reprovision():
    """Create the caller's row if it is missing; True when it was (the request then counts as
    the one that created it)."""
    if not users.provision(g.claims):
        return False
    g.user_created = True
    return True
