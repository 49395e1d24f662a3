"""Public probes: /health never touches the database; /readyz is 200 only when the database
answers and every migration is applied, else 503 naming the reason."""
import time

import pytest
from peewee_migrate import Router

from service import create_app
from tests.conftest import MIGRATIONS, create_database, drop_database, make_config, role_url

CLOSED_PORT_URL = "postgresql://nobody@127.0.0.1:1/none"


def app_on(url):
    """The service on the database at `url` (which may not exist or answer)."""
    application = create_app(make_config(DATABASE_CONNECT_TIMEOUT="2"), database_url=url)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def empty_database(admin_url):
    """A new database with no migration applied; yields its app-role URL."""
    name = create_database(admin_url, prefix="todo_health")
    yield role_url(admin_url, name)
    drop_database(admin_url, name)


def test_health_is_ok_without_a_database():
    response = app_on(CLOSED_PORT_URL).test_client().get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_200_when_migrated(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ready"


def test_readyz_is_503_when_the_database_is_unreachable():
    started = time.monotonic()
    response = app_on(CLOSED_PORT_URL).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "unreachable" in response.get_json()["detail"]
    assert time.monotonic() - started < 5


def test_readyz_is_503_when_no_migration_was_applied(empty_database):
    response = app_on(empty_database).test_client().get("/readyz")
    assert response.status_code == 503
    assert "no migration" in response.get_json()["detail"]


def test_readyz_is_503_naming_the_pending_migrations(empty_database):
    application = app_on(empty_database)
    db = application.extensions["database"]
    Router(db, migrate_dir=MIGRATIONS, ignore=["basemodel"]).run("001_initial")
    db.close_all()
    response = application.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.headers["Content-Type"].startswith("application/problem+json")
    detail = response.get_json()["detail"]
    assert "pending" in detail
    assert "002_row_level_security" in detail
    assert "001_initial" not in detail


def test_probes_need_no_token(client):
    assert client.get("/health").status_code == 200
    assert client.get("/readyz").status_code == 200
