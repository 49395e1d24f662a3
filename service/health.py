"""Public probes: /health (the process answers) and /readyz (the database answers and every
migration is applied)."""
from flask import Blueprint

from .config import expected_migrations
from .db import database
from .errors import problem

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    """Liveness: no database involved."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """Readiness: 200 when the database answers and no migration is pending, else 503."""
    try:
        with database.connection_context():
            applied = {name for (name,) in database.execute_sql("SELECT name FROM migratehistory")}
    except Exception as error:  # noqa: BLE001 - any failure here means "not ready"
        reason = "no migration has been applied" if "migratehistory" in str(error) else \
            "the database is unreachable"
        return problem(503, f"Not ready: {reason}.", headers={"Retry-After": "5"})
    pending = [name for name in expected_migrations() if name not in applied]
    if pending:
        return problem(503, f"Not ready: migrations pending: {', '.join(pending)}.",
                       headers={"Retry-After": "5"})
    return {"status": "ready", "migrations": len(applied)}
