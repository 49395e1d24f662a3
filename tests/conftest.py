"""Fixtures: a fresh PostgreSQL database per test run, owned by an ordinary role (so row-level
security applies exactly as in production), the app on it, and real signed tokens.

The server is TEST_DATABASE_URL's (a superuser URL; the run creates and drops its own database
there) or else the embedded PostgreSQL. There is no fallback and no skip: without PostgreSQL the
tests fail.
"""
import contextlib
import os
import time
import uuid
from pathlib import Path

import flask
import jwt
import psycopg2
import pytest
from flask.testing import FlaskClient
from peewee_migrate import Router
from psycopg2 import sql

from service import create_app
from service.config import DEFAULT_DATA_DIR, load_config
from service.db import database, embedded, make_database
from service.ops.vocabulary_release import apply_vocabularies


class AppBoundClient(FlaskClient):
    """A test client that points the models' database proxy at its own app before each request.

    One app per process is the norm, and create_app binds the proxy once; tests build several
    apps (own configurations, own databases) and interleave their requests, so each request
    here first points the proxy at the app it is sent to."""

    def open(self, *args, **kwargs):
        database.initialize(self.application.extensions["database"])
        return super().open(*args, **kwargs)


flask.Flask.test_client_class = AppBoundClient

PROJECT = Path(__file__).resolve().parent.parent
MIGRATIONS = PROJECT / "migrations"
APP_ROLE = "todo_test_app"
SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
AUTH_URL = "http://auth.test"


def server_admin_url():
    """A superuser URL to the server the tests use."""
    return os.environ.get("TEST_DATABASE_URL") or embedded.admin_url(DEFAULT_DATA_DIR)


def role_url(admin_url, database, role=APP_ROLE):
    """A URL to `database` on the admin URL's server, as `role`."""
    return embedded.role_url(admin_url, database, role)

def admin_connect(admin_url, database=None):
    """An autocommit superuser connection (to `database` when given)."""
    conn = psycopg2.connect(admin_url, **({"dbname": database} if database else {}))
    conn.autocommit = True
    return conn


def create_database(admin_url, prefix="todo_test"):
    """A new empty database owned by the ordinary test role; returns its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = admin_connect(admin_url)
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,))
        if cur.fetchone() is None:
            with contextlib.suppress(psycopg2.errors.DuplicateObject, psycopg2.errors.UniqueViolation):
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(APP_ROLE)))
        cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(name), sql.Identifier(APP_ROLE)))
    conn.close()
    return name


def drop_database(admin_url, name):
    """Drop a test database, disconnecting whoever is still on it."""
    conn = admin_connect(admin_url)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    conn.close()


def migrate(url, config):
    """Apply every migration to the database at `url`, then the configuration's vocabularies (as
    the release phase does); returns the Router and the database."""
    db = make_database(config, url)
    router = Router(db, migrate_dir=MIGRATIONS, ignore=["basemodel"])
    router.run()
    apply_vocabularies(db, config.vocabularies)
    return router, db


def make_config(**overrides):
    """The test configuration (environment-style overrides)."""
    env = {"BETTER_AUTH_SECRET": SECRET, "BETTER_AUTH_URL": AUTH_URL, "LOG_LEVEL": "WARNING",
           "CORS_ORIGINS": "http://localhost:3000", "DATABASE_POOL_TIMEOUT": "2"}
    env.update(overrides)
    return load_config(env)


@pytest.fixture(scope="session")
def admin_url():
    """Superuser URL of the test server."""
    return server_admin_url()


@pytest.fixture(scope="session")
def database_name(admin_url):
    """This run's database, migrated; dropped at the end."""
    name = create_database(admin_url)
    yield name
    drop_database(admin_url, name)


@pytest.fixture(scope="session")
def database_url(admin_url, database_name):
    """The app-role URL of this run's database, after migrating it."""
    url = role_url(admin_url, database_name)
    _router, db = migrate(url, make_config())
    db.close_all()
    return url


@pytest.fixture(scope="session")
def config():
    """The configuration the test app runs with."""
    return make_config()


@pytest.fixture(scope="session")
def app(config, database_url):
    """The service on this run's database."""
    application = create_app(config, database_url=database_url)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):
    """A test client."""
    return app.test_client()


@pytest.fixture
def admin_db(admin_url, database_name):
    """A superuser connection to this run's database (bypasses row-level security)."""
    conn = admin_connect(admin_url, database_name)
    yield conn
    conn.close()


def make_token(sub, secret=SECRET, algorithm="HS256", ttl=600, **claims):
    """An HS-signed token for `sub`, as a Phase II frontend mints them."""
    now = int(time.time())
    payload = {"sub": sub, "iat": now, "exp": now + ttl, **claims}
    if sub is None:
        payload.pop("sub")
    return jwt.encode(payload, secret, algorithm=algorithm)


class Caller:
    """A signed-in user of the API: id, token and the headers to send."""

    def __init__(self, client, user_id=None, **claims):
        self.client = client
        self.id = user_id or f"user-{uuid.uuid4().hex[:12]}"
        claims.setdefault("email", f"{self.id}@example.com")
        self.token = make_token(self.id, **claims)
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def request(self, method, path, headers=None, **kwargs):
        """Send a request as this user."""
        return self.client.open(path, method=method, headers={**self.headers, **(headers or {})}, **kwargs)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def create_task(self, **fields):
        """Create a task (title defaults) and return its JSON."""
        fields.setdefault("title", f"task {uuid.uuid4().hex[:6]}")
        response = self.post("/api/tasks", json=fields)
        assert response.status_code == 201, response.get_json()
        return response.get_json()


@pytest.fixture
def alice(client):
    """A fresh user."""
    return Caller(client)


@pytest.fixture
def bob(client):
    """Another fresh user."""
    return Caller(client)


class RoundTrips:
    """Counts the SQL round trips (statements, BEGIN, COMMIT, ROLLBACK) the app sends."""

    def __init__(self, db):
        self.db = db
        self.count = 0
        self.statements = []

    @contextlib.contextmanager
    def counting(self):
        """Count while the block runs."""
        originals = {name: getattr(self.db, name) for name in ("execute_sql", "begin", "commit", "rollback")}

        def counted(name):
            def call(*args, **kwargs):
                self.count += 1
                self.statements.append(name if name != "execute_sql" else str(args[0])[:120])
                return originals[name](*args, **kwargs)
            return call

        for name in originals:
            setattr(self.db, name, counted(name))
        self.count = 0
        self.statements = []
        try:
            yield self
        finally:
            for name in originals:
                delattr(self.db, name)


@pytest.fixture
def round_trips(app):
    """A RoundTrips counter on the app's database."""
    return RoundTrips(app.extensions["database"])
