"""`flask --app wsgi doctor`: checks a live database against what this code expects, one line per
fact, each a pass or the reason it is not.

It connects as the service does (its pool, DATABASE_URL or the embedded server, the same role)
and changes nothing: the expected schema is derived from the migrations inside a transaction
that is rolled back (schema_catalog.py), the plans are EXPLAINs, the pooler probes are SELECTs.
"""
import os
import statistics
import time
from dataclasses import asdict, dataclass

import peewee
import psycopg2
from werkzeug.datastructures import MultiDict

from ..config import expected_migrations
from ..list_params import SORTS, parse_list_params
from ..store.task_sql import page_arguments, page_query
from . import pooler, schema_catalog

MIN_SERVER_VERSION = 140000
SLOW_ROUND_TRIP_MS = 20.0
CLOCK_SKEW_SECONDS = 5.0
PROBE_USER = "doctor-probe"
GUNICORN_THREADS = 4  # gunicorn.conf.py's threads per worker
# What a difference of each kind means: a missing or changed one always fails; one the code does
# not know fails where it can widen access (a permissive policy ORs with the service's own).
SCHEMA_CHECKS = (("tables", "tables", "warn"), ("columns", "columns", "warn"), ("types", "types", "warn"),
                 ("constraints", "constraints", "warn"), ("indexes", "indexes", "warn"),
                 ("triggers", "triggers", "warn"), ("functions", "functions", "warn"),
                 ("policies", "row-level-security policies", "fail"))


@dataclass
class Check:
    """One line of the checklist: `status` is pass, warn or fail."""

    name: str
    status: str
    detail: str


def run(db, config, workers, instances=1, user=PROBE_USER):
    """Every check, in order; stops after the first when the database cannot be reached."""
    checks = []
    try:
        with db.connection_context():
            version = _scalar(db, "SHOW server_version_num")
    except Exception as error:  # noqa: BLE001 - whatever stops the connection is the one finding
        return [Check("connection", "fail", f"cannot connect: {_first_line(error)}")]
    with db.connection_context():
        checks.append(_attempt("server version", _version, db, int(version)))
        checks += [_attempt("connection latency", _latency, db), _attempt("time zone", _time_zone, db),
                   _attempt("migrations", _migrations, db)]
        checks += _schema(db)
        checks += [_attempt("service role", _role, db),
                   _attempt("list plan", _list_plan, db, config, user),
                   _attempt("connections", _connections, db, config, workers, instances)]
    checks.append(_attempt("pooler", _pooler, db))
    return checks


def _attempt(name, check, *args):
    """`check(*args)`, or a failing line saying why it could not run (the database's words)."""
    try:
        return check(*args)
    except Exception as error:  # noqa: BLE001 - a check that cannot run is a finding, not a crash
        return Check(name, "fail", f"could not check: {_first_line(error)}")


def _scalar(db, sql, params=()):
    return db.execute_sql(sql, params).fetchone()[0]


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _version(db, number):
    shown = _scalar(db, "SHOW server_version")
    if number < MIN_SERVER_VERSION:
        return Check("server version", "fail", f"PostgreSQL {shown}: needs 14 or newer")
    return Check("server version", "pass", f"PostgreSQL {shown}")


def _latency(db):
    times = []
    for _ in range(5):
        started = time.perf_counter()
        _scalar(db, "SELECT 1")
        times.append((time.perf_counter() - started) * 1000)
    median = statistics.median(times)
    status = "pass" if median <= SLOW_ROUND_TRIP_MS else "warn"
    note = "" if status == "pass" else f" (over {SLOW_ROUND_TRIP_MS:.0f} ms: each request makes 1-3 round trips)"
    return Check("connection latency", status, f"{median:.2f} ms per round trip, median of 5{note}")


def _time_zone(db):
    server_zone = _scalar(db, "SHOW TimeZone")
    db.bind_user(PROBE_USER)
    try:
        service_zone, db_now = db.execute_sql(
            "SELECT current_setting('TimeZone'), extract(epoch FROM clock_timestamp())").fetchone()
    finally:
        db.unbind()
    skew = float(db_now) - time.time()
    if service_zone != "UTC":
        return Check("time zone", "fail", f"the service's statements run in {service_zone}, not UTC")
    detail = f"UTC for the service's statements (server default {server_zone}); clock {skew:+.1f} s from this machine"
    status = "pass" if abs(skew) <= CLOCK_SKEW_SECONDS else "warn"
    return Check("time zone", status, detail + ("" if status == "pass" else ": token expiry and timestamps disagree"))


def _migrations(db):
    shipped = expected_migrations()
    try:
        with db.atomic():
            applied = [name for (name,) in db.execute_sql("SELECT name FROM migratehistory ORDER BY id")]
    except (peewee.DatabaseError, psycopg2.Error) as error:
        return Check("migrations", "fail", f"no migration applied ({_first_line(error)}): run pw_migrate migrate")
    pending = [name for name in shipped if name not in applied]
    unknown = [name for name in applied if name not in shipped]
    if pending:
        return Check("migrations", "fail", f"pending: {', '.join(pending)} (run pw_migrate migrate)")
    if unknown:
        return Check("migrations", "warn", f"all {len(shipped)} applied, and {', '.join(unknown)} that this "
                                           "code does not ship (is the code older than the database?)")
    return Check("migrations", "pass", f"all {len(shipped)} applied, none pending")


def _schema(db):
    schema = _scalar(db, "SELECT current_schema()")
    try:
        expected, live = schema_catalog.expected_and_live(db, schema)
    except Exception as error:  # noqa: BLE001 - e.g. no CREATE privilege for the scratch schema
        reason = f"could not derive the expected schema from the migrations: {_first_line(error)}"
        return [Check("schema", "fail", reason + " (the doctor runs them in a scratch schema it rolls "
                                                  "back; the role needs CREATE on the database)")]
    checks = []
    for kind, title, unexpected_status in SCHEMA_CHECKS:
        missing, unexpected, changed, on_missing = schema_catalog.differences(expected, live, kind)
        reasons = [f"missing: {', '.join(missing)}"] * bool(missing)
        reasons += [f"{on_missing} missing with their tables"] * bool(on_missing)
        reasons += [f"differs from the migrations: {', '.join(changed)}"] * bool(changed)
        if reasons:
            extra = f"; not in the migrations: {', '.join(unexpected)}" if unexpected else ""
            checks.append(Check(title, "fail", "; ".join(reasons) + extra))
        elif unexpected:
            checks.append(Check(title, unexpected_status, f"as expected, plus some the migrations do not "
                                                          f"create: {', '.join(unexpected)}"))
        elif expected[kind]:
            checks.append(Check(title, "pass", f"all {len(expected[kind])} as the migrations create them"))
        else:
            checks.append(Check(title, "pass", "none, and the migrations create none"))
    checks.append(_row_level_security(expected, live))
    return checks


def _row_level_security(expected, live):
    guarded = sorted(table for (table, _), (enabled, _forced) in expected["row_level_security"].items() if enabled)
    problems = []
    for table in guarded:
        enabled, forced = live["row_level_security"].get((table, table), (None, None))
        if enabled is None:
            problems.append(f"{table}: the table is missing")
        elif not enabled:
            problems.append(f"{table}: row-level security is disabled")
        elif not forced:
            problems.append(f"{table}: not FORCEd (the table's owner, often the service's role, bypasses it)")
    if problems:
        return Check("row-level security", "fail", "; ".join(problems))
    return Check("row-level security", "pass", f"enabled and forced on {', '.join(guarded)}")


def _role(db):
    role, superuser, bypass = db.execute_sql(
        "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone()
    if superuser or bypass:
        what = "a superuser" if superuser else "BYPASSRLS"
        return Check("service role", "fail", f"{role} is {what}: row-level security does not apply to it; "
                                             "connect as an ordinary role")
    return Check("service role", "pass", f"{role}: not a superuser, no BYPASSRLS, so row-level security applies")


def _list_plan(db, config, user):
    """EXPLAIN the list's own statement in every sort, as `user` under row-level security."""
    used, seq_scans, small = set(), [], False
    for sort in sorted(set(SORTS.values())):
        for order in ("asc", "desc"):
            params = parse_list_params(MultiDict({"sort": sort, "order": order, "limit": "20"}),
                                       config.vocabularies)
            shape, arguments = page_arguments(user, params, config.vocabularies.done)
            sql, values = page_query(shape, **arguments).sql()
            plan = _explain(db, user, sql, values)
            if "Seq Scan on tasks" in plan:
                small = True  # the planner reads a small table whole: does an index serve it at all?
                plan = _explain(db, user, sql, values, seqscan=False)
            if "Seq Scan on tasks" in plan:
                seq_scans.append(f"{sort} {order}")
            used |= {word for line in plan.splitlines() for word in line.split() if word.startswith("tasks_")}
    if seq_scans:
        return Check("list plan", "fail", f"a user's list reads the whole tasks table for: {', '.join(seq_scans)}")
    note = " (the table is small, so PostgreSQL may read it whole for now)" if small else ""
    return Check("list plan", "pass", f"every sort reads an index: {', '.join(sorted(used))}{note}")


def _explain(db, user, sql, values, seqscan=True):
    db.bind_user(user)
    try:
        with db.atomic():
            if not seqscan:
                db.execute_sql("SELECT set_config('enable_seqscan', 'off', true)")
            return "\n".join(row[0] for row in db.execute_sql("EXPLAIN " + sql, values).fetchall())
    finally:
        db.unbind()


def _connections(db, config, workers, instances):
    max_connections, reserved, in_use, role_limit, db_limit = db.execute_sql("""
        SELECT current_setting('max_connections')::int,
               current_setting('superuser_reserved_connections')::int
                 + coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0),
               (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
               (SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user),
               (SELECT datconnlimit FROM pg_database WHERE datname = current_database())""").fetchone()
    # A worker's threads hold one connection each at most: the pool opens no more than that.
    per_worker = min(config.pool_size, GUNICORN_THREADS)
    need = per_worker * workers * instances
    limits = [("max_connections less reserved", max_connections - reserved)]
    limits += [("the role's CONNECTION LIMIT", role_limit)] if role_limit >= 0 else []
    limits += [("the database's CONNECTION LIMIT", db_limit)] if db_limit >= 0 else []
    name, limit = min(limits, key=lambda item: item[1])
    detail = (f"{workers} workers x {per_worker} connections (pool {config.pool_size}, {GUNICORN_THREADS} "
              f"threads) x {instances} instance(s) = {need} at most; {name}: {limit} ({in_use} in use now)")
    if need > limit:
        return Check("connections", "fail", detail + ": lower DATABASE_POOL_SIZE or WEB_CONCURRENCY, "
                                                     "or put PgBouncer in front")
    return Check("connections", "warn" if need > 0.8 * limit else "pass", detail)


def _pooler(db):
    return Check("pooler", *pooler.probe(db))


def default_workers():
    """gunicorn's worker count as gunicorn.conf.py computes it: WEB_CONCURRENCY, else 2 x cores."""
    raw = os.environ.get("WEB_CONCURRENCY", "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 2 * cores


def report(checks):
    """The checklist as text lines, and a last line counting them."""
    marks = {"pass": "PASS", "warn": "WARN", "fail": "FAIL"}
    width = max(len(check.name) for check in checks)
    lines = [f"{marks[check.status]}  {check.name:<{width}}  {check.detail}" for check in checks]
    counts = {status: sum(check.status == status for check in checks) for status in marks}
    lines.append(f"{len(checks)} checks: {counts['pass']} pass, {counts['warn']} warn, {counts['fail']} fail")
    return lines


def as_json(checks):
    """The checklist for machines."""
    return {"ok": not any(check.status == "fail" for check in checks), "checks": [asdict(c) for c in checks]}
