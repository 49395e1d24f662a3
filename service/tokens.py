"""Bearer-token verification, apart from Flask: a token in, its claims (or InvalidToken) out.

Tokens are verified by the algorithm their header names, and only against keys of that family:
asymmetric tokens (Better Auth's jwt plugin) against the JWKS, HMAC tokens against
BETTER_AUTH_SECRET. A JWKS key can never verify an HMAC token, nor the secret an asymmetric one.
Verified tokens are remembered until they expire; a remembered JWKS token is trusted only while
its key is still published, so a withdrawn key stops working at the next JWKS refresh.
"""
import functools
import json
import logging
import threading
import time
import urllib.request

import jwt

from . import instruments
from .fields import NAME_MAX, USER_ID_MAX, valid_email

log = logging.getLogger("service.tokens")

JWKS_ALGORITHMS = frozenset({"EdDSA", "ES256", "ES512", "RS256", "PS256"})
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
MAX_TOKEN_BYTES = 8192
MAX_KID_LENGTH = 256
LEEWAY_SECONDS = 30


class InvalidToken(Exception):
    """The token was rejected; the message says why, without the token."""


class KeySet:
    """One fetched JWKS: its keys by `kid`, and the keys parsed from them (filled as used).
    Replaced whole by each fetch, so a reader holding the old set can never write a withdrawn
    key into the new one."""

    def __init__(self, jwks=None):
        self.jwks = jwks or {}
        self.parsed = {}


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
        self._set = KeySet()
        self._fetched_at = None
        self._budget = float(burst)
        self._budget_at = time.monotonic()
        self._lock = threading.Lock()

    def current(self):
        """The key set to trust now (refetched first when it is older than `max_age`)."""
        if self._fetched_at is not None and time.monotonic() - self._fetched_at >= self.max_age:
            self._refresh_stale()
        return self._set

    def publishes(self, kid, jwk):
        """True while the current key set still holds `kid` as the key `jwk` (for tokens verified
        earlier: a withdrawn key, or other key material published under the same `kid`, fails)."""
        return self.current().jwks.get(kid) == jwk

    def key(self, kid, algorithm):
        """(the public key for `kid` usable with `algorithm`, its JWK), or InvalidToken."""
        keys = self.current()
        jwk = keys.jwks.get(kid)
        if jwk is None:
            keys = self._refresh_for(kid)
            jwk = keys.jwks[kid]
        if "alg" in jwk and jwk["alg"] != algorithm:
            raise InvalidToken("the token's algorithm does not match its key")
        parsed = keys.parsed.get((kid, algorithm))
        if parsed is None:
            try:
                parsed = keys.parsed[(kid, algorithm)] = jwt.PyJWK(jwk, algorithm).key
            except jwt.PyJWTError:
                raise InvalidToken("the token's algorithm does not match its key") from None
        return parsed, jwk

    def _refresh_for(self, kid):
        with self._lock:
            if kid not in self._set.jwks and self._take_fetch():
                self._fetch()
            if kid not in self._set.jwks:
                raise InvalidToken("the token's signing key is unknown")
            return self._set

    def _refresh_stale(self):
        # Only one request refreshes; if another is fetching already, go on with the cached keys.
        if self._lock.acquire(blocking=False):
            try:
                if time.monotonic() - self._fetched_at >= self.max_age:
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
            log.warning("could not fetch the JWKS from %s", self.url)
            instruments.JWKS_FETCHES.labels("failed").inc()
            return
        instruments.JWKS_FETCHES.labels("ok").inc()
        self._set = KeySet(keys)


class TokenVerifier:
    """Verifies bearer tokens for one configuration; remembers verified ones until they expire."""

    def __init__(self, config, cache_size=10_000):
        self.config = config
        self.jwks = JwksKeys(config.jwks_url, config.jwks_min_refresh_seconds) if config.jwks_url else None
        self._verified = functools.lru_cache(maxsize=cache_size)(self._decode)
        self._decoded = threading.local()  # set by _decode: this thread's lookup missed the cache

    def verify(self, token):
        """The claims of a valid token, else InvalidToken."""
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken("the token is too large")
        self._decoded.now = False
        claims = self._verified(token)
        (instruments.TOKEN_CACHE_MISS if self._decoded.now else instruments.TOKEN_CACHE_HIT).inc()
        # A remembered token is checked again for what can change: the clock, and its key.
        if claims["exp"] + LEEWAY_SECONDS <= time.time():
            raise InvalidToken("the token has expired")
        if claims["kid"] is not None and not self.jwks.publishes(claims["kid"], claims["jwk"]):
            raise InvalidToken("the token's signing key was withdrawn")
        return claims

    def _decode(self, token):
        self._decoded.now = True
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the token is malformed") from None
        algorithm = header.get("alg")
        options = {"require": ["exp", "sub"]}
        if algorithm in JWKS_ALGORITHMS:
            key, jwk = self._jwks_key(header, algorithm)
            issuer, audience = self.config.jwks_issuer, self.config.jwks_audience
        elif algorithm in HMAC_ALGORITHMS:
            if not self.config.better_auth_secret:
                raise InvalidToken("HMAC tokens are not accepted (BETTER_AUTH_SECRET is unset)")
            key, jwk = self.config.better_auth_secret, None
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
        if not isinstance(sub, str) or not sub.strip() or len(sub) > USER_ID_MAX or "\x00" in sub:
            raise InvalidToken("the token's subject is missing or invalid")
        name = claims.get("name")
        return {
            "sub": sub,
            "email": valid_email(claims.get("email")),
            "name": name[:NAME_MAX] if isinstance(name, str) and "\x00" not in name else None,
            "exp": int(claims["exp"]),  # PyJWT also accepts "exp": "1700000000"; the cache compares numbers
            "kid": header["kid"] if jwk is not None else None,
            "jwk": jwk,  # the key that verified it (None: the shared secret)
        }

    def _jwks_key(self, header, algorithm):
        if self.jwks is None:
            raise InvalidToken("JWKS tokens are not accepted (no JWKS_URL or BETTER_AUTH_URL)")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
            raise InvalidToken("the token's key id is missing or invalid")
        return self.jwks.key(kid, algorithm)
