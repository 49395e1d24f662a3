"""The thin reference: the floor cost of a careful hand-written Flask service doing the benchmark's job.

Flask + raw psycopg2 + PyJWT HS256, one connection per worker thread, its own SQL
(bench/reference_sql.py: what such an app would write, not the service's statements) and the
same JSON as the service for every benchmarked route (orjson, as the service): the task with
its status, tags, category, reminder and recurrence; the list's counts; the statistics; the due
reminders; a completed recurring task with its next occurrence (computed with python-dateutil,
inserted in the same transaction). It connects as the service's ordinary role, so it pays the
same row-level security, with the same scope prefix on every statement.

It serves only the benchmarked routes and checks only what it must (a valid token, a title, a
limit, a cursor, one tag): no logging, no request ids, no pool, no provisioning, no CORS. Run it
under the service's gunicorn settings:

    gunicorn -c gunicorn.conf.py --bind 127.0.0.1:8081 bench.reference_app:app

Environment: DATABASE_URL (the app role's URL), BETTER_AUTH_SECRET.
"""
import base64
import json
import os
import re
import threading
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import jwt
import orjson
import psycopg2
import psycopg2.extras
from dateutil.rrule import rrulestr
from flask import Flask, Response, request

from . import reference_sql as sql

SECRET = os.environ["BETTER_AUTH_SECRET"]
DATABASE_URL = os.environ["DATABASE_URL"]
STATEMENT_TIMEOUT = os.environ.get("DATABASE_STATEMENT_TIMEOUT_MS", "5000")
COUNT_RE = re.compile(r"(?i)(^|;|:)(COUNT=)(\d+)")
# The tags come back as json (json_agg): decoded by orjson rather than the json module.
psycopg2.extras.register_default_json(globally=True, loads=orjson.loads)
LIST_SQL = {(tagged, after): sql.list_sql(tagged, after) for tagged in (False, True) for after in (False, True)}
COMPLETE_SQL = {wanted: sql.COMPLETE.format(value=value)
                for wanted, value in ((None, "NOT t.completed"), (True, "true"), (False, "false"))}

app = Flask(__name__)
_local = threading.local()
_vocabularies = None


def run(statement, params):
    """Run one statement (one round trip, autocommit: its own transaction) on this thread's
    connection and return its rows."""
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = psycopg2.connect(DATABASE_URL, application_name="todo-bench-reference")
        conn.autocommit = True
        _local.conn = conn
    with conn.cursor() as cur:
        cur.execute(statement, {"user": request.user_id, "timeout": STATEMENT_TIMEOUT, **params})
        return cur.fetchall()


def reply(body, status=200, headers=None):
    return Response(orjson.dumps(body), status, headers, mimetype="application/json")


def problem(status, detail):
    return Response(orjson.dumps({"type": "about:blank", "title": "Error", "status": status,
                                  "detail": detail}), status, mimetype="application/problem+json")


def task_json(row, at=0, tags=None):
    """A task from its columns (reference_sql.COLUMNS, then the tags) starting at row[at]."""
    return {"id": row[at], "user_id": row[at + 1], "title": row[at + 2], "description": row[at + 3],
            "completed": row[at + 4], "is_completed": row[at + 4], "priority": row[at + 5],
            "status": row[at + 6], "completed_at": row[at + 7], "category": row[at + 8],
            "tags": row[at + 15] if tags is None else tags, "due_date": row[at + 9], "remind_at": row[at + 10],
            "recurrence": row[at + 11], "created_at": row[at + 13], "updated_at": row[at + 14]}


def task_reply(task, version, status=200, headers=None):
    return reply(task, status, {"ETag": f'"{version}"', **(headers or {})})


@app.before_request
def authenticate():
    """Verify the HS256 bearer token on every API request."""
    if request.path == "/health":
        return None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    try:
        if scheme.lower() != "bearer":
            raise jwt.InvalidTokenError("no bearer token")
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": ["exp", "sub"]})
    except jwt.PyJWTError:
        return problem(401, "Invalid token.")
    request.user_id = claims["sub"]
    return None


def encode_cursor(task):
    raw = json.dumps(["created", "d", task["created_at"].isoformat(), task["id"]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text):
    sort, direction, value, last_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    if sort != "created" or direction != "d" or not isinstance(last_id, int):
        raise ValueError("not a cursor of this order")
    return datetime.fromisoformat(value), last_id


def limit_of(args, default=100):
    limit = int(args.get("limit", default))
    if not 1 <= limit <= 500:
        raise ValueError("limit out of range")
    return limit


@app.get("/api/tasks")
def index():
    try:
        limit = limit_of(request.args)
        after = decode_cursor(request.args["cursor"]) if request.args.get("cursor") else None
        tags = request.args.getlist("tag")
        if len(tags) > 1:
            raise ValueError("one tag at most")
    except (ValueError, TypeError):
        return problem(422, "Invalid list parameters.")
    tag = tags[0].strip().lower() if tags else None
    params = {"tag": tag, "fetch": limit + 1}
    if after is not None:
        params["after_at"], params["after_id"] = after
    rows = run(LIST_SQL[tag is not None, after is not None], params)
    total, done = rows[0][0], rows[0][1]
    tasks = [task_json(row, 2) for row in rows if row[2] is not None]
    next_cursor = encode_cursor(tasks[limit - 1]) if len(tasks) > limit else None
    return reply({"tasks": tasks[:limit], "count": total, "total": total, "completed_count": done,
                  "pending_count": total - done, "next_cursor": next_cursor})


@app.post("/api/tasks")
def create():
    body = request.get_json(silent=True)
    title = body.get("title") if isinstance(body, dict) else None
    if not isinstance(title, str) or not 1 <= len(title.strip()) <= 200:
        return problem(422, "title is required.")
    row = run(sql.CREATE, {"title": title.strip()})[0]
    return task_reply(task_json(row, tags=[]), row[12], 201, {"Location": f"/api/tasks/{row[0]}"})


@app.get("/api/tasks/<int:task_id>")
def get(task_id):
    rows = run(sql.GET, {"id": task_id})
    return task_reply(task_json(rows[0]), rows[0][12]) if rows else problem(404, f"Task {task_id} not found.")


def next_occurrence(rule, due, zone):
    """(next due date in UTC, its rule) after the occurrence due at `due`, in the user's zone;
    None when the rule has ended."""
    count = COUNT_RE.search(rule)
    if count and int(count[3]) <= 1:
        return None
    start = due.astimezone(ZoneInfo(zone))
    following = rrulestr(rule, dtstart=start).after(start)
    if following is None:
        return None
    if count:
        rule = COUNT_RE.sub(lambda m: f"{m[1]}{m[2]}{int(m[3]) - 1}", rule, count=1)
    return following.astimezone(UTC), rule


@app.patch("/api/tasks/<int:task_id>/complete")
def complete(task_id):
    body = request.get_json(silent=True) if request.content_length else None
    wanted = body.get("completed") if isinstance(body, dict) else None
    if wanted not in (None, True, False):
        return problem(422, "completed must be true or false.")
    for _attempt in range(2):
        rows = run(COMPLETE_SQL[wanted], {"id": task_id})
        if not rows:
            return problem(404, f"Task {task_id} not found.")
        _completed, rule, due, remind, version, zone = rows[0][:6]
        if rows[0][6] is not None:  # written: not the completion of a recurring task
            task = task_json(rows[0], 6)
            if rule is not None and wanted is not False:
                task["next_occurrence"] = None
            return task_reply(task, rows[0][6 + 12])
        following = next_occurrence(rule, due, zone)
        params = {"id": task_id, "version": version}
        if following is None:
            rows = run(sql.COMPLETE_LAST, params)
            if rows:
                return task_reply({**task_json(rows[0]), "next_occurrence": None}, rows[0][12])
            continue
        next_due, params["rule"] = following
        params["due"], params["remind"] = next_due, remind + (next_due - due) if remind is not None else None
        rows = run(sql.COMPLETE_RECURRING, params)
        if rows:  # else it changed meanwhile: from the top
            task = task_json(rows[0])
            task["next_occurrence"] = task_json(rows[0], sql.WIDTH, tags=task["tags"])
            return task_reply(task, rows[0][12])
    return problem(409, f"Task {task_id} changed meanwhile.")


@app.get("/api/reminders")
def reminders():
    try:
        limit = limit_of(request.args)
    except (ValueError, TypeError):
        return problem(422, "Invalid parameters.")
    rows = run(sql.REMINDERS, {"limit": limit})
    return reply({"tasks": [task_json(row, 1) for row in rows if row[1] is not None], "count": rows[0][0]})


def vocabularies():
    """(priorities, statuses) in their order, read once per process (two threads may both read)."""
    global _vocabularies
    if _vocabularies is None:
        _vocabularies = run(sql.VOCABULARIES, {})[0]
    return _vocabularies


@app.get("/api/stats")
def stats():
    zone = request.args.get("tz")
    if zone is not None and not re.fullmatch(r"[A-Za-z0-9_+\-/]{1,64}", zone):
        return problem(422, "Invalid parameters.")
    rows = run(sql.STATS, {"tz": zone})
    priorities, statuses = vocabularies()
    by_priority, by_status, by_category, days = dict.fromkeys(priorities, 0), dict.fromkeys(statuses, 0), {}, {}
    total = completed = overdue = 0
    today = rows[0][8]
    for sets, priority, status, category, day, n, done, late, _today in rows:
        if sets == 0b1111:  # the empty grouping set: every task
            total, completed, overdue = n, done, late
        elif sets == 0b0111:
            by_priority[priority] = n
        elif sets == 0b1011:
            by_status[status] = n
        elif sets == 0b1101:
            by_category[category] = n
        elif day is not None:
            days[day] = n
    by_category.setdefault("none", 0)
    rate = 0 if total == 0 else float((Decimal(completed * 100) / total).quantize(Decimal("0.1"), ROUND_HALF_UP))
    longest = current = length = 0
    previous = None
    for day in sorted(days):
        length = length + 1 if previous is not None and day - previous == timedelta(days=1) else 1
        longest, previous = max(longest, length), day
    if previous is not None and previous >= today - timedelta(days=1):
        current = length
    week = today - timedelta(days=today.weekday())
    week_days = [{"date": week + timedelta(days=n), "completed_count": days.get(week + timedelta(days=n), 0)}
                 for n in range(7)]
    return reply({
        "statistics": {"total_tasks": total, "completed_tasks": completed, "pending_tasks": total - completed,
                       "overdue_tasks": overdue, "completion_rate": rate, "total_completions": completed},
        "by_priority": by_priority, "by_status": by_status, "by_category": by_category,
        "streak": {"current_streak": current, "longest_streak": longest, "last_completion_date": previous},
        "weekly": {"week_start": week, "days": week_days, "total": sum(d["completed_count"] for d in week_days)},
    })


@app.get("/health")
def health():
    return reply({"status": "ok"})
