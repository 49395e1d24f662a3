"""The identity hook: verify the caller's bearer token and bind its `sub` for the request.

Tokens are verified by the algorithm their header names, and only against keys of that family:
asymmetric tokens (Better Auth's jwt plugin) against the JWKS, HMAC tokens against
BETTER_AUTH_SECRET. A JWKS key can never verify an HMAC token, nor the secret an asymmetric one.
All of this happens before any database work; a rejection is a 401 that never echoes the token.
"""
import json
import threading
import time
import urllib.request
from collections import OrderedDict

import jwt
from flask import current_app, g, request

from .db import database
from .errors import ApiError
from .models import User
from .validation import valid_email

JWKS_ALGORITHMS = frozenset({"EdDSA", "ES256", "ES512", "RS256", "PS256"})
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
MAX_TOKEN_BYTES = 8192
MAX_KID_LENGTH = 256
LEEWAY_SECONDS = 30


class InvalidToken(Exception):
    """The token was rejected; the message says why, without the token."""


class JwksKeys:
    """The JWKS keys, cached by `kid`. An unknown `kid` refreshes the set (one fetch at a time)
    while the fetch budget allows: `burst` fetches at once, refilled at one per `min_refresh`
    seconds. So a rotated key is found at once, even moments after the previous fetch (a plain
    cooldown would reject it), while a flood of made-up `kid`s costs at most `burst` fetches
    plus one per `min_refresh` seconds. The set is also refetched once it is `max_age` seconds
    old (by one request, the others keep using the cached keys meanwhile), so a key the identity
    provider withdraws (compromised, past its grace period) stops being trusted without a restart."""

    def __init__(self, url, min_refresh=1.0, fetch_timeout=5.0, burst=3, max_age=300.0):
        self.url = url
        self.min_refresh = min_refresh
        self.fetch_timeout = fetch_timeout
        self.burst = burst
        self.max_age = max_age
        self.fetches = 0
        self._jwks = {}
        self._keys = {}
        self._fetched_at = None
        self._budget = float(burst)
        self._budget_at = time.monotonic()
        self._lock = threading.Lock()

    def key(self, kid, algorithm):
        """The public key for `kid` usable with `algorithm`, or InvalidToken."""
        if self._is_stale():
            self._refresh_stale()
        jwk = self._jwks.get(kid)
        if jwk is None:
            jwk = self._refresh_for(kid)
        if "alg" in jwk and jwk["alg"] != algorithm:
            raise InvalidToken("the token's algorithm does not match its key")
        cache_key = (kid, algorithm)
        if cache_key not in self._keys:
            try:
                self._keys[cache_key] = jwt.PyJWK(jwk, algorithm).key
            except jwt.PyJWTError:
                raise InvalidToken("the token's algorithm does not match its key") from None
        return self._keys[cache_key]

    def _refresh_for(self, kid):
        with self._lock:
            if kid not in self._jwks and self._take_fetch():
                self._fetch()
            if kid not in self._jwks:
                raise InvalidToken("the token's signing key is unknown")
            return self._jwks[kid]

    def _is_stale(self):
        return self._fetched_at is not None and time.monotonic() - self._fetched_at >= self.max_age

    def _refresh_stale(self):
        # Only one request refreshes; if another is fetching already, go on with the cached keys.
        if self._lock.acquire(blocking=False):
            try:
                if self._is_stale():
                    self._fetch()
            finally:
                self._lock.release()

    def _take_fetch(self):
        """Spend one fetch from the budget if there is one (called under the lock)."""
        if self.min_refresh <= 0:
            return True
        now = time.monotonic()
        self._budget = min(float(self.burst), self._budget + (now - self._budget_at) / self.min_refresh)
        self._budget_at = now
        if self._budget < 1:
            return False
        self._budget -= 1
        return True

    def _fetch(self):
        self._fetched_at = time.monotonic()  # a failed fetch counts too: no retry storm
        self.fetches += 1
        try:
            with urllib.request.urlopen(self.url, timeout=self.fetch_timeout) as response:  # noqa: S310 - URL from config, http(s) only
                document = json.load(response)
            keys = {k["kid"]: k for k in document["keys"] if isinstance(k, dict) and isinstance(k.get("kid"), str)}
        except Exception:  # noqa: BLE001 - any failure to fetch leaves the cached keys in place
            current_app.logger.warning("could not fetch the JWKS from %s", self.url)
            return
        self._jwks = keys
        self._keys = {}


class TokenVerifier:
    """Verifies bearer tokens for one configuration; remembers verified ones until they expire."""

    def __init__(self, config, cache_size=10_000):
        self.config = config
        self.jwks = JwksKeys(config.jwks_url, config.jwks_min_refresh_seconds) if config.jwks_url else None
        self._verified = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def verify(self, token):
        """The claims of a valid token, else InvalidToken."""
        cached = self._verified.get(token)
        if cached is not None and cached["exp"] > time.time():
            return cached
        claims = self._decode(token)
        with self._lock:
            self._verified[token] = claims
            while len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return claims

    def _decode(self, token):
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken("the token is too large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the token is malformed") from None
        algorithm = header.get("alg")
        options = {"require": ["exp", "sub"]}
        if algorithm in JWKS_ALGORITHMS:
            key = self._jwks_key(header, algorithm)
            issuer, audience = self.config.jwks_issuer, self.config.jwks_audience
        elif algorithm in HMAC_ALGORITHMS:
            if not self.config.better_auth_secret:
                raise InvalidToken("HMAC tokens are not accepted (BETTER_AUTH_SECRET is unset)")
            key = self.config.better_auth_secret
            issuer, audience = self.config.jwt_issuer, self.config.jwt_audience
        else:
            raise InvalidToken("the token's algorithm is not accepted")
        if audience is None:
            options["verify_aud"] = False
        try:
            claims = jwt.decode(token, key, algorithms=[algorithm], audience=audience, issuer=issuer,
                                options=options, leeway=LEEWAY_SECONDS)
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("the token is not valid yet") from None
        except jwt.MissingRequiredClaimError as error:
            raise InvalidToken(f"the token lacks the {error.claim!r} claim") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("the token's audience is not this service") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("the token's issuer is not trusted") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("the token's signature is invalid") from None
        except jwt.PyJWTError:
            raise InvalidToken("the token is invalid") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.strip() or len(sub) > 255 or "\x00" in sub:
            raise InvalidToken("the token's subject is missing or invalid")
        name = claims.get("name")
        return {
            "sub": sub,
            "email": valid_email(claims.get("email")),
            "name": name[:255] if isinstance(name, str) and "\x00" not in name else None,
            "exp": int(claims["exp"]),  # PyJWT also accepts "exp": "1700000000"; the cache compares numbers
        }

    def _jwks_key(self, header, algorithm):
        if self.jwks is None:
            raise InvalidToken("JWKS tokens are not accepted (no JWKS_URL or BETTER_AUTH_URL)")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
            raise InvalidToken("the token's key id is missing or invalid")
        return self.jwks.key(kid, algorithm)


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


def unauthorized(detail, token_given):
    """The 401 for a missing or rejected token."""
    challenge = 'Bearer realm="todo"'
    if token_given:
        challenge += f', error="invalid_token", error_description="{detail}"'
    return ApiError(401, detail, headers={"WWW-Authenticate": challenge})


def bearer_token(req):
    """The token in `req`'s `Authorization: Bearer ...`, or a 401."""
    header = req.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise unauthorized("Authentication required: send Authorization: Bearer <token>.", False)
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("The Authorization header must be 'Bearer <token>'.", True)
    return token.strip()


def ensure_user(claims, known):
    """Provision the caller's row on first sight (`known`: the KnownUsers); True when this
    request created it."""
    if claims["sub"] in known:
        return False
    created = User.provision(claims["sub"], claims["email"], claims["name"])
    known.add(claims["sub"])
    return created


def authenticate():
    """before_request of the API: verify the token, bind the user, open the connection."""
    # Runs on every API request: the context objects are looked up once, not per attribute.
    req, ctx_g, app = request._get_current_object(), g._get_current_object(), current_app._get_current_object()
    if req.method == "OPTIONS":
        return
    token = bearer_token(req)
    try:
        claims = app.extensions["token_verifier"].verify(token)
    except InvalidToken as error:
        raise unauthorized(f"Invalid token: {error}.", True) from None
    user_id = claims["sub"]
    ctx_g.claims = claims
    ctx_g.user_id = user_id
    path_user = ctx_g.get("path_user_id")
    if path_user is not None and path_user != user_id:
        raise ApiError(403, "The user in the path is not the signed-in user.")
    db = database.obj
    db.bind_user(user_id)
    db.connect(reuse_if_open=True)
    ctx_g.user_created = ensure_user(claims, app.extensions["known_users"])
