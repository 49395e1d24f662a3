"""Operator commands: `flask --app wsgi seed | seed-bulk | token | export | import | doctor` (each
has --help).

They run against the database the service uses (DATABASE_URL, else the embedded PostgreSQL), on
every user's rows at once: row-level security is lifted for their transaction (see bulk.py).
A failure prints one line and exits non-zero; a command that fails changes nothing.
"""
import contextlib
import json
import sys
import time
from pathlib import Path

import click
import jwt
import peewee
import psycopg2
import psycopg2.errors
from flask import current_app
from flask.cli import with_appcontext

from . import bulk_seed, doctor, export_file, import_file, seeding, vocabulary_release


def _database():
    return current_app.extensions["database"]


@contextlib.contextmanager
def _one_line_errors():
    """Turn database and transfer errors into one clear line (click prints it, exit 1)."""
    try:
        yield
    except export_file.TransferError as error:
        raise click.ClickException(str(error)) from None
    except (peewee.DatabaseError, peewee.InterfaceError, psycopg2.Error) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if isinstance(error, psycopg2.errors.UndefinedTable):
            message += " (run `pw_migrate migrate` first)"
        raise click.ClickException(f"database error: {message}") from None


def _progress(length, label):
    """A progress bar on stderr (stdout stays clean for `export -`)."""
    return click.progressbar(length=length, label=label, file=sys.stderr, show_pos=True,
                             show_percent=True, show_eta=True)


@click.command("seed")
@with_appcontext
def seed_command():
    """Add demo data: users demo-alice and demo-bob with 10 tasks. Re-runnable: adds only what is missing.

    Then try: flask --app wsgi token demo-alice
    """
    with _one_line_errors():
        users, tasks = seeding.seed_demo(_database())
    click.echo(f"Seeded {users} users and {tasks} tasks "
               f"({len(seeding.DEMO_USERS) - users} users and {len(seeding.DEMO_TASKS) - tasks} tasks were there).")
    click.echo("Users: " + ", ".join(user_id for user_id, _, _ in seeding.DEMO_USERS))


@click.command("seed-bulk")
@with_appcontext
@click.option("--users", type=click.IntRange(0), default=1000, show_default=True,
              help="How many users to create (ids PREFIX-00001, PREFIX-00002, ...).")
@click.option("--tasks-per-user", type=click.IntRange(0), default=100, show_default=True,
              help="Tasks for each of those users.")
@click.option("--heavy-user-tasks", type=click.IntRange(0), default=0, show_default=True,
              help="Also create one user PREFIX-heavy holding this many tasks.")
@click.option("--prefix", default="bench-user", show_default=True,
              help="User id prefix; ids are PREFIX-NNNNN and PREFIX-heavy.")
@click.option("--replace", is_flag=True,
              help="First delete the users under PREFIX (and, by cascade, their tasks).")
@click.option("--seed", "random_seed", type=int, default=1, show_default=True,
              help="Random seed: the same seed gives the same titles, priorities and dates.")
def seed_bulk_command(users, tasks_per_user, heavy_user_tasks, prefix, replace, random_seed):
    """Bulk data for benchmarks, written by COPY in one transaction.

    Example: flask --app wsgi seed-bulk --users 10000 --tasks-per-user 100 --heavy-user-tasks 100000
    """
    db = _database()
    started = time.perf_counter()
    with _one_line_errors():
        existing = bulk_seed.count_bulk_users(db, prefix)
        if existing and not replace:
            raise click.ClickException(
                f"{existing} users with ids {prefix}-* exist already; pass --replace to re-create "
                "them, or --prefix to add others")
        with _progress(users * tasks_per_user + heavy_user_tasks, "Seeding tasks") as bar:
            added_users, added_tasks = bulk_seed.seed_bulk(
                db, users, tasks_per_user, heavy_tasks=heavy_user_tasks, prefix=prefix,
                replace=replace, seed=random_seed, progress=bar.update)
    elapsed = time.perf_counter() - started
    names = [f"{bulk_seed.bulk_user_id(prefix, 1)} .. {bulk_seed.bulk_user_id(prefix, users)}"] if users else []
    names += [bulk_seed.heavy_user_id(prefix)] if heavy_user_tasks else []
    click.echo(f"Created {added_users} users and {added_tasks} tasks in {elapsed:.1f} s"
               + (f" (users {', '.join(names)})." if names else "."))


@click.command("token")
@with_appcontext
@click.argument("user_id")
@click.option("--email", help="The token's email claim (used when the user is first provisioned).")
@click.option("--name", help="The token's name claim.")
@click.option("--ttl", type=click.IntRange(1), default=3600, show_default=True,
              help="Seconds until the token expires.")
def token_command(user_id, email, name, ttl):
    """Print a development token for USER_ID: HS256, signed with BETTER_AUTH_SECRET.

    Use it as: curl -H "Authorization: Bearer $TOKEN" http://localhost:8000/api/tasks
    """
    config = current_app.config["TODO_CONFIG"]
    if not config.better_auth_secret:
        raise click.ClickException(
            "BETTER_AUTH_SECRET is not set, so there is no key to sign with; set it in the "
            "environment or .env (scripts/run writes a development one) - at least 32 bytes")
    if not user_id.strip() or len(user_id) > 255:
        raise click.BadParameter("must be 1..255 characters", param_hint="USER_ID")
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + ttl}
    if email:
        claims["email"] = email
    if name:
        claims["name"] = name
    # HS tokens are checked against iss/aud only when the service is configured with them.
    if config.jwt_issuer:
        claims["iss"] = config.jwt_issuer
    if config.jwt_audience:
        claims["aud"] = config.jwt_audience
    click.echo(jwt.encode(claims, config.better_auth_secret, algorithm="HS256"))


@contextlib.contextmanager
def _output(file):
    """A text stream to FILE that appears only when the block succeeds ("-": stdout)."""
    if file == "-":
        yield sys.stdout
        return
    target = Path(file)
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            yield out
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


@click.command("export")
@with_appcontext
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
def export_command(file):
    """Write all users and tasks to FILE as JSON Lines ("-" for stdout).

    Ids, versions, timestamps and the next task id are kept; read back with `import`. FILE
    appears only when the export succeeded.
    """
    db = _database()
    bar = None

    def start(users, tasks):
        nonlocal bar
        bar = _progress(users + tasks, "Exporting")
        bar.__enter__()

    try:
        with _one_line_errors(), _output(file) as out:
            users, tasks = export_file.export_data(db, out, progress=lambda n: bar.update(n), on_counts=start)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(f"Exported {users} users and {tasks} tasks to {file}.", err=file == "-")


@click.command("import")
@with_appcontext
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--merge", is_flag=True,
              help="Import into a database that already holds data: rows whose id exists are kept and skipped.")
def import_command(file, merge):
    """Load users and tasks from a JSON Lines FILE written by `export`, in one transaction.

    Refuses a database that already holds data unless --merge. A malformed line stops the
    import with its line number and leaves the database unchanged.
    """
    db = _database()
    size = Path(file).stat().st_size if file != "-" else 0
    with _one_line_errors(), click.open_file(file, "rb") as stream, \
            _progress(size, "Importing") as bar:
        counts = import_file.import_data(db, stream, current_app.config["TODO_CONFIG"].vocabularies,
                                           merge=merge, progress=bar.update)
    skipped = ""
    if counts["users_skipped"] or counts["tasks_skipped"]:
        skipped = f" (kept {counts['users_skipped']} users and {counts['tasks_skipped']} tasks that existed)"
    click.echo(f"Imported {counts['users']} users and {counts['tasks']} tasks{skipped}; "
               f"the next task id is {counts['next_task_id']}.")


@click.command("apply-vocabularies")
@with_appcontext
def apply_vocabularies_command():
    """Make the database's priority and status vocabularies those configured (TASK_PRIORITIES,
    TASK_STATUSES). Run by the release phase after `pw_migrate migrate`; re-runnable.

    Refuses, changing nothing, to drop a value that tasks still use (naming it and how many).
    """
    vocabularies = current_app.config["TODO_CONFIG"].vocabularies
    try:
        with _one_line_errors():
            report = vocabulary_release.apply_vocabularies(_database(), vocabularies)
    except vocabulary_release.VocabularyError as error:
        raise click.ClickException(str(error)) from None
    for name, changes in report.items():
        values = ", ".join(vocabularies[name].values)
        click.echo(f"{name}: {values}" + (f" ({'; '.join(changes)})" if changes else " (unchanged)"))



@click.command("doctor")
@with_appcontext
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of the checklist.")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="gunicorn workers per instance  [default: WEB_CONCURRENCY, else 2 x cores]")
@click.option("--instances", type=click.IntRange(1), default=1, show_default=True,
              help="Instances (dynos, containers) of the web process sharing the database.")
@click.option("--user", default=doctor.PROBE_USER, show_default=True,
              help="The user whose list plans are explained.")
def doctor_command(as_json, workers, instances, user):
    """Check the database the service uses: version, latency, time zone, migrations, every table,
    column, type, constraint, index, trigger and policy the migrations create, row-level security,
    the role, the list's plans, connection limits and the pooler. Changes nothing.

    Exits 1 when a check fails (WARN lines do not fail).
    """
    checks = doctor.run(_database(), current_app.config["TODO_CONFIG"], workers or doctor.default_workers(),
                        instances, user)
    if as_json:
        click.echo(json.dumps(doctor.as_json(checks), indent=2))
    else:
        for line in doctor.report(checks):
            click.echo(line)
    if any(check.status == "fail" for check in checks):
        sys.exit(1)


COMMANDS = (seed_command, seed_bulk_command, token_command, export_command, import_command,
            apply_vocabularies_command, doctor_command)


def register(app):
    """Add the service's commands to `app.cli`."""
    for command in COMMANDS:
        app.cli.add_command(command)
