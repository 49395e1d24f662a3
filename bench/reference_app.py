"""The thin reference: the floor cost of any Flask service doing the benchmark's job.

Flask + raw psycopg2 + PyJWT HS256, one connection per worker thread, the SAME SQL the service
sends (its row-level-security scope prefix included, read from the service's statement log) and
the same JSON (orjson, as the service). It serves only the benchmarked routes and checks only
what it must (a valid token, a title, a limit, a cursor): no logging, no request ids, no pool,
no provisioning, no CORS. Run it under the service's gunicorn settings:

    gunicorn -c gunicorn.conf.py --bind 127.0.0.1:8081 bench.reference_app:app

Environment: DATABASE_URL (the app role's URL), BETTER_AUTH_SECRET.
"""
import base64
import json
import os
import threading
from datetime import datetime

import jwt
import orjson
import psycopg2
from flask import Flask, Response, request

SECRET = os.environ["BETTER_AUTH_SECRET"]
DATABASE_URL = os.environ["DATABASE_URL"]
STATEMENT_TIMEOUT = os.environ.get("DATABASE_STATEMENT_TIMEOUT_MS", "5000")

# Exactly the service's statements (service/db/pool.py's scope + Peewee's SQL for the routes).
SCOPE = ("SELECT set_config('app.user_id', %s, true), "
         "set_config('app.bypass_rls', %s, true), "
         "set_config('statement_timeout', %s, true), "
         "set_config('TimeZone', 'UTC', true); ")
COLUMNS = ('"t1"."id", "t1"."user_id", "t1"."title", "t1"."description", "t1"."completed", '
           '"t1"."priority", "t1"."due_date", "t1"."version", "t1"."created_at", "t1"."updated_at"')
RETURNING = COLUMNS.replace('"t1"', '"tasks"')
COUNT = '(SELECT COUNT("t1"."id") FROM "tasks" AS "t1" WHERE ("t1"."user_id" = %s))'
LIST_FIRST = (SCOPE + f'SELECT {COLUMNS}, {COUNT} AS "total" FROM "tasks" AS "t1" '
              'WHERE ("t1"."user_id" = %s) '
              'ORDER BY "t1"."created_at" DESC, "t1"."id" DESC LIMIT %s')
LIST_AFTER = (SCOPE + f'SELECT {COLUMNS}, {COUNT} AS "total" FROM "tasks" AS "t1" '
              'WHERE (("t1"."user_id" = %s) AND (("t1"."created_at", "t1"."id") < (%s, %s))) '
              'ORDER BY "t1"."created_at" DESC, "t1"."id" DESC LIMIT %s')
COUNT_ONLY = SCOPE + 'SELECT COUNT("t1"."id") FROM "tasks" AS "t1" WHERE ("t1"."user_id" = %s)'
GET_ONE = (SCOPE + f'SELECT {COLUMNS} FROM "tasks" AS "t1" '
           'WHERE (("t1"."user_id" = %s) AND ("t1"."id" = %s)) LIMIT %s')
CREATE = (SCOPE + 'INSERT INTO "tasks" ("user_id", "title", "completed", "priority", "version") '
          f'VALUES (%s, %s, %s, %s, %s) RETURNING {RETURNING}')
TOGGLE = (SCOPE + 'UPDATE "tasks" SET "completed" = NOT "tasks"."completed" '
          'WHERE (("tasks"."user_id" = %s) AND ("tasks"."id" = %s)) '
          f'RETURNING {RETURNING}')

app = Flask(__name__)
_local = threading.local()


def cursor():
    """A cursor on this thread's connection (opened on first use, autocommit like Peewee's)."""
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = psycopg2.connect(DATABASE_URL, application_name="todo-bench-reference")
        conn.autocommit = True
        _local.conn = conn
    return conn.cursor()


def run(sql, params):
    """Run one statement (one round trip) and return its rows."""
    with cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def scope(user_id):
    return (user_id, "off", STATEMENT_TIMEOUT)


def reply(body, status=200, headers=None):
    return Response(orjson.dumps(body), status, headers, mimetype="application/json")


def problem(status, detail):
    return Response(orjson.dumps({"type": "about:blank", "title": "Error", "status": status,
                                  "detail": detail}), status, mimetype="application/problem+json")


def task_json(row):
    return {"id": row[0], "user_id": row[1], "title": row[2], "description": row[3],
            "completed": row[4], "priority": row[5], "due_date": row[6],
            "created_at": row[8], "updated_at": row[9]}


def task_reply(row, status=200, headers=None):
    return reply(task_json(row), status, {"ETag": f'"{row[7]}"', **(headers or {})})


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


def encode_cursor(row):
    raw = json.dumps(["created", "d", row[8].isoformat(), row[0]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text):
    sort, direction, value, last_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    if sort != "created" or direction != "d" or not isinstance(last_id, int):
        raise ValueError("not a cursor of this order")
    return datetime.fromisoformat(value), last_id


@app.get("/api/tasks")
def index():
    user_id = request.user_id
    try:
        limit = int(request.args.get("limit", 100))
        after = decode_cursor(request.args["cursor"]) if request.args.get("cursor") else None
    except (ValueError, TypeError):
        return problem(422, "Invalid list parameters.")
    if not 1 <= limit <= 500:
        return problem(422, "Invalid list parameters.")
    if after is None:
        rows = run(LIST_FIRST, (*scope(user_id), user_id, user_id, limit + 1))
    else:
        rows = run(LIST_AFTER, (*scope(user_id), user_id, user_id, *after, limit + 1))
    if rows:
        count = rows[0][10]
    elif after is not None:
        count = run(COUNT_ONLY, (*scope(user_id), user_id))[0][0]
    else:
        count = 0
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return reply({"tasks": [task_json(row) for row in rows[:limit]], "count": count,
                  "next_cursor": next_cursor})


@app.post("/api/tasks")
def create():
    body = request.get_json(silent=True)
    title = body.get("title") if isinstance(body, dict) else None
    if not isinstance(title, str) or not 1 <= len(title.strip()) <= 200:
        return problem(422, "title is required.")
    user_id = request.user_id
    row = run(CREATE, (*scope(user_id), user_id, title.strip(), False, "medium", 1))[0]
    return task_reply(row, 201, {"Location": f"/api/tasks/{row[0]}"})


@app.get("/api/tasks/<int:task_id>")
def get(task_id):
    rows = run(GET_ONE, (*scope(request.user_id), request.user_id, task_id, 1))
    return task_reply(rows[0]) if rows else problem(404, f"Task {task_id} not found.")


@app.patch("/api/tasks/<int:task_id>/complete")
def complete(task_id):
    rows = run(TOGGLE, (*scope(request.user_id), request.user_id, task_id))
    return task_reply(rows[0]) if rows else problem(404, f"Task {task_id} not found.")


@app.get("/health")
def health():
    return reply({"status": "ok"})
