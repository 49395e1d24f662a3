"""A stand-in for Better Auth's JWKS endpoint, real signing keys, and apps that trust it.

- `SigningKey.generate(alg)`: a fresh private key (Ed25519, RSA, P-256, P-521) with its public JWK.
- `JwksServer`: `http.server` on 127.0.0.1:0 in a thread, serving `/api/auth/jwks` with whatever
  keys are published right now; counts the fetches, so tests can bound them.
- `better_auth_token(key, base_url, sub, ...)`: a token shaped like Better Auth's jwt plugin's.
- `jwks_app(server, database_url, **env)`: a context manager building the service configured
  with `BETTER_AUTH_URL` = the server, and restoring the shared `database` proxy afterwards
  (create_app re-points the module-level proxy; the session app must get it back).
"""
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from tests.servers import fresh_app

JWKS_PATH = "/api/auth/jwks"


class SigningKey:
    """A private key for one algorithm, with its `kid` and public JWK."""

    def __init__(self, alg, private_key, kid):
        self.alg = alg
        self.private_key = private_key
        self.kid = kid

    @classmethod
    def generate(cls, alg, kid=None):
        """A new key for `alg` (EdDSA, RS256, PS256, ES256, ES512, or any RS*/PS*/ES* variant)."""
        if alg == "EdDSA":
            private = ed25519.Ed25519PrivateKey.generate()
        elif alg[:2] in ("RS", "PS"):
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif alg in ("ES256", "ES384", "ES512"):
            curve = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}[alg]()
            private = ec.generate_private_key(curve)
        else:
            raise ValueError(f"no key type for {alg}")
        return cls(alg, private, kid or f"{alg.lower()}-{uuid.uuid4().hex[:8]}")

    @property
    def public_key(self):
        return self.private_key.public_key()

    def public_jwk(self, with_alg=True):
        """The public half as a JWK dict, as Better Auth publishes it."""
        if self.alg == "EdDSA":
            jwk = OKPAlgorithm.to_jwk(self.public_key, as_dict=True)
        elif self.alg[:2] in ("RS", "PS"):
            jwk = RSAAlgorithm.to_jwk(self.public_key, as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(self.public_key, as_dict=True)
        jwk["kid"] = self.kid
        if with_alg:
            jwk["alg"] = self.alg
        return jwk

    def sign(self, claims, headers=None):
        """`claims` signed with this key; header `{alg, kid}` (plus `headers`)."""
        return jwt.encode(claims, self.private_key, algorithm=self.alg,
                          headers={"kid": self.kid, **(headers or {})})


DROP = object()  # pass as a claim value to leave that claim out


def better_auth_claims(base_url, sub, ttl=900, **extra):
    """The claims Better Auth's jwt plugin puts in a token (iss = aud = its base URL)."""
    now = int(time.time())
    label = sub if isinstance(sub, str) and sub.strip() else uuid.uuid4().hex[:8]
    claims = {"sub": sub, "id": sub, "email": f"{label}@example.com", "name": f"User {label}",
              "emailVerified": True, "iat": now, "exp": now + ttl, "iss": base_url, "aud": base_url}
    claims.update(extra)
    return {k: v for k, v in claims.items() if v is not DROP}


def better_auth_token(key, base_url, sub, ttl=900, headers=None, **extra):
    """A token as Better Auth mints it, signed by `key`."""
    return key.sign(better_auth_claims(base_url, sub, ttl, **extra), headers)


class JwksServer:
    """A loopback JWKS endpoint. `publish(*keys)` replaces the published set; `fetches` counts
    the GETs of the JWKS path; `fail = True` makes it answer 500; `delay` makes it slow."""

    def __init__(self, *keys):
        self.keys = list(keys)
        self.fetches = 0
        self.paths = []
        self.fail = False
        self.delay = 0.0  # seconds to wait before answering (a slow identity provider)
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def publish(self, *keys):
        """Publish exactly `keys` from now on."""
        with self._lock:
            self.keys = list(keys)

    def document(self):
        with self._lock:
            return {"keys": [k.public_jwk() for k in self.keys]}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                with server._lock:
                    server.paths.append(self.path)
                if self.path != JWKS_PATH:
                    self.send_error(404)
                    return
                with server._lock:
                    server.fetches += 1
                if server.delay:
                    time.sleep(server.delay)
                if server.fail:
                    self.send_error(500)
                    return
                body = json.dumps(server.document()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


own_app = fresh_app  # a second app on the test database, proxy and logger restored after


def jwks_app(server, database_url, **env):
    """The service trusting `server`'s JWKS (BETTER_AUTH_URL = the server's base URL)."""
    return own_app(database_url, BETTER_AUTH_URL=server.base_url, **env)
