"""The counters the database keeps (migration 007) are exact: after a randomized mix of every kind
of change, task_tallies and task_completion_days equal what count(*) over the tasks says, and the
list's counts and the statistics read from them agree with counting the tasks."""
import random
import uuid

from tests.conftest import Caller

TALLIES = ("SELECT user_id, priority, status, category, n FROM task_tallies WHERE n <> 0 AND user_id = ANY(%s) "
           "ORDER BY 1, 2, 3, 4")
COUNTED = ("SELECT user_id, priority, status, coalesce(category, ''), count(*) FROM tasks WHERE user_id = ANY(%s) "
           "GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4")
DAYS = "SELECT user_id, day, n FROM task_completion_days WHERE n <> 0 AND user_id = ANY(%s) ORDER BY 1, 2"
COUNTED_DAYS = ("SELECT t.user_id, (t.completed_at AT TIME ZONE u.timezone)::date, count(*) FROM tasks t "
                "JOIN users u ON u.id = t.user_id WHERE t.completed_at IS NOT NULL AND t.user_id = ANY(%s) "
                "GROUP BY 1, 2 ORDER BY 1, 2")


def counters_and_counts(admin_db, users):
    with admin_db.cursor() as cur:
        found = []
        for sql in (TALLIES, COUNTED, DAYS, COUNTED_DAYS):
            cur.execute(sql, (users,))
            found.append(cur.fetchall())
    return found


def assert_exact(admin_db, users):
    tallies, counted, days, counted_days = counters_and_counts(admin_db, users)
    assert tallies == counted
    assert days == counted_days


def random_change(rng, caller, tasks):
    """One change of a random kind through the API; returns what it was."""
    kind = rng.choice(["create", "create", "toggle", "complete", "status", "priority", "category", "delete",
                       "update-many"])
    if kind.startswith("create") or not tasks:
        body = {"title": f"t{rng.random()}", "priority": rng.choice(["low", "medium", "high"]),
                "status": rng.choice(["todo", "in_progress", "done"]),
                "category": rng.choice([None, "work", "Work", "home"])}
        tasks.append(caller.create_task(**body)["id"])
        return "create"
    task = rng.choice(tasks)
    if kind == "toggle":
        assert caller.patch(f"/api/tasks/{task}/complete").status_code == 200
    elif kind == "complete":
        assert caller.patch(f"/api/tasks/{task}/complete", json={"completed": rng.random() < 0.5}).status_code == 200
    elif kind == "status":
        assert caller.patch(f"/api/tasks/{task}/status",
                            json={"status": rng.choice(["todo", "in_progress", "done"])}).status_code == 200
    elif kind == "priority":
        assert caller.patch(f"/api/tasks/{task}", json={"priority": rng.choice(["low", "high"])}).status_code == 200
    elif kind == "category":
        assert caller.patch(f"/api/tasks/{task}", json={"category": rng.choice([None, "work", "errands"])}
                            ).status_code == 200
    elif kind == "update-many":
        assert caller.patch(f"/api/tasks/{task}", json={"title": "renamed", "priority": "medium", "category": "x",
                                                        "completed": True}).status_code == 200
    else:
        assert caller.delete(f"/api/tasks/{task}").status_code == 200
        tasks.remove(task)
    return kind


def test_counters_stay_exact_under_a_random_mix_of_changes(client, admin_db):
    rng = random.Random(20261201)
    callers = [Caller(client) for _ in range(3)]
    users = [caller.id for caller in callers]
    tasks = {caller.id: [] for caller in callers}
    kinds = set()
    for step in range(240):
        caller = rng.choice(callers)
        kinds.add(random_change(rng, caller, tasks[caller.id]))
        if step % 40 == 39:
            assert_exact(admin_db, users)
    assert kinds >= {"create", "toggle", "complete", "status", "priority", "category", "delete", "update-many"}
    # A time zone change recounts the user's completion days in the new zone.
    assert callers[0].patch("/api/users/me", json={"timezone": "Pacific/Kiritimati"}).status_code == 200
    assert_exact(admin_db, users)
    # Deleting a user takes their counters along; the others' stay exact.
    assert callers[1].delete("/api/users/me").status_code == 200
    tallies, _, days, _ = counters_and_counts(admin_db, [callers[1].id])
    assert tallies == days == []
    assert_exact(admin_db, users)


def test_raw_sql_and_bulk_statements_keep_them_exact(admin_db):
    users = [f"bulk-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with admin_db.cursor() as cur:
        cur.execute("INSERT INTO users (id, timezone) SELECT unnest(%s::text[]), 'Asia/Kolkata'", (users,))
        cur.execute("""INSERT INTO tasks (user_id, title, priority, completed, category)
                       SELECT (%s::text[])[1 + n %% 2], 'bulk ' || n, (ARRAY['low','medium','high'])[1 + n %% 3],
                              n %% 4 = 0, CASE WHEN n %% 5 = 0 THEN 'five' END
                       FROM generate_series(1, 500) AS n""", (users,))
        cur.execute("UPDATE tasks SET completed = NOT completed WHERE user_id = ANY(%s) AND id %% 3 = 0", (users,))
        cur.execute("UPDATE tasks SET priority = 'high', category = NULL WHERE user_id = %s AND id %% 7 = 0",
                    (users[0],))
        cur.execute("UPDATE tasks SET completed_at = completed_at - interval '3 days' "
                    "WHERE user_id = %s AND completed", (users[1],))
        cur.execute("DELETE FROM tasks WHERE user_id = ANY(%s) AND id %% 11 = 0", (users,))
    assert_exact(admin_db, users)
    with admin_db.cursor() as cur:
        cur.execute("DELETE FROM users WHERE id = %s", (users[0],))
    assert counters_and_counts(admin_db, [users[0]])[0] == []
    assert_exact(admin_db, users)


def test_the_list_counts_and_the_statistics_agree_with_counting(alice):
    for n in range(12):
        alice.create_task(title=f"n{n}", priority=("low", "high")[n % 2], category=("work", None, "Home")[n % 3],
                          status=("todo", "in_progress", "done")[n % 3], due_date="2020-01-01" if n % 4 else None)
    everything = alice.get("/api/tasks?limit=500").get_json()["tasks"]
    for query, chosen in (("", everything),
                          ("status=pending&priority=high", [t for t in everything
                                                            if not t["completed"] and t["priority"] == "high"]),
                          ("status=in_progress&category=work", [t for t in everything if t["status"] == "in_progress"
                                                                and (t["category"] or "").lower() == "work"]),
                          ("category=HOME", [t for t in everything if t["category"] == "Home"])):
        listed = alice.get(f"/api/tasks?{query}").get_json()
        assert listed["count"] == listed["total"] == len(chosen), query
    # The counters (the user's own zone) and a count over the tasks (another zone of the same
    # offset, which the counters do not keep) give the same statistics.
    counted = alice.get("/api/stats").get_json()
    scanned = alice.get("/api/stats?tz=Etc/UTC").get_json()
    assert counted == scanned
    assert counted["statistics"]["total_tasks"] == 12
    overdue = [t for t in everything if t["due_date"] and not t["completed"]]
    assert counted["statistics"]["overdue_tasks"] == len(overdue)
    assert counted["by_category"] == {"Home": 4, "work": 4, "none": 4}
