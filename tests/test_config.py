"""Configuration: a malformed setting stops the process with one clear line naming it, never a
traceback; good settings (and their defaults) load."""
import os
import subprocess
import sys

import pytest

from service.config import DEFAULT_DATA_DIR, ConfigError, load_config
from tests.conftest import PROJECT

GOOD_SECRET = "s" * 32


@pytest.mark.parametrize("name, value", [
    ("DATABASE_URL", "mysql://user@localhost/todo"),
    ("DATABASE_URL", "not a url"),
    ("DATABASE_URL", "localhost:5432/todo"),
    ("DATABASE_URL", "postgresql://user@localhost:5432"),
    ("DATABASE_URL", "postgresql://user@localhost:5432/"),
    ("DATABASE_URL", "postgresql://user@localhost:port/todo"),
    ("DATABASE_URL", "postgresql://user@localhost:99999/todo"),
    ("DATABASE_POOL_SIZE", "abc"),
    ("DATABASE_POOL_SIZE", "0"),
    ("DATABASE_POOL_SIZE", "-3"),
    ("DATABASE_POOL_SIZE", "2.5"),
    ("DATABASE_POOL_SIZE", "100000"),
    ("DATABASE_POOL_TIMEOUT", "soon"),
    ("DATABASE_POOL_TIMEOUT", "-1"),
    ("DATABASE_POOL_STALE_TIMEOUT", "never"),
    ("DATABASE_POOL_STALE_TIMEOUT", "0"),
    ("DATABASE_STATEMENT_TIMEOUT_MS", "5s"),
    ("DATABASE_CONNECT_TIMEOUT", "0"),
    ("BETTER_AUTH_SECRET", "short"),
    ("BETTER_AUTH_SECRET", "x" * 31),
    ("BETTER_AUTH_URL", "ftp://auth.example.com"),
    ("LOG_LEVEL", "LOUD"),
])
def test_malformed_setting_is_one_clear_line(name, value):
    with pytest.raises(ConfigError) as raised:
        load_config({name: value})
    message = str(raised.value)
    assert name in message
    assert "\n" not in message and message.strip() == message
    assert len(message) < 200


def test_secret_is_not_echoed_in_the_error():
    with pytest.raises(ConfigError) as raised:
        load_config({"BETTER_AUTH_SECRET": "tooshort-but-secret"})
    assert "tooshort-but-secret" not in str(raised.value)


def test_defaults_without_database_url_mean_the_embedded_database():
    config = load_config({})
    assert config.database_url is None and config.uses_embedded_database
    assert config.data_dir == DEFAULT_DATA_DIR
    assert (config.pool_size, config.pool_timeout, config.pool_stale_timeout) == (10, 5.0, 300)


def test_good_settings_load():
    config = load_config({
        "DATABASE_URL": " postgres://app:pw@db.example.com:6543/todo?sslmode=require ",
        "DATABASE_POOL_SIZE": "25", "DATABASE_POOL_TIMEOUT": "0.5", "DATABASE_POOL_STALE_TIMEOUT": "60",
        "BETTER_AUTH_SECRET": GOOD_SECRET, "BETTER_AUTH_URL": "https://auth.example.com/",
        "DATA_DIR": "/srv/todo-data",
    })
    assert config.database_url == "postgres://app:pw@db.example.com:6543/todo?sslmode=require"
    assert (config.pool_size, config.pool_timeout, config.pool_stale_timeout) == (25, 0.5, 60)
    assert config.better_auth_secret == GOOD_SECRET
    assert config.better_auth_url == "https://auth.example.com"
    assert config.jwks_url == "https://auth.example.com/api/auth/jwks"
    assert str(config.data_dir) == "/srv/todo-data"


def test_unix_socket_database_url_is_accepted():
    url = "postgresql://todo@/todo?host=/var/run/postgresql"
    assert load_config({"DATABASE_URL": url}).database_url == url


def start(args, **env):
    """Run a startup command from the project root with `env` on top of ours (no .env override:
    the process environment wins over .env)."""
    result = subprocess.run(args, cwd=PROJECT, env={**os.environ, **env}, capture_output=True,
                            text=True, timeout=60)
    return result.returncode, result.stdout, result.stderr


@pytest.mark.parametrize("args, name, value", [
    ([sys.executable, "-c", "import wsgi"], "DATABASE_POOL_SIZE", "abc"),
    ([sys.executable, "-c", "import wsgi"], "DATABASE_URL", "mysql://user@localhost/todo"),
    ([sys.executable, "wsgi.py"], "BETTER_AUTH_SECRET", "short"),
], ids=["import-wsgi-pool-size", "import-wsgi-database-url", "python-wsgi.py-secret"])
def test_startup_with_a_bad_setting_prints_one_line_and_exits(args, name, value):
    code, out, err = start(args, **{name: value})
    assert code != 0
    assert "Traceback" not in out + err
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert name in lines[0] and lines[0].startswith("configuration error:")


def test_gunicorn_with_a_bad_setting_prints_one_line_and_exits():
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    if not os.path.exists(gunicorn):
        pytest.fail("gunicorn is not installed in the virtualenv (requirements.txt)")
    code, out, err = start([gunicorn, "-c", "gunicorn.conf.py", "wsgi:app"], DATABASE_POOL_SIZE="abc",
                           PORT="0")
    assert code != 0
    assert "Traceback" not in out + err
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert len(lines) == 1 and "DATABASE_POOL_SIZE" in lines[0], lines
