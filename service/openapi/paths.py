"""The OpenAPI paths, written by hand from what the views do (api/, health.py, docs.py), so each
operation says precisely what it answers; tests/test_openapi.py checks them against the app's
registered routes so they cannot drift."""
from .components import JSON, LIST_PARAMS, ref


def _ok(description, schema=None, headers=(), media=JSON):
    response = {"description": description,
                "headers": {name: ref(name, "headers") for name in ("X-Request-ID", *headers)}}
    if schema is not None:
        response["content"] = {media: {"schema": schema}}
    return response


def _operation(operation_id, summary, tag, ok, errors=(), params=(), body=None,
               body_required=True, public=False, description=None):
    """One operation: its success answers, the listed errors (500 always; 401, 503 on the
    authenticated API) and its parameters."""
    statuses = set(errors) | {500}
    if not public:
        statuses |= {401, 503}
    if body is not None:
        statuses |= {400, 413, 415, 422}
    operation = {
        "operationId": operation_id, "summary": summary, "tags": [tag],
        "parameters": [ref(name, "parameters") for name in (*params, "X-Request-ID")],
        "responses": {**ok, **{str(s): ref(str(s), "responses") for s in sorted(statuses)}},
    }
    if description:
        operation["description"] = description
    if body is not None:
        operation["requestBody"] = {"required": body_required,
                                    "content": {JSON: {"schema": ref(body)}}}
    if public:
        operation["security"] = []
    return operation


def task_paths(prefix, suffix, phase2):
    """The task routes under `prefix` (`/api/tasks` or `/api/{user_id}/tasks`)."""
    path = ["user_id"] if phase2 else []
    extra = {403} if phase2 else set()
    shadowed = {404} if phase2 else set()  # GET /api/users/tasks is the users route's (404)
    tag = "tasks (Phase II paths)" if phase2 else "tasks"
    task = _ok("The task.", ref("Task"), ["ETag"])
    completed = _ok("The task (with `next_occurrence` when it completed a recurring task).",
                    ref("CompletedTask"), ["ETag"])
    written = {412, 404} | extra
    return {
        prefix: {
            "get": _operation(f"listTasks{suffix}", "List the caller's tasks", tag,
                              {"200": _ok("A page of tasks and the total count.", ref("TaskList"))},
                              {422} | extra | shadowed, path + LIST_PARAMS),
            "post": _operation(f"createTask{suffix}", "Create a task", tag,
                               {"201": _ok("Created.", ref("Task"), ["ETag", "Location",
                                                                      "Idempotent-Replayed"])},
                               extra | {409}, path + ["Idempotency-Key"], body="TaskCreate"),
        },
        f"{prefix}/{{task_id}}": {
            "get": _operation(f"getTask{suffix}", "Get a task", tag, {"200": task},
                              {404} | extra, path + ["task_id"]),
            "put": _operation(f"replaceTask{suffix}", "Update a task (same as PATCH)", tag,
                              {"200": completed}, written, path + ["task_id", "If-Match"],
                              body="TaskUpdate"),
            "patch": _operation(f"updateTask{suffix}", "Update some fields of a task", tag,
                                {"200": completed}, written, path + ["task_id", "If-Match"],
                                body="TaskUpdate"),
            "delete": _operation(f"deleteTask{suffix}", "Delete a task", tag,
                                 {"200": _ok("Deleted.", ref("DeleteResult"))}, written,
                                 path + ["task_id", "If-Match"]),
        },
        f"{prefix}/{{task_id}}/complete": {
            "patch": _operation(f"completeTask{suffix}", "Toggle or set completion", tag,
                                {"200": completed}, written, path + ["task_id", "If-Match"],
                                body="TaskCompletion", body_required=False),
        },
        f"{prefix}/{{task_id}}/status": {
            "patch": _operation(f"setTaskStatus{suffix}", "Move a task to another workflow state", tag,
                                {"200": completed}, written, path + ["task_id", "If-Match"], body="TaskStatus"),
        },
        f"{prefix}/{{task_id}}/tags": {
            "put": _operation(f"setTaskTags{suffix}", "Replace a task's tags", tag,
                              {"200": task}, written, path + ["task_id", "If-Match"], body="TaskTags"),
        },
    }


def tag_paths(prefix, suffix, phase2):
    """The tag routes under `prefix` (`/api/tags` or `/api/{user_id}/tags`)."""
    path = ["user_id"] if phase2 else []
    extra = {403} if phase2 else set()
    tag = "tags (Phase II paths)" if phase2 else "tags"
    one = _ok("The tag.", ref("Tag"))
    return {
        prefix: {
            "get": _operation(f"listTags{suffix}", "List the caller's tags", tag,
                              {"200": _ok("The tags, ordered by name.", ref("TagList"))}, extra, path),
            "post": _operation(f"createTag{suffix}", "Create a tag", tag,
                               {"201": _ok("Created.", ref("Tag"), ["Location", "Idempotent-Replayed"])},
                               extra | {409}, path + ["Idempotency-Key"], body="TagCreate"),
        },
        f"{prefix}/{{tag_id}}": {
            "get": _operation(f"getTag{suffix}", "Get a tag", tag, {"200": one}, {404} | extra,
                              path + ["tag_id"]),
            "patch": _operation(f"updateTag{suffix}", "Rename or recolour a tag", tag, {"200": one},
                                {404, 409} | extra, path + ["tag_id"], body="TagUpdate"),
            "put": _operation(f"replaceTag{suffix}", "Rename or recolour a tag (same as PATCH)", tag,
                              {"200": one}, {404, 409} | extra, path + ["tag_id"], body="TagUpdate"),
            "delete": _operation(f"deleteTag{suffix}", "Delete a tag (it leaves every task)", tag,
                                 {"200": _ok("Deleted.", ref("DeleteResult"))}, {404} | extra, path + ["tag_id"]),
        },
    }


def time_paths(prefix, suffix, phase2):
    """/reminders, /stats and /statistics under `prefix` (`/api` or `/api/{user_id}`)."""
    path = ["user_id"] if phase2 else []
    extra = {403} if phase2 else set()
    tag = "time (Phase II paths)" if phase2 else "time"
    stats = _operation(f"getStatistics{suffix}", "Counts, completion rate, streaks and this week", tag,
                       {"200": _ok("The statistics.", ref("Statistics"))}, {422} | extra, path + ["tz"])
    return {
        f"{prefix}/reminders": {"get": _operation(
            f"listReminders{suffix}", "Tasks whose reminder is due", tag,
            {"200": _ok("Due reminders, earliest first.", ref("ReminderList"))}, {422} | extra,
            path + ["until", "reminder_limit"])},
        f"{prefix}/stats": {"get": stats},
        f"{prefix}/statistics": {"get": {**stats, "operationId": f"getStatisticsAlias{suffix}",
                                         "summary": "The same as /stats"}},
    }


def user_paths():
    user = _ok("The caller's profile.", ref("User"))
    return {
        "/api/users": {
            "post": _operation(
                "syncUser", "Provision or sync the caller's profile", "users",
                {"200": _ok("The profile existed; synced from the token.", ref("User"),
                            ["Idempotent-Replayed"]),
                 "201": _ok("The profile was created by this request.", ref("User"),
                            ["Idempotent-Replayed"])},
                {409}, ["Idempotency-Key"], body="UserCreate", body_required=False,
                description="Email and name come from the token's claims; the body may set "
                            "`name`."),
        },
        "/api/users/me": {
            "get": _operation("getMe", "The caller's profile", "users", {"200": user}, {404}),
            "patch": _operation("updateMe", "Change the caller's name or email", "users",
                                {"200": user}, {404, 409}, body="UserUpdate"),
            "delete": _operation("deleteMe", "Delete the caller and all their tasks", "users",
                                 {"200": _ok("Deleted.", ref("DeleteResult"))}, {404}),
        },
        "/api/users/me/export": {
            "get": _operation("exportMe", "Download the caller's profile and tasks", "users",
                              {"200": _ok("A JSON download.", ref("UserExport"),
                                          ["Content-Disposition"])}, {404}),
        },
        "/api/{user_id}/profile": {
            "get": _operation("getProfile", "The caller's profile (as /api/users/me)", "users",
                              {"200": user}, {403, 404}, ["user_id"]),
            "put": _operation("replaceProfile", "Change the caller's profile (partial, as PATCH)", "users",
                              {"200": user}, {403, 404, 409}, ["user_id"], body="UserUpdate"),
            "patch": _operation("updateProfile", "Change the caller's profile", "users",
                                {"200": user}, {403, 404, 409}, ["user_id"], body="UserUpdate"),
        },
        "/api/users/{user_id}": {
            "get": _operation("getUser", "A user by id (only the caller's own)", "users",
                              {"200": user}, {404}, ["any_user_id"]),
        },
    }


def public_paths():
    return {
        "/health": {"get": _operation("health", "Liveness (no database)", "operations",
                                      {"200": _ok("Alive.", ref("Health"))}, public=True)},
        "/readyz": {"get": _operation(
            "ready", "Readiness: the database answers and no migration is pending",
            "operations", {"200": _ok("Ready.", ref("Ready"))}, {503}, public=True)},
        "/metrics": {"get": _metrics_operation()},
        **docs_paths("/api", ""),
        # Where FastAPI serves them: the same document and page.
        **docs_paths("", "AtRoot"),
        "/api/docs/static/{filename}": {"get": _operation(
            "docsAsset", "A file of the documentation page", "docs",
            {"200": _ok("The file (script, stylesheet or image).",
                        {"type": "string", "format": "binary"}, media="*/*"),
             "206": _ok("The part of the file a `Range` header asked for.",
                        {"type": "string", "format": "binary"}, media="*/*"),
             "304": _ok("Not modified since the copy the client has (If-None-Match / "
                        "If-Modified-Since).")},
            {404, 416}, ["filename"], public=True)},
    }


def docs_paths(prefix, suffix):
    """The document and its page under `prefix`."""
    return {
        f"{prefix}/openapi.json": {"get": _operation(
            f"openapi{suffix}", "This document", "docs",
            {"200": _ok("The OpenAPI 3.1 document.", {"type": "object"})}, public=True)},
        f"{prefix}/docs": {"get": _operation(
            f"docs{suffix}", "This documentation as a web page", "docs",
            {"200": _ok("An HTML page (Swagger UI, served by the service: works offline).",
                        {"type": "string"}, media="text/html")}, public=True)},
    }



def _metrics_operation():
    """/metrics: public unless METRICS_TOKEN is set, then that token as a bearer token."""
    operation = _operation(
        "metrics", "Prometheus metrics of every worker", "operations",
        {"200": _ok("Prometheus text format 0.0.4.", {"type": "string"},
                    media="text/plain; version=0.0.4; charset=utf-8")},
        {401}, public=True,
        description="Request counts and latency per route template and status, requests in "
                    "flight, pooled connections in use and waiters, database errors by kind, "
                    "JWKS fetches, token-cache lookups and idempotent replays. Open unless "
                    "METRICS_TOKEN is set; then `Authorization: Bearer <METRICS_TOKEN>`.")
    operation["security"] = [{}, {"metricsToken": []}]
    return operation
