"""Configuration, read once from the environment (and a `.env` file) and validated.

Every setting the service knows is listed here and in `.env.example`. A bad value raises
`ConfigError` with one line that names the variable; entry points print that line and exit.
"""
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from dotenv import load_dotenv
from psycopg2 import ProgrammingError
from psycopg2.extensions import parse_dsn

from .vocabularies import (
    DEFAULT_PRIORITIES,
    DEFAULT_STATUSES,
    DEFAULT_VOCABULARIES,
    STATUS_FILTER_WORDS,
    Vocabularies,
    parse_vocabulary,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def expected_migrations():
    """The migration names shipped with this code, in order."""
    return sorted(p.stem for p in MIGRATIONS_DIR.glob("[0-9]*.py"))


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line naming it."""


def _int(env, name, default, minimum=0, maximum=None):
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(f"{name} must be {bounds}, got {value}")
    return value


def _float(env, name, default, minimum=0.0):
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _postgres_url(name, url):
    """`url` if libpq can connect with it, else a ConfigError naming `name` (never echoing the
    URL: it may hold a password). libpq reads it, not urlparse: a multi-host URL
    (`postgresql://u@h1:5432,h2:5432/db?target_session_attrs=read-write`) has no single port."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in ("postgres", "postgresql"):
        raise ConfigError(f"{name} must be a postgres:// or postgresql:// URL")
    try:
        params = parse_dsn(f"postgresql://{rest}")
    except ProgrammingError:
        raise ConfigError(f"{name} is not a URL libpq accepts (check its hosts, ports and "
                          "query parameters)") from None
    if not params.get("dbname"):
        raise ConfigError(f"{name} must name a database (postgresql://user@host:5432/dbname)")
    for port in params.get("port", "").split(","):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ConfigError(f"{name} has a malformed port")
    return url


def _database_url(env):
    url = env.get("DATABASE_URL", "").strip()
    return _postgres_url("DATABASE_URL", url) if url else None


# A URL may itself list several hosts (h1:5432,h2:5432), so the list splits only at a comma
# that starts the next URL.
_NEXT_URL = re.compile(r"\s*,\s*(?=[A-Za-z][\w+.-]*://)")


def _replica_urls(env):
    raw = env.get("DATABASE_REPLICA_URLS", "").strip().strip(",").strip()
    if not raw:
        return ()
    urls = _NEXT_URL.split(raw)
    return tuple(_postgres_url(f"DATABASE_REPLICA_URLS (URL {n} of {len(urls)})", url)
                 for n, url in enumerate(urls, 1))


def _http_url(env, name, default=None):
    url = env.get(name, "").strip() or default
    if url and urlparse(url).scheme not in ("http", "https"):
        raise ConfigError(f"{name} must be an http:// or https:// URL")
    return url or None


def _vocabularies(env):
    try:
        priority = parse_vocabulary("priority", env.get("TASK_PRIORITIES", ""), DEFAULT_PRIORITIES)
    except ValueError as error:
        raise ConfigError(f"TASK_PRIORITIES {error}") from None
    try:
        status = parse_vocabulary("status", env.get("TASK_STATUSES", ""), DEFAULT_STATUSES,
                                  reserved=STATUS_FILTER_WORDS)
    except ValueError as error:
        raise ConfigError(f"TASK_STATUSES {error}") from None
    return Vocabularies(priority=priority, status=status)


def _switch(env, name, default):
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("on", "off", "true", "false", "1", "0"):
        raise ConfigError(f"{name} must be on or off, got {raw!r}")
    return raw in ("on", "true", "1")


def _observability(env):
    """METRICS_TOKEN (optional bearer token guarding /metrics) and SLOW_QUERY_MS."""
    token = env.get("METRICS_TOKEN", "").strip() or None
    if token is not None and len(token) < 16:
        raise ConfigError("METRICS_TOKEN must be at least 16 characters (try: openssl rand -hex 16)")
    return {"metrics_token": token, "slow_query_ms": _int(env, "SLOW_QUERY_MS", 500, minimum=0)}


@dataclass(frozen=True)
class Config:
    """The validated settings of one process."""

    database_url: str | None = None
    replica_urls: tuple = field(default_factory=tuple)
    replica_max_lag_ms: int = 1000
    data_dir: Path = DEFAULT_DATA_DIR
    pool_size: int = 10
    pool_timeout: float = 5.0
    pool_stale_timeout: int = 300
    statement_timeout_ms: int = 5000
    connect_timeout: int = 5
    better_auth_url: str | None = None
    better_auth_secret: str | None = None
    jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwks_min_refresh_seconds: float = 1.0
    cors_origins: tuple = field(default_factory=tuple)
    max_content_length: int = 1024 * 1024
    metrics_token: str | None = None
    slow_query_ms: int = 500
    prepared_statements: bool = True
    log_format: str = "json"
    log_level: str = "INFO"
    vocabularies: Vocabularies = DEFAULT_VOCABULARIES

    @property
    def jwks_issuer(self):
        """The `iss` a JWKS-signed token must carry: JWT_ISSUER, else BETTER_AUTH_URL."""
        return self.jwt_issuer or self.better_auth_url

    @property
    def jwks_audience(self):
        """The `aud` a JWKS-signed token must carry: JWT_AUDIENCE, else BETTER_AUTH_URL."""
        return self.jwt_audience or self.better_auth_url

    @property
    def uses_embedded_database(self):
        """True when no DATABASE_URL is given and the embedded PostgreSQL serves the data."""
        return self.database_url is None


def load_config(env=None, dotenv=True):
    """Read and validate the configuration from `env` (default: the process environment)."""
    if env is None:
        if dotenv:
            load_dotenv(PROJECT_ROOT / ".env", override=False)
        env = os.environ
    secret = env.get("BETTER_AUTH_SECRET", "") or None
    if secret is not None and len(secret.encode()) < 32:
        raise ConfigError("BETTER_AUTH_SECRET must be at least 32 bytes (try: openssl rand -base64 32)")
    auth_url = _http_url(env, "BETTER_AUTH_URL")
    if auth_url:
        auth_url = auth_url.rstrip("/")
    default_jwks = f"{auth_url}/api/auth/jwks" if auth_url else None
    log_format = env.get("LOG_FORMAT", "json").strip().lower() or "json"
    if log_format not in ("json", "text"):
        raise ConfigError(f"LOG_FORMAT must be json or text, got {log_format!r}")
    log_level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
    origins = tuple(o.strip().rstrip("/") for o in env.get("CORS_ORIGINS", "").split(",") if o.strip())
    return Config(
        database_url=_database_url(env),
        replica_urls=_replica_urls(env),
        replica_max_lag_ms=_int(env, "DATABASE_REPLICA_MAX_LAG_MS", 1000, minimum=1, maximum=60_000),
        data_dir=Path(env.get("DATA_DIR", "").strip() or DEFAULT_DATA_DIR),
        pool_size=_int(env, "DATABASE_POOL_SIZE", 10, minimum=1, maximum=1000),
        pool_timeout=_float(env, "DATABASE_POOL_TIMEOUT", 5.0),
        pool_stale_timeout=_int(env, "DATABASE_POOL_STALE_TIMEOUT", 300, minimum=1),
        statement_timeout_ms=_int(env, "DATABASE_STATEMENT_TIMEOUT_MS", 5000, minimum=0),
        prepared_statements=_switch(env, "DATABASE_PREPARED_STATEMENTS", True),
        connect_timeout=_int(env, "DATABASE_CONNECT_TIMEOUT", 5, minimum=1),
        better_auth_url=auth_url,
        better_auth_secret=secret,
        jwks_url=_http_url(env, "JWKS_URL", default_jwks),
        jwt_issuer=env.get("JWT_ISSUER", "").strip() or None,
        jwt_audience=env.get("JWT_AUDIENCE", "").strip() or None,
        jwks_min_refresh_seconds=_float(env, "JWKS_MIN_REFRESH_SECONDS", 1.0),
        cors_origins=origins,
        max_content_length=_int(env, "MAX_CONTENT_LENGTH", 1024 * 1024, minimum=1024),
        **_observability(env),
        log_format=log_format,
        log_level=log_level,
        vocabularies=_vocabularies(env),
    )
