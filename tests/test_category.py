"""Category (contract section 6): one free label per task, null or trimmed 1..50 characters (blank
means null), enforced by the database too, and a list filter matching it ignoring case."""
import pytest
from psycopg2 import errors

from tests.organising import FAMILIES, problem_fields


@pytest.mark.parametrize("family", FAMILIES)
def test_category_is_set_changed_and_cleared(alice, family):
    base = family.format(user=alice.id)
    created = alice.post(base, json={"title": "filed", "category": "  Work  "})
    assert created.status_code == 201
    task = created.get_json()
    assert task["category"] == "Work"
    assert alice.create_task()["category"] is None
    assert alice.patch(f"{base}/{task['id']}", json={"category": "personal"}).get_json()["category"] == "personal"
    assert alice.put(f"{base}/{task['id']}", json={"category": None}).get_json()["category"] is None
    alice.patch(f"{base}/{task['id']}", json={"category": "shopping"})
    assert alice.patch(f"{base}/{task['id']}", json={"category": ""}).get_json()["category"] is None
    alice.patch(f"{base}/{task['id']}", json={"category": "shopping"})
    cleared = alice.patch(f"{base}/{task['id']}", json={"category": " \t "})
    assert cleared.status_code == 200 and cleared.get_json()["category"] is None


def test_a_category_of_fifty_characters_is_accepted(alice):
    assert alice.create_task(category="c" * 50)["category"] == "c" * 50


@pytest.mark.parametrize("value", ["c" * 51, 7, True, ["work"], {"name": "work"}, "nul\x00"])
def test_a_bad_category_is_422(alice, value):
    assert problem_fields(alice.post("/api/tasks", json={"title": "x", "category": value})) == ["category"]
    task = alice.create_task(category="kept")
    assert problem_fields(alice.patch(f"/api/tasks/{task['id']}", json={"category": value})) == ["category"]
    assert alice.get(f"/api/tasks/{task['id']}").get_json()["category"] == "kept"


def test_other_categories_and_fields_are_untouched_by_a_category_change(alice):
    task = alice.create_task(category="work", priority="high", tags=["a"])
    changed = alice.patch(f"/api/tasks/{task['id']}", json={"category": "home"}).get_json()
    assert (changed["priority"], [t["name"] for t in changed["tags"]], changed["title"]) == \
        ("high", ["a"], task["title"])


@pytest.mark.parametrize("value, error", [
    ("", errors.CheckViolation), ("   ", errors.CheckViolation), (" lead", errors.CheckViolation),
    ("trail\n", errors.CheckViolation), ("c" * 51, errors.CheckViolation),
])
def test_the_database_refuses_a_bad_category(admin_db, alice, value, error):
    task_id = alice.create_task()["id"]
    with admin_db.cursor() as cur:
        with pytest.raises(error):
            cur.execute("INSERT INTO tasks (user_id, title, category) VALUES (%s, 'raw', %s)", (alice.id, value))
        with pytest.raises(error):
            cur.execute("UPDATE tasks SET category = %s WHERE id = %s", (value, task_id))
        cur.execute("UPDATE tasks SET category = %s WHERE id = %s RETURNING category", ("c" * 50, task_id))
        assert cur.fetchone() == ("c" * 50,)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_category_filter_ignores_case(alice, bob, family):
    base = family.format(user=alice.id)
    work = [alice.create_task(category="Work")["id"], alice.create_task(category="WORK", status="done")["id"]]
    alice.create_task(category="workshop")
    alice.create_task()
    bob.create_task(category="work")
    for query in ("category=work", "category=WORK", "category=%20Work%20"):
        body = alice.get(f"{base}?{query}").get_json()
        assert sorted(task["id"] for task in body["tasks"]) == sorted(work), query
        assert (body["count"], body["total"], body["completed_count"], body["pending_count"]) == (2, 2, 1, 1)
    assert alice.get(f"{base}?category=work&status=pending").get_json()["count"] == 1
    assert alice.get(f"{base}?category=nothing").get_json()["count"] == 0
    assert alice.get(f"{base}?category=").get_json()["count"] == 4  # blank: no filter


def test_the_category_filter_folds_case_as_the_database_does(alice):
    task = alice.create_task(category="İzmir")
    assert [t["id"] for t in alice.get("/api/tasks?category=İzmir").get_json()["tasks"]] == [task["id"]]
    assert [t["id"] for t in alice.get("/api/tasks?category=izmir").get_json()["tasks"]] == [task["id"]]


@pytest.mark.parametrize("query", ["category=" + "c" * 51, "category=a%00b"])
def test_a_bad_category_filter_is_422(alice, query):
    assert problem_fields(alice.get(f"/api/tasks?{query}")) == ["category"]


def test_the_category_filter_combines_with_sort_and_cursor(alice):
    ids = [alice.create_task(category="work", title=f"t{n}")["id"] for n in range(5)]
    alice.create_task(category="home")
    seen, cursor = [], None
    while True:
        body = alice.get("/api/tasks?category=Work&sort=title&limit=2" + (f"&cursor={cursor}" if cursor else "")
                         ).get_json()
        seen += [task["id"] for task in body["tasks"]]
        assert body["count"] == 5
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
