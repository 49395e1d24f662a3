"""Vocabularies (contract section 6): priority and status take their values from ordered,
configurable lists; input is folded, output is the configured spelling, sorting follows the
order, the database refuses any other value, and the release applies a changed vocabulary
(refusing to drop a value in use). /readyz tells when the database's differ from the
configuration."""
import sys

import psycopg2
import pytest
from psycopg2 import errors

from service.config import ConfigError, load_config
from service.ops import vocabulary_release
from service.ops.vocabulary_release import VocabularyError, apply_vocabularies
from tests.conftest import Caller
from tests.organising import CUSTOM, FAMILIES, UPPER, VocabularyDatabase, new_user, problem_fields, scoped
from tests.servers import fresh_app
from tests.test_config import start


@pytest.fixture(scope="module")
def custom(admin_url):
    """TASK_STATUSES=backlog,in_progress,blocked,done and TASK_PRIORITIES=low,medium,high,critical."""
    made = VocabularyDatabase(admin_url, **CUSTOM)
    yield made
    made.close()


@pytest.fixture(scope="module")
def upper(admin_url):
    """TO_DO,IN_PROGRESS,DONE and LOW,MEDIUM,HIGH,URGENT."""
    made = VocabularyDatabase(admin_url, **UPPER)
    yield made
    made.close()


@pytest.fixture
def fresh(admin_url):
    """Databases of the test's own (`fresh(migrated_with=..., **env)`), dropped afterwards."""
    made = []

    def make(migrated_with=None, **env):
        made.append(VocabularyDatabase(admin_url, migrated_with=migrated_with, **env))
        return made[-1]

    yield make
    for item in made:
        item.close()


# Configuration -------------------------------------------------------------------------------
def test_defaults_are_low_medium_high_and_todo_in_progress_done():
    config = load_config({})
    assert config.vocabularies.priority.values == ("low", "medium", "high")
    assert config.vocabularies.status.values == ("todo", "in_progress", "done")
    assert config.vocabularies.priority.default == "medium"
    assert (config.vocabularies.first_state, config.vocabularies.done) == ("todo", "done")


def test_configured_vocabularies_keep_their_order_and_spelling():
    config = load_config({"TASK_PRIORITIES": " LOW, Medium ,high,URGENT", "TASK_STATUSES": "To-Do,Doing,Done"})
    assert config.vocabularies.priority.values == ("LOW", "Medium", "high", "URGENT")
    assert config.vocabularies.status.values == ("To-Do", "Doing", "Done")
    assert config.vocabularies.priority.default == "Medium"
    assert (config.vocabularies.first_state, config.vocabularies.done) == ("To-Do", "Done")


def test_without_medium_new_tasks_get_the_lowest_priority():
    assert load_config({"TASK_PRIORITIES": "minor,major,blocker"}).vocabularies.priority.default == "minor"


def test_ten_values_of_thirty_characters_are_accepted():
    values = ",".join(f"{n}" + "x" * 29 for n in range(10))
    assert len(load_config({"TASK_PRIORITIES": values}).vocabularies.priority.values) == 10


@pytest.mark.parametrize("name, value", [
    ("TASK_PRIORITIES", "only"),
    ("TASK_PRIORITIES", ",".join(f"p{n}" for n in range(11))),
    ("TASK_PRIORITIES", "low,,high"),
    ("TASK_PRIORITIES", "low,very high"),
    ("TASK_PRIORITIES", "low,x" + "y" * 30),
    ("TASK_PRIORITIES", "low,h!gh"),
    ("TASK_PRIORITIES", "low,médium"),
    ("TASK_PRIORITIES", "high,HIGH"),
    ("TASK_STATUSES", "in-progress,in_progress"),
    ("TASK_STATUSES", "todo,completed"),
    ("TASK_STATUSES", "Pending,done"),
    ("TASK_STATUSES", "ALL,done"),
    ("TASK_STATUSES", "todo"),
], ids=["one", "eleven", "empty-item", "space", "31-chars", "punctuation", "non-ascii", "fold-duplicate",
        "dash-underscore-duplicate", "completed-reserved", "pending-reserved", "all-reserved", "one-state"])
def test_a_bad_vocabulary_is_one_clear_line(name, value):
    with pytest.raises(ConfigError) as raised:
        load_config({name: value})
    message = str(raised.value)
    assert message.startswith(name + " ")
    assert "\n" not in message and len(message) < 200


@pytest.mark.parametrize("name, value", [("TASK_STATUSES", "todo,completed"), ("TASK_PRIORITIES", "low")])
def test_startup_refuses_a_bad_vocabulary_with_one_line(name, value):
    code, out, err = start([sys.executable, "-c", "import wsgi"], **{name: value})
    assert code != 0
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("configuration error:") and name in lines[0]


# Folding in, configured spelling out -----------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("sent, stored", [("IN PROGRESS", "in_progress"), ("in-progress", "in_progress"),
                                          ("In_Progress", "in_progress"), (" blocked ", "blocked")])
def test_a_status_is_matched_after_folding(custom, family, sent, stored):
    caller = custom.caller()
    base = family.format(user=caller.id)
    created = caller.post(base, json={"title": "folded", "status": sent})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["status"] == stored
    moved = caller.patch(f"{base}/{created.get_json()['id']}/status", json={"status": sent.upper()})
    assert moved.status_code == 200 and moved.get_json()["status"] == stored


@pytest.mark.parametrize("sent, stored", [("HIGH", "high"), ("Critical", "critical"), ("medium", "medium")])
def test_a_priority_is_matched_ignoring_case(custom, sent, stored):
    caller = custom.caller()
    task = caller.create_task(priority=sent)
    assert task["priority"] == stored
    assert caller.patch(f"/api/tasks/{task['id']}", json={"priority": sent.lower()}).get_json()["priority"] == stored


def test_output_is_the_configured_spelling_of_an_uppercase_vocabulary(upper):
    caller = upper.caller()
    task = caller.create_task(status="in progress", priority="high")
    assert (task["status"], task["priority"], task["completed"]) == ("IN_PROGRESS", "HIGH", False)
    fetched = caller.get(f"/api/tasks/{task['id']}").get_json()
    assert (fetched["status"], fetched["priority"]) == ("IN_PROGRESS", "HIGH")
    done = caller.patch(f"/api/tasks/{task['id']}/complete").get_json()
    assert (done["status"], done["completed"]) == ("DONE", True)
    undone = caller.patch(f"/api/tasks/{task['id']}/complete").get_json()
    assert (undone["status"], undone["completed"]) == ("TO_DO", False)
    assert upper.query("SELECT status, priority FROM tasks WHERE id = %s", (task["id"],)) == [("TO_DO", "HIGH")]


def test_list_filters_fold_too(upper):
    caller = upper.caller()
    wanted = caller.create_task(status="in-progress", priority="urgent")["id"]
    caller.create_task(status="to do", priority="urgent")
    caller.create_task(status="in_progress", priority="low")
    for query in ("status=in%20progress&priority=URGENT", "status=In-Progress&priority=Urgent",
                  "status_filter=IN_PROGRESS&priority=urgent"):
        body = caller.get(f"/api/tasks?{query}").get_json()
        assert [task["id"] for task in body["tasks"]] == [wanted], query


@pytest.mark.parametrize("body, field", [({"priority": "urgent"}, "priority"), ({"status": "todo"}, "status"),
                                         ({"priority": "very high"}, "priority"), ({"priority": 3}, "priority"),
                                         ({"status": None}, "status")])
def test_a_value_outside_the_vocabulary_is_422_listing_the_values(custom, body, field):
    response = custom.caller().post("/api/tasks", json={"title": "x", **body})
    assert problem_fields(response) == [field]
    message = response.get_json()["errors"][0]["message"]
    if body[field] is not None:
        expected = "low, medium, high, critical" if field == "priority" else "backlog, in_progress, blocked, done"
        assert expected in message


def test_a_list_filter_outside_the_vocabulary_is_422(custom):
    caller = custom.caller()
    assert problem_fields(caller.get("/api/tasks?priority=urgent")) == ["priority"]
    response = caller.get("/api/tasks?status=todo")
    assert problem_fields(response) == ["status"]
    assert "backlog, in_progress, blocked, done" in response.get_json()["errors"][0]["message"]


# Defaults ------------------------------------------------------------------------------------
def test_new_tasks_get_medium_and_the_first_state(custom, upper):
    assert (custom.caller().create_task()["priority"], custom.caller().create_task()["status"]) == \
        ("medium", "backlog")
    task = upper.caller().create_task()
    assert (task["priority"], task["status"], task["completed"]) == ("MEDIUM", "TO_DO", False)


def test_the_database_defaults_follow_the_vocabulary(upper):
    with upper.admin.cursor() as cur:
        user_id = new_user(cur)
        cur.execute("INSERT INTO tasks (user_id, title) VALUES (%s, 'raw') RETURNING priority, status", (user_id,))
        assert cur.fetchone() == ("MEDIUM", "TO_DO")


def test_without_medium_new_tasks_get_the_lowest_value(fresh):
    made = fresh(TASK_PRIORITIES="minor,major,blocker")
    assert made.caller().create_task()["priority"] == "minor"
    with made.admin.cursor() as cur:
        cur.execute("INSERT INTO tasks (user_id, title) VALUES (%s, 'raw') RETURNING priority", (new_user(cur),))
        assert cur.fetchone() == ("minor",)


# Sorting ---------------------------------------------------------------------------------------
def test_sorting_by_priority_follows_the_vocabulary_not_the_spelling(custom):
    caller = custom.caller()
    # Alphabetically: critical < high < low < medium; by rank: low < medium < high < critical.
    ids = {priority: caller.create_task(priority=priority)["id"] for priority in ("high", "low", "critical", "medium")}
    ascending = [t["priority"] for t in caller.get("/api/tasks?sort=priority&order=asc").get_json()["tasks"]]
    assert ascending == ["low", "medium", "high", "critical"]
    descending = [t["id"] for t in caller.get("/api/tasks?sort=priority").get_json()["tasks"]]
    assert descending == [ids[p] for p in ("critical", "high", "medium", "low")]


def test_cursor_pages_by_priority_follow_the_vocabulary(upper):
    caller = upper.caller()
    for priority in ("URGENT", "LOW", "HIGH", "MEDIUM", "LOW"):
        caller.create_task(priority=priority)
    seen, cursor = [], None
    while True:
        body = caller.get("/api/tasks?sort=priority&order=asc&limit=2" + (f"&cursor={cursor}" if cursor else "")
                          ).get_json()
        seen += [task["priority"] for task in body["tasks"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["LOW", "LOW", "MEDIUM", "HIGH", "URGENT"]


# The database refuses other values -------------------------------------------------------------
@pytest.mark.parametrize("column, value", [("priority", "urgent"), ("priority", "HIGH"), ("status", "todo"),
                                           ("status", "IN_PROGRESS"), ("status", "completed")])
def test_the_database_refuses_a_value_outside_the_vocabulary(custom, column, value):
    with custom.admin.cursor() as cur:
        user_id = new_user(cur)
        with pytest.raises(errors.ForeignKeyViolation):
            cur.execute(f"INSERT INTO tasks (user_id, title, {column}) VALUES (%s, 'raw', %s)",  # noqa: S608
                        (user_id, value))
        cur.execute("INSERT INTO tasks (user_id, title) VALUES (%s, 'raw') RETURNING id", (user_id,))
        (task_id,) = cur.fetchone()
        with pytest.raises(errors.ForeignKeyViolation):
            cur.execute(f"UPDATE tasks SET {column} = %s WHERE id = %s", (value, task_id))  # noqa: S608


def test_the_service_role_refuses_them_too_and_cannot_edit_the_vocabulary(custom):
    caller = custom.caller()
    task_id = caller.create_task()["id"]
    with scoped(custom.url, caller.id) as cur:
        cur.execute("SELECT array_agg(value ORDER BY rank) FROM task_statuses")
        assert cur.fetchone() == (["backlog", "in_progress", "blocked", "done"],)  # readable by all
        cur.execute("SAVEPOINT s")
        with pytest.raises(errors.ForeignKeyViolation):
            cur.execute("UPDATE tasks SET priority = 'urgent' WHERE id = %s", (task_id,))
        cur.execute("ROLLBACK TO SAVEPOINT s")
        with pytest.raises(errors.InsufficientPrivilege):  # row-level security: only the release writes
            cur.execute("INSERT INTO task_priorities (value, rank) VALUES ('urgent', 9)")
        cur.execute("ROLLBACK TO SAVEPOINT s")
        cur.execute("UPDATE task_statuses SET value = 'Done' WHERE value = 'done'")
        assert cur.rowcount == 0
        cur.execute("DELETE FROM task_priorities")
        assert cur.rowcount == 0


@pytest.mark.parametrize("table, value", [("task_priorities", "very high"), ("task_priorities", ""),
                                          ("task_statuses", "x" * 31), ("task_statuses", "état")])
def test_a_lookup_table_holds_only_well_formed_values(custom, table, value):
    with custom.admin.cursor() as cur, pytest.raises(errors.CheckViolation):
        cur.execute(f"INSERT INTO {table} (value, rank) VALUES (%s, 20)", (value,))  # noqa: S608


# OpenAPI ---------------------------------------------------------------------------------------
def test_openapi_shows_the_configured_values(custom, upper):
    for made, statuses, priorities, default in (
            (custom, ["backlog", "in_progress", "blocked", "done"], ["low", "medium", "high", "critical"], "medium"),
            (upper, ["TO_DO", "IN_PROGRESS", "DONE"], ["LOW", "MEDIUM", "HIGH", "URGENT"], "MEDIUM")):
        document = made.app.test_client().get("/api/openapi.json").get_json()
        schemas = document["components"]["schemas"]
        assert schemas["Task"]["properties"]["status"]["enum"] == statuses
        assert schemas["Task"]["properties"]["priority"]["enum"] == priorities
        assert schemas["TaskCreate"]["properties"]["priority"]["enum"] == priorities
        # Defaults in words (openapi-typescript makes a property with a `default` required).
        assert f"Default: `{default}`." in schemas["TaskCreate"]["properties"]["priority"]["description"]
        assert f"Default: `{statuses[0]}`." in schemas["TaskCreate"]["properties"]["status"]["description"]
        assert schemas["TaskStatus"]["properties"]["status"]["enum"] == statuses
        parameters = document["components"]["parameters"]
        assert parameters["status"]["schema"]["enum"] == ["all", "pending", "completed", *statuses]
        assert parameters["priority"]["schema"]["enum"] == priorities


# The release: applying a changed vocabulary ----------------------------------------------------
def vocabulary_rows(made):
    return (made.query("SELECT value, rank FROM task_priorities ORDER BY rank"),
            made.query("SELECT value, rank FROM task_statuses ORDER BY rank"))


def task_rows(made):
    return made.query("SELECT id, priority, priority_order, status, completed, completed_at, version, updated_at "
                      "FROM tasks ORDER BY id")


def release(made, **env):
    """`flask --app wsgi apply-vocabularies` configured with `env` on `made`'s database."""
    with fresh_app(made.url, **env) as app:
        return app.test_cli_runner().invoke(args=["apply-vocabularies"])


def test_the_release_refuses_to_drop_a_value_in_use_naming_it_and_the_count(fresh):
    made = fresh()
    caller = made.caller()
    for _ in range(2):
        caller.create_task(status="in_progress")
    caller.create_task(priority="high")
    before = (vocabulary_rows(made), task_rows(made))
    result = release(made, TASK_STATUSES="todo,done", TASK_PRIORITIES="low,medium,high,critical")
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, lines
    assert "TASK_STATUSES" in lines[0] and "'in_progress'" in lines[0] and "2 tasks" in lines[0]
    assert (vocabulary_rows(made), task_rows(made)) == before  # nothing changed, the priorities neither


def test_the_release_refuses_a_priority_in_use_by_one_task(fresh):
    made = fresh()
    made.caller().create_task(priority="low")
    with pytest.raises(VocabularyError) as raised:
        apply_vocabularies(made.db, load_config({"TASK_PRIORITIES": "medium,high"}).vocabularies)
    assert "'low'" in str(raised.value) and "1 task " in str(raised.value)
    assert vocabulary_rows(made)[0] == [("low", 0), ("medium", 1), ("high", 2)]


def test_an_unused_value_is_dropped(fresh):
    made = fresh()
    made.caller().create_task(priority="high", status="done")
    report = apply_vocabularies(made.db, load_config({"TASK_STATUSES": "todo,done"}).vocabularies)
    assert report["status"] == ["removed in_progress"]
    assert vocabulary_rows(made)[1] == [("todo", 0), ("done", 1)]


def test_renaming_by_case_cascades_to_the_tasks_without_touching_their_versions(fresh):
    made = fresh()
    caller = made.caller()
    done = caller.create_task(priority="high", status="done")
    pending = caller.create_task(priority="low", status="in_progress")
    before = {row[0]: row for row in task_rows(made)}
    result = release(made, **UPPER)
    assert result.exit_code == 0, result.output
    assert "renamed high to HIGH" in result.output and "added URGENT" in result.output
    assert vocabulary_rows(made) == ([("LOW", 0), ("MEDIUM", 1), ("HIGH", 2), ("URGENT", 3)],
                                     [("TO_DO", 0), ("IN_PROGRESS", 1), ("DONE", 2)])
    after = {row[0]: row for row in task_rows(made)}
    assert after[done["id"]][1:6] == ("HIGH", 2, "DONE", True, before[done["id"]][5])
    assert after[pending["id"]][1:6] == ("LOW", 0, "IN_PROGRESS", False, None)
    # A release is not a change a client made: versions and updated_at stay.
    for task_id in (done["id"], pending["id"]):
        assert after[task_id][6:] == before[task_id][6:]
    with made.admin.cursor() as cur:  # the column defaults follow the rename
        cur.execute("INSERT INTO tasks (user_id, title) VALUES (%s, 'raw') RETURNING priority, status", (caller.id,))
        assert cur.fetchone() == ("MEDIUM", "TO_DO")
    # The service configured the same way shows the new spelling and still folds the old one.
    with fresh_app(made.url, **UPPER) as app:
        own = Caller(app.test_client(), caller.id)
        assert own.get(f"/api/tasks/{done['id']}").get_json()["priority"] == "HIGH"
        assert [t["id"] for t in own.get("/api/tasks?priority=high&status=done").get_json()["tasks"]] == [done["id"]]


def test_a_value_added_and_the_order_changed(fresh):
    made = fresh()
    caller = made.caller()
    low, high = caller.create_task(priority="low")["id"], caller.create_task(priority="high")["id"]
    report = apply_vocabularies(made.db, load_config({"TASK_PRIORITIES": "high,critical,medium,low"}).vocabularies)
    assert "added critical" in report["priority"] and "reordered" in report["priority"]
    assert vocabulary_rows(made)[0] == [("high", 0), ("critical", 1), ("medium", 2), ("low", 3)]
    assert made.query("SELECT id, priority_order FROM tasks ORDER BY id") == [(low, 3), (high, 0)]
    with fresh_app(made.url, TASK_PRIORITIES="high,critical,medium,low") as app:
        own = Caller(app.test_client(), caller.id)
        critical = own.create_task(priority="CRITICAL")["id"]
        ascending = [t["id"] for t in own.get("/api/tasks?sort=priority&order=asc").get_json()["tasks"]]
    assert ascending == [high, critical, low]


def test_a_new_last_state_takes_over_completion(fresh):
    made = fresh()
    caller = made.caller()
    task = caller.create_task(status="done")
    report = apply_vocabularies(made.db, load_config({"TASK_STATUSES": "todo,in_progress,done,archived"}).vocabularies)
    assert "added archived" in report["status"] and "1 tasks follow the last state" in report["status"]
    assert made.query("SELECT status, completed, completed_at FROM tasks WHERE id = %s", (task["id"],)) == \
        [("done", False, None)]


def test_applying_the_same_vocabularies_again_changes_nothing(fresh):
    made = fresh(**CUSTOM)
    made.caller().create_task(status="blocked", priority="critical")
    before = (vocabulary_rows(made), task_rows(made))
    result = release(made, **CUSTOM)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["priority: low, medium, high, critical (unchanged)",
                                          "status: backlog, in_progress, blocked, done (unchanged)"]
    assert (vocabulary_rows(made), task_rows(made)) == before


def test_the_release_is_one_transaction(fresh, monkeypatch):
    """A failure half-way (here: after the priorities were applied) leaves everything as it was."""
    made = fresh()
    made.caller().create_task(priority="high")
    before = (vocabulary_rows(made), task_rows(made))
    original = vocabulary_release._apply

    def failing(cursor, name, vocabulary, env_name):
        if name == "status":
            raise psycopg2.OperationalError("lost the connection")
        return original(cursor, name, vocabulary, env_name)

    monkeypatch.setattr(vocabulary_release, "_apply", failing)
    with pytest.raises(psycopg2.OperationalError):
        apply_vocabularies(made.db, load_config(UPPER).vocabularies)
    assert (vocabulary_rows(made), task_rows(made)) == before


# /readyz --------------------------------------------------------------------------------------
def test_readyz_is_503_when_the_database_has_other_vocabularies(fresh):
    made = fresh(migrated_with={}, **CUSTOM)
    response = made.app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    detail = response.get_json()["detail"]
    assert "vocabular" in detail and "run flask --app wsgi apply-vocabularies" in detail
    assert "status" in detail
    assert release(made, **CUSTOM).exit_code == 0
    assert made.app.test_client().get("/readyz").status_code == 200


def test_readyz_is_503_when_only_the_order_differs(fresh):
    made = fresh(migrated_with={"TASK_PRIORITIES": "high,medium,low"})
    response = made.app.test_client().get("/readyz")
    assert response.status_code == 503
    assert "priority" in response.get_json()["detail"]


def test_readyz_is_200_with_matching_custom_vocabularies(custom, upper):
    for made in (custom, upper):
        response = made.app.test_client().get("/readyz")
        assert response.status_code == 200, response.get_json()
