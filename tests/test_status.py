"""Status and completion (contract section 6): `completed` is true exactly when `status` is the
last state, kept so by the database; completing moves a task to the last state, un-completing to
the first; `completed_at` is set by the database; PATCH .../status honours If-Match; `status` is
a list filter beside all/pending/completed, and the list body carries the counts."""
import time

import pytest
from psycopg2 import errors

from tests.organising import CUSTOM, FAMILIES, VocabularyDatabase, problem_fields, scoped


@pytest.fixture(scope="module")
def custom(admin_url):
    """backlog, in_progress, blocked, done."""
    made = VocabularyDatabase(admin_url, **CUSTOM)
    yield made
    made.close()


def state(task):
    return task["status"], task["completed"], task["is_completed"], task["completed_at"] is not None


# Creating --------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_a_new_task_is_in_the_first_state_not_completed(alice, family):
    response = alice.post(family.format(user=alice.id), json={"title": "new"})
    assert response.status_code == 201
    assert state(response.get_json()) == ("todo", False, False, False)
    assert response.get_json()["completed_at"] is None


@pytest.mark.parametrize("family", FAMILIES)
def test_creating_in_the_last_state_completes_the_task(alice, family):
    task = alice.post(family.format(user=alice.id), json={"title": "done already", "status": "done"}).get_json()
    assert state(task) == ("done", True, True, True)
    assert task["completed_at"] == task["created_at"]  # the database's clock, the same transaction


def test_creating_completed_puts_the_task_in_the_last_state(alice):
    assert state(alice.create_task(completed=True)) == ("done", True, True, True)
    assert state(alice.create_task(completed=False, status="in_progress")) == ("in_progress", False, False, False)
    assert state(alice.create_task(completed=True, status="done")) == ("done", True, True, True)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("body", [{"status": "in_progress", "completed": True}, {"status": "todo", "completed": True},
                                  {"status": "done", "completed": False}])
def test_a_body_whose_completed_and_status_disagree_is_422(alice, family, body):
    base = family.format(user=alice.id)
    assert problem_fields(alice.post(base, json={"title": "x", **body})) == ["completed"]
    task = alice.create_task()
    assert problem_fields(alice.patch(f"{base}/{task['id']}", json=body)) == ["completed"]
    assert problem_fields(alice.put(f"{base}/{task['id']}", json=body)) == ["completed"]
    assert alice.get(f"/api/tasks/{task['id']}").get_json() == task


@pytest.mark.parametrize("word", ["completed", "pending", "all", "Completed"])
def test_a_filter_word_is_not_a_state_in_a_body(alice, word):
    assert problem_fields(alice.post("/api/tasks", json={"title": "x", "status": word})) == ["status"]
    task = alice.create_task()
    assert problem_fields(alice.patch(f"/api/tasks/{task['id']}", json={"status": word})) == ["status"]
    assert problem_fields(alice.patch(f"/api/tasks/{task['id']}/status", json={"status": word})) == ["status"]


# Completing and un-completing ------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_toggling_moves_to_the_last_state_and_back_to_the_first(alice, family):
    base = family.format(user=alice.id)
    task = alice.create_task(status="in_progress")
    done = alice.patch(f"{base}/{task['id']}/complete").get_json()
    assert state(done) == ("done", True, True, True)
    undone = alice.patch(f"{base}/{task['id']}/complete").get_json()
    assert state(undone) == ("todo", False, False, False)  # the first state, not where it was
    assert undone["completed_at"] is None


@pytest.mark.parametrize("family", FAMILIES)
def test_setting_completed_moves_the_status(alice, family):
    base = family.format(user=alice.id)
    task = alice.create_task(status="in_progress")
    assert state(alice.patch(f"{base}/{task['id']}/complete", json={"completed": True}).get_json()) == \
        ("done", True, True, True)
    assert state(alice.patch(f"{base}/{task['id']}/complete", json={"completed": True}).get_json()) == \
        ("done", True, True, True)
    assert state(alice.patch(f"{base}/{task['id']}/complete", json={"completed": False}).get_json()) == \
        ("todo", False, False, False)
    assert state(alice.patch(f"{base}/{task['id']}", json={"completed": True}).get_json()) == \
        ("done", True, True, True)
    assert state(alice.put(f"{base}/{task['id']}", json={"completed": False}).get_json()) == \
        ("todo", False, False, False)


@pytest.mark.parametrize("family", FAMILIES)
def test_setting_the_status_sets_completed(alice, family):
    base = family.format(user=alice.id)
    task = alice.create_task()
    moves = [("in_progress", False), ("done", True), ("in_progress", False), ("todo", False), ("done", True),
             ("todo", False)]
    for status, completed in moves:
        response = alice.patch(f"{base}/{task['id']}/status", json={"status": status})
        assert response.status_code == 200, response.get_json()
        assert state(response.get_json()) == (status, completed, completed, completed)
    assert state(alice.patch(f"{base}/{task['id']}", json={"status": "done"}).get_json()) == ("done", True, True, True)
    assert state(alice.put(f"{base}/{task['id']}", json={"status": "in-progress"}).get_json()) == \
        ("in_progress", False, False, False)


def test_an_agreeing_status_and_completed_are_accepted(alice):
    task = alice.create_task()
    assert state(alice.patch(f"/api/tasks/{task['id']}", json={"status": "done", "completed": True}).get_json()) == \
        ("done", True, True, True)
    assert state(alice.patch(f"/api/tasks/{task['id']}", json={"status": "in_progress", "completed": False})
                 .get_json()) == ("in_progress", False, False, False)


def test_a_four_state_workflow(custom):
    caller = custom.caller()
    task = caller.create_task()
    assert state(task) == ("backlog", False, False, False)
    blocked = caller.patch(f"/api/tasks/{task['id']}/status", json={"status": "Blocked"}).get_json()
    assert state(blocked) == ("blocked", False, False, False)
    assert state(caller.patch(f"/api/tasks/{task['id']}/complete").get_json()) == ("done", True, True, True)
    assert state(caller.patch(f"/api/tasks/{task['id']}/complete").get_json()) == ("backlog", False, False, False)
    assert state(caller.create_task(completed=True)) == ("done", True, True, True)
    assert problem_fields(caller.post("/api/tasks", json={"title": "x", "status": "blocked", "completed": True})) \
        == ["completed"]


# PATCH /tasks/{id}/status ----------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_patch_status_honours_if_match(alice, family):
    base = family.format(user=alice.id)
    task = alice.create_task()
    first = alice.patch(f"{base}/{task['id']}/status", json={"status": "in_progress"}, headers={"If-Match": '"1"'})
    assert first.status_code == 200 and first.headers["ETag"] == '"2"'
    stale = alice.patch(f"{base}/{task['id']}/status", json={"status": "done"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.headers["ETag"] == '"2"'
    assert alice.get(f"/api/tasks/{task['id']}").get_json()["status"] == "in_progress"
    assert alice.patch(f"{base}/{task['id']}/status", json={"status": "done"},
                       headers={"If-Match": '"2"'}).status_code == 200


@pytest.mark.parametrize("body", [{}, {"completed": True}, {"status": "later"}, {"status": 1}, {"status": None}])
def test_patch_status_needs_a_state(alice, body):
    task = alice.create_task()
    response = alice.patch(f"/api/tasks/{task['id']}/status", json=body)
    assert response.status_code == 422, response.get_json()
    assert alice.get(f"/api/tasks/{task['id']}").get_json() == task


@pytest.mark.parametrize("family", FAMILIES)
def test_patch_status_of_another_users_task_is_404(alice, bob, family):
    task = alice.create_task()
    response = bob.patch(f"{family.format(user=bob.id)}/{task['id']}/status", json={"status": "done"})
    assert response.status_code == 404
    assert alice.get(f"/api/tasks/{task['id']}").get_json()["status"] == "todo"
    assert bob.patch(f"/api/{alice.id}/tasks/{task['id']}/status", json={"status": "done"}).status_code == 403


# completed_at ----------------------------------------------------------------------------------
def test_completed_at_is_set_kept_and_cleared(alice):
    task = alice.create_task()
    completed = alice.patch(f"/api/tasks/{task['id']}/complete").get_json()
    since = completed["completed_at"]
    assert since == completed["updated_at"]
    time.sleep(0.01)
    for change in ({"title": "edited"}, {"completed": True}, {"status": "done"}, {"priority": "high"}):
        assert alice.patch(f"/api/tasks/{task['id']}", json=change).get_json()["completed_at"] == since
    path = f"/api/tasks/{task['id']}"
    assert alice.patch(f"{path}/status", json={"status": "done"}).get_json()["completed_at"] == since
    assert alice.patch(f"{path}/complete", json={"completed": True}).get_json()["completed_at"] == since
    assert alice.patch(f"{path}/status", json={"status": "in_progress"}).get_json()["completed_at"] is None
    again = alice.patch(f"/api/tasks/{task['id']}/complete").get_json()
    assert again["completed_at"] > since  # when it *last* became completed


def test_completed_at_is_not_writable(alice):
    task = alice.create_task(title="x", completed_at="2001-01-01T00:00:00Z")
    assert task["completed_at"] is None
    done = alice.patch(f"/api/tasks/{task['id']}", json={"completed": True, "completed_at": "2001-01-01T00:00:00Z"})
    assert done.get_json()["completed_at"] > "2020"


def test_the_database_sets_completed_at_whatever_sql_says(admin_db, alice):
    task = alice.create_task()
    with admin_db.cursor() as cur:
        cur.execute("UPDATE tasks SET completed_at = now() WHERE id = %s RETURNING completed_at", (task["id"],))
        assert cur.fetchone() == (None,)  # not completed: no completion time
        cur.execute("UPDATE tasks SET completed = true WHERE id = %s RETURNING completed_at = now(), status",
                    (task["id"],))
        assert cur.fetchone() == (True, "done")
        cur.execute("SELECT completed_at FROM tasks WHERE id = %s", (task["id"],))
        (since,) = cur.fetchone()
        cur.execute("UPDATE tasks SET completed_at = '2001-01-01Z' WHERE id = %s RETURNING completed_at", (task["id"],))
        assert cur.fetchone() == (since,)
        cur.execute("UPDATE tasks SET completed_at = NULL WHERE id = %s RETURNING completed_at", (task["id"],))
        assert cur.fetchone() == (since,)
        cur.execute("INSERT INTO tasks (user_id, title, completed_at) VALUES (%s, 'raw', now()) "
                    "RETURNING completed, completed_at", (alice.id,))
        assert cur.fetchone() == (False, None)


# The database keeps completed and status together ----------------------------------------------
def test_the_database_moves_status_and_completed_together(database_url, alice):
    """As the service's own role, with the caller's scope: raw SQL cannot part them."""
    task_id = alice.create_task()["id"]
    with scoped(database_url, alice.id) as cur:
        def current():
            cur.execute("SELECT status, completed, completed_at IS NOT NULL FROM tasks WHERE id = %s", (task_id,))
            return cur.fetchone()

        cur.execute("UPDATE tasks SET completed = true WHERE id = %s", (task_id,))
        assert current() == ("done", True, True)
        cur.execute("UPDATE tasks SET completed = NOT completed WHERE id = %s", (task_id,))
        assert current() == ("todo", False, False)
        cur.execute("UPDATE tasks SET status = 'done' WHERE id = %s", (task_id,))
        assert current() == ("done", True, True)
        cur.execute("UPDATE tasks SET status = 'in_progress' WHERE id = %s", (task_id,))
        assert current() == ("in_progress", False, False)
        cur.execute("UPDATE tasks SET status = 'done', completed = true WHERE id = %s", (task_id,))
        assert current() == ("done", True, True)
        cur.execute("UPDATE tasks SET status = 'in_progress' WHERE id = %s", (task_id,))
        with pytest.raises(errors.CheckViolation) as raised:  # both changed, and they disagree
            cur.execute("UPDATE tasks SET status = 'todo', completed = true WHERE id = %s", (task_id,))
        assert raised.value.diag.constraint_name == "tasks_status_completed"


@pytest.mark.parametrize("columns, values, expected", [
    ("status", "'done'", ("done", True)),
    ("completed", "true", ("done", True)),
    ("status, completed", "'in_progress', false", ("in_progress", False)),
    ("status, completed", "'done', true", ("done", True)),
    ("status, completed", "'done', false", ("done", True)),
])
def test_an_inserted_row_is_kept_consistent(admin_db, alice, columns, values, expected):
    alice.create_task()
    with admin_db.cursor() as cur:
        cur.execute(f"INSERT INTO tasks (user_id, title, {columns}) VALUES (%s, 'raw', {values}) "  # noqa: S608
                    "RETURNING status, completed, completed_at IS NOT NULL", (alice.id,))
        assert cur.fetchone() == (*expected, expected[1])


def test_an_inserted_row_that_disagrees_is_refused(admin_db, alice):
    """`completed` false is also the column's default, so an insert in the last state completes
    the task; a completed task in a state before the last cannot exist."""
    alice.create_task()
    with admin_db.cursor() as cur, pytest.raises(errors.CheckViolation):
        cur.execute("INSERT INTO tasks (user_id, title, status, completed) VALUES (%s, 'raw', 'in_progress', true)",
                    (alice.id,))


def test_completed_at_cannot_exist_without_completion(admin_db, alice):
    task_id = alice.create_task()["id"]
    admin_db.autocommit = False  # the trigger is off only inside this transaction, rolled back
    try:
        with admin_db.cursor() as cur:
            cur.execute("ALTER TABLE tasks DISABLE TRIGGER tasks_status_sync")
            with pytest.raises(errors.CheckViolation) as raised:
                cur.execute("UPDATE tasks SET completed_at = now() WHERE id = %s", (task_id,))
            assert raised.value.diag.constraint_name == "tasks_completed_at_set"
    finally:
        admin_db.rollback()
        admin_db.autocommit = True


# The status filter and the counts ----------------------------------------------------------------
@pytest.fixture
def board(alice):
    """Alice's tasks: 2 todo (one work), 1 in_progress (work), 2 done (one work)."""
    made = {
        "todo": [alice.create_task(category="work")["id"], alice.create_task()["id"]],
        "in_progress": [alice.create_task(status="in_progress", category="Work")["id"]],
        "done": [alice.create_task(status="done", category="work")["id"], alice.create_task(completed=True)["id"]],
    }
    return alice, made


def listed(caller, query):
    body = caller.get(f"/api/tasks?{query}").get_json()
    return sorted(task["id"] for task in body["tasks"]), (body["count"], body["total"], body["completed_count"],
                                                          body["pending_count"])


@pytest.mark.parametrize("family", FAMILIES)
def test_the_status_filter_takes_a_state_or_a_filter_word(board, family):
    alice, made = board
    base = family.format(user=alice.id)
    cases = {
        "status=todo": made["todo"], "status=in_progress": made["in_progress"],
        "status=IN-PROGRESS": made["in_progress"], "status=done": made["done"], "status_filter=done": made["done"],
        "status=all": sum(made.values(), []), "status=pending": made["todo"] + made["in_progress"],
        "status=completed": made["done"], "status=Completed": made["done"], "completed=true": made["done"],
        "completed=false": made["todo"] + made["in_progress"], "": sum(made.values(), []),
    }
    for query, expected in cases.items():
        body = alice.get(f"{base}?{query}").get_json()
        ids = sorted(task["id"] for task in body["tasks"])
        assert ids == sorted(expected), query
        # count and total: the tasks matching; the other two ignore the status filter
        assert (body["count"], body["total"], body["completed_count"], body["pending_count"]) == \
            (len(expected), len(expected), 2, 3), query


def test_the_counts_follow_every_other_filter(board):
    alice, made = board
    assert listed(alice, "category=work") == (sorted(made["todo"][:1] + made["in_progress"] + made["done"][:1]),
                                              (3, 3, 1, 2))
    assert listed(alice, "category=WORK&status=done") == ([made["done"][0]], (1, 1, 1, 2))
    assert listed(alice, "category=work&status=in-progress&limit=1") == (made["in_progress"], (1, 1, 1, 2))
    assert listed(alice, "search=nothing-like-this") == ([], (0, 0, 0, 0))
    assert listed(alice, "status=done&priority=high") == ([], (0, 0, 0, 0))


def test_the_counts_survive_a_page_past_the_end(board):
    alice, _made = board
    assert listed(alice, "status=pending&offset=50") == ([], (3, 3, 2, 3))


@pytest.mark.parametrize("query", ["status=finished", "status=todo,done", "status_filter=nope"])
def test_an_unknown_status_filter_is_422_listing_the_choices(alice, query):
    response = alice.get(f"/api/tasks?{query}")
    assert response.status_code == 422
    assert "all, pending, completed, todo, in_progress, done" in response.get_json()["errors"][0]["message"]


def test_the_status_filter_with_a_custom_workflow(custom):
    caller = custom.caller()
    blocked = caller.create_task(status="blocked")["id"]
    caller.create_task()
    done = caller.create_task(status="done")["id"]
    assert listed(caller, "status=blocked") == ([blocked], (1, 1, 1, 2))
    assert listed(caller, "status=completed") == ([done], (1, 1, 1, 2))
    assert listed(caller, "status=pending")[1] == (2, 2, 1, 2)


def test_the_new_task_columns_have_the_contract_types(database_url, admin_db):
    with admin_db.cursor() as cur:
        cur.execute("SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND table_name = 'tasks' "
                    "AND column_name IN ('priority', 'status', 'completed_at', 'category') ORDER BY column_name")
        assert cur.fetchall() == [("category", "text", "YES", None),
                                  ("completed_at", "timestamp with time zone", "YES", None),
                                  ("priority", "text", "NO", "'medium'::text"),
                                  ("status", "text", "NO", "'todo'::text")]
