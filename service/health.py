"""Public probes: /health (the process answers) and /readyz (the database answers, every
migration is applied and its vocabularies are the configured ones)."""
import peewee
from flask import Blueprint, current_app

from .config import expected_migrations
from .db import database
from .errors import problem
from .vocabularies import TABLES

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    """Liveness: no database involved."""
    return {"status": "ok"}


# One round trip: the applied migrations and, in order, the values of each vocabulary's table
# (table names from vocabularies.TABLES, constants).
_STORED = ", ".join(f"(SELECT array_agg(value ORDER BY rank) FROM {table})" for table in TABLES.values())  # noqa: S608
READINESS_SQL = f"SELECT (SELECT array_agg(name) FROM migratehistory), {_STORED}"  # noqa: S608
APPLY_HINT = "run flask --app wsgi apply-vocabularies"


def _not_ready(reason):
    return problem(503, f"Not ready: {reason}.", headers={"Retry-After": "5"})


def _read_state():
    """(applied migration names, {vocabulary name: stored values in order} or None before the
    migration that creates the lookup tables)."""
    with database.connection_context():
        try:
            applied, *stored = database.execute_sql(READINESS_SQL).fetchone()
        except peewee.ProgrammingError as error:
            if "migratehistory" in str(error):
                raise
            # The lookup tables do not exist yet: a migration is pending, which says more.
            (applied,) = database.execute_sql("SELECT array_agg(name) FROM migratehistory").fetchone()
            return set(applied or ()), None
    return set(applied or ()), dict(zip(TABLES, stored, strict=True))


@bp.get("/readyz")
def readyz():
    """Readiness: 200 when the database answers, no migration is pending and the database's
    vocabularies are the configured ones (same values, same order), else 503 with the reason."""
    try:
        applied, stored = _read_state()
    except Exception as error:  # noqa: BLE001 - any failure here means "not ready"
        return _not_ready("no migration has been applied" if "migratehistory" in str(error)
                          else "the database is unreachable")
    pending = [name for name in expected_migrations() if name not in applied]
    if pending:
        return _not_ready(f"migrations pending: {', '.join(pending)}")
    configured = current_app.config["TODO_CONFIG"].vocabularies
    differing = [f"{name} is {', '.join(values or ())} in the database but {', '.join(configured[name].values)} "
                 "in the configuration" for name, values in (stored or {}).items()
                 if tuple(values or ()) != configured[name].values]
    if differing:
        return _not_ready(f"the vocabularies differ ({'; '.join(differing)}): {APPLY_HINT}")
    return {"status": "ready", "migrations": len(applied)}
