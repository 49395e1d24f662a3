"""Identity (contract section 2), with real keys and a real JWKS endpoint.

Ed25519, RSA (RS256, PS256) and EC (P-256, P-521) keys are minted per run; a loopback HTTP server
publishes their JWKS at /api/auth/jwks, and the service is built with BETTER_AUTH_URL pointing at
it, so JWKS_URL, JWT_ISSUER and JWT_AUDIENCE take their defaults. Every rejected token must be a
401 with `WWW-Authenticate: Bearer ... error="invalid_token"`, a problem body that does not echo
the token, and no SQL at all (counted on the app's database object).
"""
import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from service.tokens import InvalidToken
from tests.conftest import SECRET, RoundTrips, make_token
from tests.jwks_server import (
    DROP,
    JwksServer,
    SigningKey,
    better_auth_claims,
    better_auth_token,
    jwks_app,
    own_app,
)

ACCEPTED = ["EdDSA", "RS256", "PS256", "ES256", "ES512"]
UNLISTED = ["ES384", "RS512", "PS384"]
ORIGIN = "http://localhost:3000"  # in CORS_ORIGINS of the test configuration


# Fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keys():
    """One key per algorithm, minted once for the module (RSA generation is the slow part)."""
    return {alg: SigningKey.generate(alg) for alg in ACCEPTED + UNLISTED}


@pytest.fixture
def jwks(keys):
    """A JWKS endpoint publishing every key (the unlisted ones too, so only the algorithm
    list can be what rejects them)."""
    with JwksServer(*keys.values()) as server:
        yield server


@pytest.fixture
def auth_app(jwks, database_url):
    """The service trusting `jwks`, with a fresh key cache."""
    with jwks_app(jwks, database_url) as app:
        yield app


@pytest.fixture
def auth_client(auth_app):
    return auth_app.test_client()


@pytest.fixture
def sql(auth_app):
    """Counts the SQL round trips of `auth_app`."""
    return RoundTrips(auth_app.extensions["database"])


def new_user():
    return f"ba-{uuid.uuid4().hex[:16]}"


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def b64(data):
    if not isinstance(data, bytes):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header, claims, signature=b""):
    """A JWT assembled by hand (for what PyJWT refuses to produce)."""
    return f"{b64(header)}.{b64(claims)}.{b64(signature) if signature else ''}"


def hs256_with(secret, header, claims):
    """An HS256 token whose HMAC key is `secret` (bytes), assembled by hand."""
    signing_input = f"{b64(header)}.{b64(claims)}".encode()
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{b64(signature)}"


def assert_rejected(response, token):
    """401, the challenge names invalid_token, problem+json, and the token is not echoed."""
    assert response.status_code == 401, response.get_data(as_text=True)
    challenge = response.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("Bearer"), challenge
    assert 'error="invalid_token"' in challenge, challenge
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == 401 and problem["detail"]
    text = response.get_data(as_text=True) + challenge
    for segment in token.split("."):
        if len(segment) >= 8:
            assert segment not in text, "the response echoes the token"


@contextlib.contextmanager
def counting_checkouts(db):
    """Counts the connections `db` hands out (pool checkouts) while the block runs."""
    original, calls = db.connect, []

    def connect(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    db.connect = connect
    try:
        yield calls
    finally:
        del db.connect


def get_rejected(client, sql, token, path="/api/tasks"):
    """Send `token` and check the rejection, including that no connection was taken from the
    pool and no SQL was sent."""
    with sql.counting(), counting_checkouts(sql.db) as checkouts:
        response = client.get(path, headers=bearer(token))
    assert_rejected(response, token)
    assert sql.count == 0, sql.statements
    assert checkouts == [], "a rejected request checked out a connection"
    return response


# Accepted tokens ------------------------------------------------------------------------------
@pytest.mark.parametrize("alg", ACCEPTED)
def test_each_jwks_algorithm_is_accepted(auth_client, jwks, keys, alg):
    user = new_user()
    token = better_auth_token(keys[alg], jwks.base_url, user)
    response = auth_client.get("/api/users/me", headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["id"] == user


def test_jwk_without_alg_member_is_usable(auth_client, jwks):
    """Better Auth's JWKS entries may omit `alg`; the token header's algorithm then decides."""
    key = SigningKey.generate("EdDSA")
    original = key.public_jwk
    key.public_jwk = lambda with_alg=True: original(with_alg=False)
    jwks.publish(key)
    token = better_auth_token(key, jwks.base_url, new_user())
    assert auth_client.get("/api/tasks", headers=bearer(token)).status_code == 200


def test_better_auth_url_with_trailing_slash_still_matches_iss(jwks, keys, database_url):
    """Better Auth puts its base URL's origin (no trailing slash) in iss and aud."""
    with own_app(database_url, BETTER_AUTH_URL=jwks.base_url + "/") as app:
        token = better_auth_token(keys["EdDSA"], jwks.base_url, new_user())
        assert app.test_client().get("/api/tasks", headers=bearer(token)).status_code == 200


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_tokens_with_the_shared_secret_are_accepted(auth_client, alg):
    token = make_token(new_user(), algorithm=alg)
    assert auth_client.get("/api/tasks", headers=bearer(token)).status_code == 200


def test_accepted_token_reaches_the_database(auth_client, sql, jwks, keys):
    """The counterpart of the zero-SQL rejections: a good token does query."""
    token = better_auth_token(keys["EdDSA"], jwks.base_url, new_user())
    with sql.counting(), counting_checkouts(sql.db) as checkouts:
        assert auth_client.get("/api/tasks", headers=bearer(token)).status_code == 200
    assert sql.count > 0
    assert checkouts, "the checkout counter sees nothing"


# Rejected tokens: every one 401, no SQL -------------------------------------------------------
def _claims(ctx, **extra):
    sub = extra.pop("sub") if "sub" in extra else new_user()
    return better_auth_claims(ctx["base"], sub, **extra)


def _sign(ctx, alg="EdDSA", headers=None, **extra):
    return ctx["keys"][alg].sign(_claims(ctx, **extra), headers)


def _alg_none(ctx):
    return handmade({"alg": "none", "typ": "JWT"}, _claims(ctx))


def _alg_none_with_kid(ctx):
    return handmade({"alg": "none", "kid": ctx["keys"]["EdDSA"].kid}, _claims(ctx))


def _alg_none_capitalised(ctx):
    return handmade({"alg": "None", "kid": ctx["keys"]["EdDSA"].kid}, _claims(ctx))


def _hs256_signed_with_public_pem(ctx):
    """The classic confusion: HMAC keyed with the verifier's public key (here the RSA PEM)."""
    key = ctx["keys"]["RS256"]
    pem = key.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hs256_with(pem, {"alg": "HS256", "kid": key.kid, "typ": "JWT"}, _claims(ctx))


def _hs256_signed_with_ed25519_raw_key(ctx):
    key = ctx["keys"]["EdDSA"]
    raw = key.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hs256_with(raw, {"alg": "HS256", "kid": key.kid}, _claims(ctx))


def _hs256_signed_with_jwk_json(ctx):
    key = ctx["keys"]["EdDSA"]
    return hs256_with(json.dumps(key.public_jwk()).encode(), {"alg": "HS256", "kid": key.kid}, _claims(ctx))


def _hs256_signed_with_wrong_secret(ctx):
    return make_token(new_user(), secret="another-secret-that-is-long-enough-0123456789")


def _kid_path(ctx):
    return _sign(ctx, headers={"kid": "../../../../etc/passwd"})


def _kid_sql(ctx):
    return _sign(ctx, headers={"kid": "x' OR '1'='1'; DROP TABLE tasks; --"})


def _kid_url(ctx):
    return _sign(ctx, headers={"kid": "http://169.254.169.254/latest/meta-data/"})


def _kid_huge(ctx):
    return _sign(ctx, headers={"kid": "k" * 5000})


def _kid_not_a_string(ctx):
    """PyJWT refuses to write a non-string kid, so the EdDSA signature is made by hand."""
    header, claims = {"alg": "EdDSA", "kid": {"$ne": None}}, _claims(ctx)
    signing_input = f"{b64(header)}.{b64(claims)}".encode()
    return f"{signing_input.decode()}.{b64(ctx['keys']['EdDSA'].private_key.sign(signing_input))}"


def _kid_missing(ctx):
    key = ctx["keys"]["EdDSA"]
    return jwt.encode(_claims(ctx), key.private_key, algorithm="EdDSA")


def _alg_does_not_match_key(ctx):
    """Signed by the ES256 key but naming the EdDSA key's kid."""
    return _sign(ctx, "ES256", headers={"kid": ctx["keys"]["EdDSA"].kid})


def _impostor_key_with_published_kid(ctx):
    impostor = SigningKey.generate("EdDSA", kid=ctx["keys"]["EdDSA"].kid)
    return impostor.sign(_claims(ctx))


def _expired(ctx):
    now = int(time.time())
    return _sign(ctx, iat=now - 3600, exp=now - 600)


def _exp_missing(ctx):
    return _sign(ctx, exp=DROP)


def _exp_not_a_number(ctx):
    return _sign(ctx, exp="tomorrow")


def _exp_infinite(ctx):
    return _sign(ctx, exp=float("inf"))  # json writes Infinity; int(inf) overflows


def _iat_in_future(ctx):
    return _sign(ctx, iat=int(time.time()) + 3600)


def _nbf_in_future(ctx):
    return _sign(ctx, nbf=int(time.time()) + 600)


def _wrong_iss(ctx):
    return _sign(ctx, iss="https://evil.example")


def _missing_iss(ctx):
    return _sign(ctx, iss=DROP)


def _wrong_aud(ctx):
    return _sign(ctx, aud="https://other-service.example")


def _missing_aud(ctx):
    return _sign(ctx, aud=DROP)


def _tampered_payload(ctx):
    token = _sign(ctx)
    header, _payload, signature = token.split(".")
    return f"{header}.{b64(_claims(ctx))}.{signature}"


def _tampered_signature(ctx):
    token = _sign(ctx)
    header, payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return f"{header}.{payload}.{flipped}"


def _over_8kb(ctx):
    return _sign(ctx, padding="x" * 9000)


def _missing_sub(ctx):
    return _sign(ctx, sub=DROP)


def _empty_sub(ctx):
    return _sign(ctx, sub="")


def _blank_sub(ctx):
    return _sign(ctx, sub="   ")


def _numeric_sub(ctx):
    return _sign(ctx, sub=12345)


def _overlong_sub(ctx):
    return _sign(ctx, sub="u" * 256)


def _hs256_missing_sub(ctx):
    return make_token(None)


def _hs256_empty_sub(ctx):
    return make_token("")


def _unlisted_es384(ctx):
    return _sign(ctx, "ES384")


def _unlisted_rs512(ctx):
    return _sign(ctx, "RS512")


def _unlisted_ps384(ctx):
    return _sign(ctx, "PS384")


def _unlisted_hs_variant(ctx):
    return handmade({"alg": "HS1", "typ": "JWT"}, _claims(ctx), b"sig")


def _not_a_jwt(ctx):
    return "not-a-jwt-at-all-0123456789"


def _two_segments(ctx):
    return ".".join(_sign(ctx).split(".")[:2])


def _header_not_json(ctx):
    return f"{b64(b'not json at all')}.{b64(_claims(ctx))}.c2lnbmF0dXJl"


ATTACKS = [
    _alg_none, _alg_none_with_kid, _alg_none_capitalised,
    _hs256_signed_with_public_pem, _hs256_signed_with_ed25519_raw_key, _hs256_signed_with_jwk_json,
    _hs256_signed_with_wrong_secret,
    _kid_path, _kid_sql, _kid_url, _kid_huge, _kid_not_a_string, _kid_missing,
    _alg_does_not_match_key, _impostor_key_with_published_kid,
    _expired, _exp_missing, _exp_not_a_number, _exp_infinite, _iat_in_future, _nbf_in_future,
    _wrong_iss, _missing_iss, _wrong_aud, _missing_aud,
    _tampered_payload, _tampered_signature, _over_8kb,
    _missing_sub, _empty_sub, _blank_sub, _numeric_sub, _overlong_sub, _hs256_missing_sub, _hs256_empty_sub,
    _unlisted_es384, _unlisted_rs512, _unlisted_ps384, _unlisted_hs_variant,
    _not_a_jwt, _two_segments, _header_not_json,
]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.__name__.lstrip("_") for a in ATTACKS])
def test_rejected_token_is_401_without_sql(auth_client, sql, jwks, keys, attack):
    token = attack({"base": jwks.base_url, "keys": keys})
    get_rejected(auth_client, sql, token)


@pytest.mark.parametrize("path", ["/api/tasks", "/api/users/me", "/api/someone/tasks", "/api/tasks/1",
                                  "/api/users/someone"])
def test_rejection_happens_on_every_api_route(auth_client, sql, jwks, keys, path):
    get_rejected(auth_client, sql, _alg_none({"base": jwks.base_url, "keys": keys}), path)


def test_over_8kb_token_is_rejected_before_parsing(auth_client, sql):
    token = "e" * 9000
    get_rejected(auth_client, sql, token)
    assert "too large" in auth_client.get("/api/tasks", headers=bearer(token)).get_json()["detail"]


def test_hmac_token_is_401_when_no_secret_is_configured(jwks, database_url):
    with jwks_app(jwks, database_url, BETTER_AUTH_SECRET="") as app:
        token = make_token(new_user())
        get_rejected(app.test_client(), RoundTrips(app.extensions["database"]), token)


def test_jwks_token_is_401_when_no_jwks_is_configured(keys, database_url):
    """Without BETTER_AUTH_URL/JWKS_URL an asymmetric token has no key family to be checked in."""
    with own_app(database_url, BETTER_AUTH_URL="") as app:
        token = better_auth_token(keys["EdDSA"], "http://auth.test", new_user())
        get_rejected(app.test_client(), RoundTrips(app.extensions["database"]), token)


def test_hmac_issuer_and_audience_are_checked_when_configured(jwks, database_url):
    with jwks_app(jwks, database_url, JWT_ISSUER="https://issuer.example",
                  JWT_AUDIENCE="todo-api") as app:
        client, sql = app.test_client(), RoundTrips(app.extensions["database"])
        good = make_token(new_user(), iss="https://issuer.example", aud="todo-api")
        assert client.get("/api/tasks", headers=bearer(good)).status_code == 200
        get_rejected(client, sql, make_token(new_user(), iss="https://evil.example", aud="todo-api"))
        get_rejected(client, sql, make_token(new_user(), iss="https://issuer.example", aud="other"))
        get_rejected(client, sql, make_token(new_user()))


@pytest.mark.parametrize("exp", ["string", "float", "infinity"])
def test_odd_but_signed_exp_is_never_a_500(auth_client, jwks, keys, exp):
    """PyJWT accepts `"exp": "1700000000"` and floats; a reused token (served from the verified
    cache) must still compare its expiry as a number."""
    later = int(time.time()) + 600
    value = {"string": str(later), "float": later + 0.5, "infinity": float("inf")}[exp]
    # PyJWT reads a numeric string and a float as times; Infinity is "not an integer" to it.
    expected = {"string": 200, "float": 200, "infinity": 401}[exp]
    token = keys["EdDSA"].sign(better_auth_claims(jwks.base_url, new_user(), exp=value))
    statuses = [auth_client.get("/api/tasks", headers=bearer(token)).status_code for _ in range(3)]
    assert statuses == [expected] * 3, statuses


# The Authorization header itself --------------------------------------------------------------
def test_missing_authorization_is_401_bearer_challenge_without_error(auth_client, sql):
    with sql.counting():
        response = auth_client.get("/api/tasks")
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer")
    assert "error=" not in challenge
    assert response.mimetype == "application/problem+json"
    assert sql.count == 0


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "Token abc.def.ghi"])
def test_malformed_authorization_is_401(auth_client, sql, header):
    with sql.counting():
        response = auth_client.get("/api/tasks", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert sql.count == 0


def test_bearer_scheme_is_case_insensitive(auth_client, jwks, keys):
    token = better_auth_token(keys["EdDSA"], jwks.base_url, new_user())
    assert auth_client.get("/api/tasks", headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_token_never_appears_in_logs(jwks, keys, database_url, capsys):
    with jwks_app(jwks, database_url, LOG_LEVEL="DEBUG", LOG_FORMAT="json") as app:
        client = app.test_client()
        good = better_auth_token(keys["EdDSA"], jwks.base_url, new_user())
        bad = _tampered_payload({"base": jwks.base_url, "keys": keys})
        assert client.get("/api/tasks", headers=bearer(good)).status_code == 200
        assert client.get("/api/tasks", headers=bearer(bad)).status_code == 401
        captured = capsys.readouterr()
    logs = captured.err + captured.out
    statuses = [json.loads(line).get("status") for line in logs.splitlines() if line.startswith("{")]
    assert 200 in statuses and 401 in statuses, "the request log lines are missing"
    for token in (good, bad):
        for segment in token.split("."):
            assert segment not in logs


# Public routes and preflights -----------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/tasks", "/api/tasks/1", "/api/someone/tasks/1/complete", "/api/users/me"])
def test_preflight_needs_no_token(auth_client, sql, path):
    with sql.counting():
        response = auth_client.options(path, headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "Authorization, Content-Type, If-Match"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert sql.count == 0


def test_preflight_from_unknown_origin_gets_no_cors_grant(auth_client):
    response = auth_client.options("/api/tasks", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_headers_on_a_rejected_request(auth_client):
    """A browser must be able to read the 401 (to send the user to sign in)."""
    response = auth_client.get("/api/tasks", headers={"Origin": ORIGIN})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


@pytest.mark.parametrize("path", ["/health", "/api/openapi.json", "/api/docs"])
def test_public_routes_need_no_token(auth_client, path):
    assert auth_client.get(path).status_code == 200


# Key rotation and the JWKS fetch budget -------------------------------------------------------
def test_rotated_key_works_immediately(auth_client, jwks):
    old, new, newer = (SigningKey.generate("EdDSA") for _ in range(3))
    jwks.publish(old)
    user = new_user()
    assert auth_client.get("/api/tasks", headers=bearer(better_auth_token(old, jwks.base_url, user))).status_code == 200
    assert jwks.fetches == 1
    jwks.publish(old, new)  # Better Auth rotates: the new key signs, the old one stays for a grace period
    response = auth_client.get("/api/tasks", headers=bearer(better_auth_token(new, jwks.base_url, user)))
    assert response.status_code == 200, response.get_json()
    assert jwks.fetches == 2
    jwks.publish(new, newer)
    response = auth_client.get("/api/tasks", headers=bearer(better_auth_token(newer, jwks.base_url, user)))
    assert response.status_code == 200, response.get_json()
    # The known keys are served from the cache, whatever the server publishes now.
    for key in (new, newer):
        token = better_auth_token(key, jwks.base_url, user)
        assert auth_client.get("/api/tasks", headers=bearer(token)).status_code == 200
    assert jwks.fetches == 3


def test_flood_of_unknown_kids_is_a_bounded_number_of_fetches(auth_app, jwks, keys):
    key = keys["EdDSA"]
    claims = better_auth_claims(jwks.base_url, new_user())
    tokens = [jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": uuid.uuid4().hex})
              for _ in range(200)]
    started = time.monotonic()

    def send(token):
        return auth_app.test_client().get("/api/tasks", headers=bearer(token)).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(send, tokens, timeout=60))
    elapsed = time.monotonic() - started
    assert statuses == [401] * 200
    min_refresh = auth_app.config["TODO_CONFIG"].jwks_min_refresh_seconds
    # A small burst, then at most one fetch per JWKS_MIN_REFRESH_SECONDS.
    assert jwks.fetches <= 5 + elapsed / min_refresh + 1, (jwks.fetches, elapsed)
    assert all(path == "/api/auth/jwks" for path in jwks.paths), "a kid leaked into the fetched URL"


def test_rotation_still_works_after_a_flood(auth_app, jwks, keys):
    client = auth_app.test_client()
    for _ in range(100):
        token = jwt.encode(better_auth_claims(jwks.base_url, new_user()), keys["EdDSA"].private_key,
                           algorithm="EdDSA", headers={"kid": uuid.uuid4().hex})
        assert client.get("/api/tasks", headers=bearer(token)).status_code == 401
    fresh = SigningKey.generate("EdDSA")
    jwks.publish(*keys.values(), fresh)
    token = better_auth_token(fresh, jwks.base_url, new_user())
    min_refresh = auth_app.config["TODO_CONFIG"].jwks_min_refresh_seconds
    deadline = time.monotonic() + min_refresh + 2
    while True:
        status = client.get("/api/tasks", headers=bearer(token)).status_code
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status == 200


def test_withdrawn_key_stops_working_once_the_cache_is_old(auth_app, jwks):
    """A key the identity provider withdraws (compromised) must not be trusted forever: the
    cached set is refetched after its max age (300 s; shortened here)."""
    client = auth_app.test_client()
    compromised, successor = SigningKey.generate("EdDSA"), SigningKey.generate("EdDSA")
    jwks.publish(compromised, successor)
    user = new_user()
    assert client.get("/api/tasks", headers=bearer(better_auth_token(compromised, jwks.base_url, user))
                      ).status_code == 200
    jwks.publish(successor)
    auth_app.extensions["token_verifier"].jwks.max_age = 0.3
    time.sleep(0.4)
    forged = better_auth_token(compromised, jwks.base_url, new_user())
    assert client.get("/api/tasks", headers=bearer(forged)).status_code == 401
    assert client.get("/api/tasks", headers=bearer(better_auth_token(successor, jwks.base_url, user))
                      ).status_code == 200


def test_a_remembered_token_of_a_withdrawn_key_stops_working_at_the_next_refresh(auth_app, jwks, monkeypatch):
    """The verified-token cache must not outlive the key: a token verified (and remembered)
    while its key was published is refused once a refresh no longer finds that key, long
    before the token's own `exp`."""
    client = auth_app.test_client()
    compromised, successor = SigningKey.generate("EdDSA"), SigningKey.generate("EdDSA")
    jwks.publish(compromised, successor)
    decodes, real_decode = [], jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **kw: decodes.append(1) or real_decode(*a, **kw))
    user = new_user()
    token = better_auth_token(compromised, jwks.base_url, user, ttl=900)
    for _ in range(2):
        assert client.get("/api/tasks", headers=bearer(token)).status_code == 200
    assert decodes == [1], "the second request should be answered from the verified-token cache"
    jwks.publish(successor)
    auth_app.extensions["token_verifier"].jwks.max_age = 0.3
    time.sleep(0.4)
    response = client.get("/api/tasks", headers=bearer(token))
    assert_rejected(response, token)
    assert "withdrawn" in response.get_json()["detail"]
    assert decodes == [1], "the refusal comes from the key check, not from verifying again"
    assert client.get("/api/tasks", headers=bearer(better_auth_token(successor, jwks.base_url, user))
                      ).status_code == 200


def test_a_remembered_token_fails_once_its_kid_names_other_key_material(auth_app, jwks):
    """Re-publishing a `kid` with a new key replaces the old key as surely as withdrawing it: a
    remembered token of the old key is refused at the next refresh."""
    client = auth_app.test_client()
    old = SigningKey.generate("EdDSA")
    jwks.publish(old)
    token = better_auth_token(old, jwks.base_url, new_user(), ttl=900)
    assert client.get("/api/tasks", headers=bearer(token)).status_code == 200
    jwks.publish(SigningKey.generate("EdDSA", kid=old.kid))  # the same kid, other key material
    auth_app.extensions["token_verifier"].jwks.max_age = 0.3
    time.sleep(0.4)
    response = client.get("/api/tasks", headers=bearer(token))
    assert_rejected(response, token)
    assert "withdrawn" in response.get_json()["detail"]


def test_a_refresh_racing_a_reader_never_re_caches_the_withdrawn_key(auth_app, jwks, monkeypatch):
    """Reader A looks a key up, and while it parses that key another request's refresh replaces
    the key set with one that no longer holds it. A's parsed key must not land in the new set
    (it would be trusted again); A itself is refused, as its key is withdrawn by the time it
    answers. Made deterministic by running B's refresh inside A's call of jwt.PyJWK."""
    verifier = auth_app.extensions["token_verifier"]
    withdrawn, kept = SigningKey.generate("EdDSA"), SigningKey.generate("EdDSA")
    jwks.publish(withdrawn, kept)
    real_pyjwk, raced = jwt.PyJWK, []

    def refresh_meanwhile():
        """Request B finds the key set stale and refetches it."""
        jwks.publish(kept)
        verifier.jwks.max_age = 0
        try:
            verifier.jwks.current()
        finally:
            verifier.jwks.max_age = 300.0

    def pyjwk(data, algorithm=None):
        parsed = real_pyjwk(data, algorithm)
        if data.get("kid") == withdrawn.kid and not raced:
            raced.append(True)
            other = threading.Thread(target=refresh_meanwhile)
            other.start()
            other.join(timeout=30)
        return parsed

    monkeypatch.setattr(jwt, "PyJWK", pyjwk)
    with pytest.raises(InvalidToken, match="withdrawn"):
        verifier.verify(better_auth_token(withdrawn, jwks.base_url, new_user()))
    assert raced == [True]
    assert jwks.fetches == 2  # A's first fetch, then B's refresh in the middle of A's parse
    current = verifier.jwks.current()
    assert set(current.jwks) == {kept.kid}
    assert current.parsed == {}, "a reader wrote a withdrawn key into the new set"
    someone = new_user()
    assert verifier.verify(better_auth_token(kept, jwks.base_url, someone))["sub"] == someone
    assert set(current.parsed) == {(kept.kid, "EdDSA")}
    with pytest.raises(InvalidToken):
        verifier.verify(better_auth_token(withdrawn, jwks.base_url, new_user()))


def test_jwks_outage_keeps_known_keys_and_rejects_unknown_ones(auth_client, jwks, keys):
    user = new_user()
    assert auth_client.get("/api/tasks", headers=bearer(better_auth_token(keys["EdDSA"], jwks.base_url, user))
                           ).status_code == 200
    jwks.fail = True
    assert auth_client.get("/api/tasks", headers=bearer(better_auth_token(keys["ES256"], jwks.base_url, user))
                           ).status_code == 200
    stranger = SigningKey.generate("EdDSA")
    response = auth_client.get("/api/tasks", headers=bearer(better_auth_token(stranger, jwks.base_url, user)))
    assert response.status_code == 401


def test_slow_jwks_does_not_slow_down_known_keys(auth_app, jwks, keys):
    """While unknown kids wait on a slow JWKS fetch, tokens of cached keys are answered at once."""
    user = new_user()
    known = better_auth_token(keys["EdDSA"], jwks.base_url, user)
    assert auth_app.test_client().get("/api/tasks", headers=bearer(known)).status_code == 200
    jwks.delay = 1.5
    strangers = [better_auth_token(SigningKey.generate("EdDSA"), jwks.base_url, user) for _ in range(2)]

    def send(token):
        started = time.monotonic()
        status = auth_app.test_client().get("/api/tasks", headers=bearer(token)).status_code
        return status, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=8) as pool:
        slow = [pool.submit(send, token) for token in strangers]
        time.sleep(0.2)  # the unknown kids are now waiting on the fetch
        fast = [pool.submit(send, known) for _ in range(4)]
        fast_results = [f.result(timeout=30) for f in fast]
        slow_results = [f.result(timeout=30) for f in slow]
    assert all(status == 200 and took < 1.0 for status, took in fast_results), fast_results
    assert all(status == 401 for status, _ in slow_results), slow_results


def test_unreachable_jwks_is_401_not_500(keys, database_url):
    with JwksServer(keys["EdDSA"]) as server:
        base = server.base_url
    # The server is gone: the port refuses connections.
    with own_app(database_url, BETTER_AUTH_URL=base) as app:
        started = time.monotonic()
        response = app.test_client().get("/api/tasks", headers=bearer(better_auth_token(keys["EdDSA"], base, "u")))
        assert response.status_code == 401
        assert time.monotonic() - started < 6


# Provisioning ---------------------------------------------------------------------------------
def test_user_is_provisioned_from_token_claims(auth_client, jwks, keys, admin_db):
    user = new_user()
    token = better_auth_token(keys["EdDSA"], jwks.base_url, user, email=f"{user}@Example.COM", name="Ada Lovelace")
    me = auth_client.get("/api/users/me", headers=bearer(token)).get_json()
    assert me["id"] == user
    assert me["email"] == f"{user}@Example.COM"  # kept as the identity provider spells it
    assert me["name"] == "Ada Lovelace"
    with admin_db.cursor() as cur:
        cur.execute("SELECT email, name FROM users WHERE id = %s", (user,))
        assert cur.fetchone()[1] == "Ada Lovelace"


@pytest.mark.parametrize(("email", "name", "stored_name"), [
    (["a@b.c"], {"first": "x"}, None),  # not strings: dropped
    (42, 42, None),
    ("not-an-email", "n" * 5000, "n" * 255),  # an over-long name is cut to the column's 255
    ("bad\x00@example.com", "nul\x00name", None),  # NUL: dropped (PostgreSQL cannot store it)
])
def test_odd_profile_claims_are_dropped_not_fatal(auth_client, jwks, keys, email, name, stored_name):
    user = new_user()
    token = better_auth_token(keys["EdDSA"], jwks.base_url, user, email=email, name=name)
    response = auth_client.get("/api/users/me", headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    me = response.get_json()
    assert me["email"] is None
    assert me["name"] == stored_name


def test_unicode_subject_works_in_both_families(auth_client, jwks, keys):
    user = f"用户-{uuid.uuid4().hex[:6]}-é"
    headers = bearer(better_auth_token(keys["EdDSA"], jwks.base_url, user))
    created = auth_client.post(f"/api/{user}/tasks", headers=headers, json={"title": "unicode"})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["user_id"] == user
    assert auth_client.get("/api/tasks", headers=headers).get_json()["count"] == 1


def test_email_already_taken_still_signs_in(auth_client, jwks, keys):
    first, second = new_user(), new_user()
    shared = f"shared-{uuid.uuid4().hex[:8]}@example.com"
    for user in (first, second):
        token = better_auth_token(keys["EdDSA"], jwks.base_url, user, email=shared)
        assert auth_client.get("/api/tasks", headers=bearer(token)).status_code == 200


def _concurrently(app, requests):
    barrier = threading.Barrier(len(requests))

    def send(item):
        method, token = item
        client = app.test_client()
        barrier.wait(timeout=10)
        path = "/api/users" if method == "POST" else "/api/tasks"
        return client.open(path, method=method, headers=bearer(token), json={} if method == "POST" else None)

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(send, requests, timeout=60))


def test_concurrent_first_requests_provision_one_row(auth_app, jwks, keys, admin_db):
    user = new_user()
    token = better_auth_token(keys["EdDSA"], jwks.base_url, user)
    responses = _concurrently(auth_app, [("GET", token)] * 20)
    assert [r.status_code for r in responses] == [200] * 20, [r.get_json() for r in responses]
    with admin_db.cursor() as cur:
        cur.execute("SELECT count(*) FROM users WHERE id = %s", (user,))
        assert cur.fetchone()[0] == 1


def test_concurrent_first_post_users_creates_exactly_once(auth_app, jwks, keys, admin_db):
    user = new_user()
    token = better_auth_token(keys["EdDSA"], jwks.base_url, user)
    responses = _concurrently(auth_app, [("POST", token)] * 20)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [201], statuses
    with admin_db.cursor() as cur:
        cur.execute("SELECT count(*) FROM users WHERE id = %s", (user,))
        assert cur.fetchone()[0] == 1


def test_hs256_secret_is_not_a_jwks_key(auth_client, jwks):
    """The reverse confusion: a JWKS entry of type `oct` carrying the shared secret must not
    let an HS256 token through the JWKS path, nor an 'EdDSA' header verify against it."""
    jwks.publish(*jwks.keys)
    oct_jwk = {"kty": "oct", "kid": "oct-key", "k": b64(SECRET.encode()), "alg": "HS256"}
    original = jwks.document
    jwks.document = lambda: {"keys": [*original()["keys"], oct_jwk]}
    claims = better_auth_claims(jwks.base_url, new_user())
    token = jwt.encode(claims, "x" * 40, algorithm="HS256", headers={"kid": "oct-key"})
    assert auth_client.get("/api/tasks", headers=bearer(token)).status_code == 401
    forged = handmade({"alg": "EdDSA", "kid": "oct-key"}, claims, b"signature")
    assert auth_client.get("/api/tasks", headers=bearer(forged)).status_code == 401


# Behind gunicorn (the Procfile's server), over real HTTP ---------------------------------------
@pytest.fixture(scope="module")
def served_jwks(keys):
    with JwksServer(*keys.values()) as server:
        yield server


@pytest.fixture(scope="module")
def served(served_jwks, database_url):
    """The service under gunicorn (the project's gunicorn.conf.py), trusting the loopback JWKS."""
    from tests.servers import Gunicorn

    server = Gunicorn(database_url, workers=2, BETTER_AUTH_URL=served_jwks.base_url)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_better_auth_token_works_behind_gunicorn_and_attacks_fail(served, served_jwks, keys):
    from tests.servers import http

    user = new_user()
    for alg in ACCEPTED:
        response = http(served.port, "GET", "/api/users/me",
                        headers=bearer(better_auth_token(keys[alg], served_jwks.base_url, user)))
        assert response.status == 200, (alg, response.body)
        assert response.json()["id"] == user
    ctx = {"base": served_jwks.base_url, "keys": keys}
    for attack in (_alg_none, _hs256_signed_with_public_pem, _kid_sql, _expired, _tampered_payload,
                   _over_8kb, _empty_sub):
        token = attack(ctx)
        response = http(served.port, "GET", "/api/tasks", headers=bearer(token))
        assert response.status == 401, (attack.__name__, response.status, response.body[:200])
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        assert response.headers["content-type"].startswith("application/problem+json")
        assert max(token.split("."), key=len).encode() not in response.body


@pytest.mark.slow
@pytest.mark.parametrize("size", [8193, 9000, 16000])
def test_oversized_token_is_the_services_401_behind_gunicorn(served, size):
    """gunicorn's own header limit (8190) would answer 431 in HTML before the identity hook."""
    from tests.servers import http

    response = http(served.port, "GET", "/api/tasks", headers=bearer("e" * size))
    assert response.status == 401, response.body[:200]
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401
