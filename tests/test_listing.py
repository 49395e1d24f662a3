"""GET /api/tasks: filters, sorts, limits, cursors and count."""
import pytest


def ids(response):
    assert response.status_code == 200, response.get_json()
    return [t["id"] for t in response.get_json()["tasks"]]


@pytest.fixture
def mixed(alice):
    """Six tasks of varied priority, status, title and due date (in creation order)."""
    specs = [
        {"title": "banana", "priority": "high", "due_date": "2026-03-01T00:00:00Z"},
        {"title": "Apple pie", "priority": "low", "completed": True},
        {"title": "cherry 50% off", "priority": "medium", "due_date": "2026-01-01T00:00:00Z",
         "description": "from the market"},
        {"title": "date_night", "priority": "high", "completed": True, "due_date": "2026-02-01T00:00:00Z"},
        {"title": "elderberry", "priority": "low"},
        {"title": "fig", "priority": "medium", "description": "Apple adjacent"},
    ]
    return [alice.create_task(**spec) for spec in specs]


def test_default_is_newest_first_with_count_and_no_cursor(alice, mixed):
    body = alice.get("/api/tasks").get_json()
    assert [t["id"] for t in body["tasks"]] == [t["id"] for t in reversed(mixed)]
    assert body["count"] == 6
    assert body["next_cursor"] is None


@pytest.mark.parametrize("query, expected", [
    ("status=pending", [5, 4, 2, 0]), ("status_filter=completed", [3, 1]), ("status=all", [5, 4, 3, 2, 1, 0]),
    ("completed=true", [3, 1]), ("completed=false", [5, 4, 2, 0]),
    ("priority=high", [3, 0]), ("priority=low&status=pending", [4]),
    ("search=apple", [5, 1]), ("q=MARKET", [2]), ("search=50%25", [2]), ("search=e_b", []),
    ("search=date_n", [3]),
])
def test_filters(alice, mixed, query, expected):
    body = alice.get(f"/api/tasks?{query}").get_json()
    assert [t["id"] for t in body["tasks"]] == [mixed[i]["id"] for i in expected]
    assert body["count"] == len(expected)


@pytest.mark.parametrize("query, expected", [
    ("sort=created&order=asc", [0, 1, 2, 3, 4, 5]),
    ("sort_by=created_at", [5, 4, 3, 2, 1, 0]),
    ("sort=title", [1, 0, 2, 3, 4, 5]),
    ("sort=title&order=desc", [5, 4, 3, 2, 0, 1]),
    ("sort=priority&order=asc", [1, 4, 2, 5, 0, 3]),
    ("sort=priority", [3, 0, 5, 2, 4, 1]),
    ("sort=due_date&order=asc", [2, 3, 0, 1, 4, 5]),
    ("sort=due_date&order=desc", [0, 3, 2, 5, 4, 1]),
])
def test_sorts_are_total_orders(alice, mixed, query, expected):
    assert ids(alice.get(f"/api/tasks?{query}")) == [mixed[i]["id"] for i in expected]


def test_sort_by_updated_follows_last_change(alice, mixed):
    alice.patch(f"/api/tasks/{mixed[2]['id']}", json={"title": "cherry"})
    assert ids(alice.get("/api/tasks?sort=updated"))[0] == mixed[2]["id"]
    assert ids(alice.get("/api/tasks?sort=updated_at&order=asc"))[-1] == mixed[2]["id"]


def test_limit_and_offset_and_skip(alice, mixed):
    body = alice.get("/api/tasks?limit=2").get_json()
    assert [t["id"] for t in body["tasks"]] == [mixed[5]["id"], mixed[4]["id"]]
    assert body["count"] == 6 and body["next_cursor"]
    assert ids(alice.get("/api/tasks?limit=2&offset=2")) == [mixed[3]["id"], mixed[2]["id"]]
    assert ids(alice.get("/api/tasks?limit=2&skip=4")) == [mixed[1]["id"], mixed[0]["id"]]
    past_end = alice.get("/api/tasks?offset=10").get_json()
    assert past_end["tasks"] == [] and past_end["count"] == 6


@pytest.mark.parametrize("sort", ["created", "updated", "title", "due_date", "priority"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_cursor_walk_matches_full_list(alice, mixed, sort, order):
    full = ids(alice.get(f"/api/tasks?sort={sort}&order={order}"))
    walked, cursor = [], None
    for _ in range(10):
        url = f"/api/tasks?sort={sort}&order={order}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = alice.get(url).get_json()
        assert body["count"] == 6
        walked += [t["id"] for t in body["tasks"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert walked == full


def test_cursor_is_stable_while_tasks_are_added(alice):
    first = [alice.create_task(title=f"t{i}")["id"] for i in range(5)]
    page = alice.get("/api/tasks?sort=created&order=asc&limit=2").get_json()
    seen = [t["id"] for t in page["tasks"]]
    cursor = page["next_cursor"]
    added = []
    while cursor:
        added.append(alice.create_task(title="new")["id"])
        page = alice.get(f"/api/tasks?sort=created&order=asc&limit=2&cursor={cursor}").get_json()
        seen += [t["id"] for t in page["tasks"]]
        cursor = page["next_cursor"]
    assert seen[:5] == first
    assert len(seen) == len(set(seen))
    assert set(seen) == set(first + added)


def test_newest_first_cursor_does_not_show_tasks_added_later_as_duplicates(alice):
    made = [alice.create_task(title=f"t{i}")["id"] for i in range(4)]
    page = alice.get("/api/tasks?limit=2").get_json()
    alice.create_task(title="later")
    rest = alice.get(f"/api/tasks?limit=2&cursor={page['next_cursor']}").get_json()
    assert [t["id"] for t in page["tasks"] + rest["tasks"]] == list(reversed(made))


@pytest.mark.parametrize("query, field", [
    ("limit=0", "limit"), ("limit=501", "limit"), ("limit=ten", "limit"), ("offset=-1", "offset"),
    ("skip=x", "skip"), ("status=finished", "status"), ("status_filter=x", "status_filter"),
    ("completed=maybe", "completed"), ("priority=urgent", "priority"), ("sort=colour", "sort"),
    ("sort_by=x", "sort_by"), ("order=up", "order"), ("cursor=garbage", "cursor"),
])
def test_bad_list_parameters_are_422(alice, query, field):
    response = alice.get(f"/api/tasks?{query}")
    assert response.status_code == 422
    assert field in [e["field"] for e in response.get_json()["errors"]]


def test_cursor_from_another_order_is_422(alice, mixed):
    cursor = alice.get("/api/tasks?limit=2&sort=title").get_json()["next_cursor"]
    assert alice.get(f"/api/tasks?limit=2&sort=created&cursor={cursor}").status_code == 422


def test_unknown_parameters_are_ignored(alice, mixed):
    assert len(ids(alice.get("/api/tasks?colour=blue&user_id=someone"))) == 6


def test_limit_500_is_accepted(alice, mixed):
    assert len(ids(alice.get("/api/tasks?limit=500"))) == 6
