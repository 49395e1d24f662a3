"""Tags (contract section 6): a user's own labels, the /api/tags routes in both families, a task's
`tags` (ordered by name ignoring case, then id), PUT /tasks/{id}/tags, `tags`/`tag_ids` in task
bodies, the tag filter, the limits (20 per task, 500 per user) and what the database alone refuses:
a link across users, a name clash ignoring case, the limits also under concurrent writers."""
import threading
import uuid

import psycopg2
import pytest
from psycopg2 import errors

from tests.organising import FAMILIES, TAG_FAMILIES, problem_fields, scoped

TAG_KEYS = {"id", "user_id", "name", "color", "created_at", "updated_at"}


def make_tag(caller, name=None, **fields):
    """Create a tag through the API; its JSON."""
    response = caller.post("/api/tags", json={"name": name or f"tag-{uuid.uuid4().hex[:6]}", **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def names(task):
    return [tag["name"] for tag in task["tags"]]


# The tag routes --------------------------------------------------------------------------------
@pytest.mark.parametrize("family", TAG_FAMILIES)
def test_tag_crud(alice, family):
    base = family.format(user=alice.id)
    created = alice.post(base, json={"name": "  Errands ", "color": "#FF8800"})
    assert created.status_code == 201, created.get_json()
    tag = created.get_json()
    assert set(tag) == TAG_KEYS
    assert (tag["name"], tag["color"], tag["user_id"]) == ("Errands", "#FF8800", alice.id)
    assert tag["created_at"] == tag["updated_at"]
    assert created.headers["Location"] == f"{base}/{tag['id']}"
    assert alice.get(created.headers["Location"]).get_json() == tag

    renamed = alice.patch(f"{base}/{tag['id']}", json={"name": "Chores"})
    assert renamed.status_code == 200
    assert (renamed.get_json()["name"], renamed.get_json()["color"]) == ("Chores", "#FF8800")
    assert renamed.get_json()["updated_at"] > tag["updated_at"]
    recoloured = alice.put(f"{base}/{tag['id']}", json={"color": None}).get_json()
    assert (recoloured["name"], recoloured["color"]) == ("Chores", None)

    deleted = alice.delete(f"{base}/{tag['id']}")
    assert deleted.status_code == 200
    assert deleted.get_json() == {"message": f"Tag {tag['id']} deleted.", "deleted_id": tag["id"]}
    assert alice.get(f"{base}/{tag['id']}").status_code == 404
    assert alice.delete(f"{base}/{tag['id']}").status_code == 404


@pytest.mark.parametrize("family", TAG_FAMILIES)
def test_the_tag_list_is_ordered_by_name_ignoring_case(alice, family):
    for name in ("zeta", "Alpha", "beta", "Gamma"):
        make_tag(alice, name)
    body = alice.get(family.format(user=alice.id)).get_json()
    assert [tag["name"] for tag in body["tags"]] == ["Alpha", "beta", "Gamma", "zeta"]
    assert body["count"] == 4
    assert all(set(tag) == TAG_KEYS for tag in body["tags"])


def test_a_new_tag_has_no_colour(alice):
    assert make_tag(alice, "plain")["color"] is None


@pytest.mark.parametrize("body, field", [
    ({}, "name"), ({"name": ""}, "name"), ({"name": "   "}, "name"), ({"name": "x" * 51}, "name"),
    ({"name": 5}, "name"), ({"name": None}, "name"), ({"name": "ok", "color": "red"}, "color"),
    ({"name": "ok", "color": "#12345"}, "color"), ({"name": "ok", "color": "#GGGGGG"}, "color"),
    ({"name": "ok", "color": "#1234567"}, "color"), ({"name": "ok", "color": "#123456\n"}, "color"),
])
def test_a_bad_tag_body_is_422(alice, body, field):
    assert problem_fields(alice.post("/api/tags", json=body)) == [field]
    assert alice.get("/api/tags").get_json()["count"] == 0


def test_names_of_fifty_characters_and_lowercase_colours_are_accepted(alice):
    tag = make_tag(alice, "n" * 50, color="#abcdef")
    assert (len(tag["name"]), tag["color"]) == (50, "#abcdef")


def test_an_empty_tag_update_is_422(alice):
    tag = make_tag(alice)
    assert problem_fields(alice.patch(f"/api/tags/{tag['id']}", json={})) == ["body"]


@pytest.mark.parametrize("family", TAG_FAMILIES)
@pytest.mark.parametrize("clash", ["errands", "ERRANDS", " Errands "])
def test_a_name_clash_ignoring_case_is_409(alice, family, clash):
    base = family.format(user=alice.id)
    make_tag(alice, "Errands")
    other = make_tag(alice, "Home")
    created = alice.post(base, json={"name": clash})
    assert created.status_code == 409, created.get_json()
    assert created.get_json()["errors"][0]["field"] == "name"
    renamed = alice.patch(f"{base}/{other['id']}", json={"name": clash})
    assert renamed.status_code == 409
    assert alice.get(f"{base}/{other['id']}").get_json()["name"] == "Home"
    assert alice.get(base).get_json()["count"] == 2


def test_a_tag_may_change_the_case_of_its_own_name(alice):
    tag = make_tag(alice, "errands")
    response = alice.patch(f"/api/tags/{tag['id']}", json={"name": "Errands"})
    assert response.status_code == 200 and response.get_json()["name"] == "Errands"


def test_two_users_may_have_tags_of_the_same_name(alice, bob):
    assert make_tag(alice, "work")["id"] != make_tag(bob, "Work")["id"]


@pytest.mark.parametrize("family", TAG_FAMILIES)
@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
def test_another_users_tag_is_404(alice, bob, family, method):
    tag = make_tag(alice, "private")
    response = bob.request(method, f"{family.format(user=bob.id)}/{tag['id']}",
                           json={"name": "stolen"} if method in ("PATCH", "PUT") else None)
    assert response.status_code == 404, response.get_json()
    assert "private" not in response.get_data(as_text=True)
    assert alice.get(f"/api/tags/{tag['id']}").get_json() == tag
    assert bob.get("/api/tags").get_json() == {"tags": [], "count": 0}


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_another_users_tag_path_is_403(alice, bob, method):
    response = bob.request(method, f"/api/{alice.id}/tags", json={"name": "x"} if method == "POST" else None)
    assert response.status_code == 403


def test_tags_need_a_token(client):
    assert client.get("/api/tags").status_code == 401
    assert client.post("/api/tags", json={"name": "x"}).status_code == 401


def test_an_out_of_range_tag_id_is_404(alice):
    for method in ("GET", "PATCH", "DELETE"):
        assert alice.request(method, f"/api/tags/{2**63}", json={"name": "x"}).status_code == 404


# A task's tags ---------------------------------------------------------------------------------
def test_a_task_carries_its_tags_ordered_by_name_ignoring_case(alice):
    task = alice.create_task(tags=["zeta", "Alpha", "beta"])
    assert names(task) == ["Alpha", "beta", "zeta"]
    assert all(set(tag) == TAG_KEYS for tag in task["tags"])
    assert alice.get(f"/api/tasks/{task['id']}").get_json()["tags"] == task["tags"]
    listed = alice.get("/api/tasks").get_json()["tasks"]
    assert listed[0]["tags"] == task["tags"]
    assert alice.create_task()["tags"] == []


def test_tags_with_names_equal_ignoring_case_cannot_exist_so_id_breaks_no_tie(admin_db, alice):
    tag = make_tag(alice, "same")
    with admin_db.cursor() as cur, pytest.raises(errors.UniqueViolation):
        cur.execute("INSERT INTO tags (user_id, name) VALUES (%s, 'SAME')", (alice.id,))
    assert tag["name"] == "same"


@pytest.mark.parametrize("family", FAMILIES)
def test_put_tags_by_ids(alice, family):
    base = family.format(user=alice.id)
    home, work = make_tag(alice, "home"), make_tag(alice, "Work")
    task = alice.create_task()
    response = alice.put(f"{base}/{task['id']}/tags", json={"tag_ids": [work["id"], home["id"], work["id"]]})
    assert response.status_code == 200, response.get_json()
    assert names(response.get_json()) == ["home", "Work"]
    assert response.headers["ETag"] == '"2"'  # replacing the tags is a change of the task
    assert alice.get(f"/api/tasks/{task['id']}").get_json()["tags"] == response.get_json()["tags"]
    cleared = alice.put(f"{base}/{task['id']}/tags", json={"tag_ids": []})
    assert cleared.get_json()["tags"] == [] and cleared.headers["ETag"] == '"3"'


@pytest.mark.parametrize("family", FAMILIES)
def test_put_tags_by_names_matches_ignoring_case_and_creates_the_missing(alice, family):
    base = family.format(user=alice.id)
    errands = make_tag(alice, "Errands", color="#00FF00")
    task = alice.create_task()
    response = alice.put(f"{base}/{task['id']}/tags", json={"tags": ["ERRANDS", " weekend ", "Weekend"]})
    assert response.status_code == 200, response.get_json()
    tags = response.get_json()["tags"]
    assert [(tag["name"], tag["color"]) for tag in tags] == [("Errands", "#00FF00"), ("weekend", None)]
    assert tags[0]["id"] == errands["id"]  # matched, not created again
    assert [tag["name"] for tag in alice.get("/api/tags").get_json()["tags"]] == ["Errands", "weekend"]
    assert alice.put(f"{base}/{task['id']}/tags", json={"tags": []}).get_json()["tags"] == []
    assert alice.get("/api/tags").get_json()["count"] == 2  # tags outlive their last task


def test_names_are_matched_as_the_database_folds_them(alice):
    """Case folding is the database's (lower()), in the match, the filter and the unique name."""
    tag = make_tag(alice, "İstanbul")
    task = alice.create_task(tags=["İstanbul"])
    assert [t["id"] for t in task["tags"]] == [tag["id"]]
    assert [t["id"] for t in alice.get("/api/tasks?tag=İstanbul").get_json()["tasks"]] == [task["id"]]
    assert alice.get("/api/tags").get_json()["count"] == 1


@pytest.mark.parametrize("body", [{"tag_ids": [999_999_999]}, {"tag_ids": ["1"]}, {"tag_ids": [0]},
                                  {"tag_ids": [True]}, {"tag_ids": 3}, {"tags": "home"}, {"tags": [""]},
                                  {"tags": ["x" * 51]}, {"tags": [7]}, {}, {"title": "not a tag field"}])
def test_a_bad_put_tags_body_is_422(alice, body):
    task = alice.create_task(tags=["keep"])
    response = alice.put(f"/api/tasks/{task['id']}/tags", json=body)
    assert response.status_code == 422, response.get_json()
    assert alice.get(f"/api/tasks/{task['id']}").get_json() == task


@pytest.mark.parametrize("family", FAMILIES)
def test_another_users_tag_id_is_422_and_changes_nothing(alice, bob, family):
    foreign = make_tag(bob, "bobs")
    task = alice.create_task(tags=["mine"])
    response = alice.put(f"{family.format(user=alice.id)}/{task['id']}/tags", json={"tag_ids": [foreign["id"]]})
    assert problem_fields(response) == ["tag_ids"]
    assert "bobs" not in response.get_data(as_text=True)
    assert alice.get(f"/api/tasks/{task['id']}").get_json() == task
    assert problem_fields(alice.post("/api/tasks", json={"title": "x", "tag_ids": [foreign["id"]]})) == ["tag_ids"]
    assert alice.get("/api/tasks").get_json()["count"] == 1


def test_put_tags_with_both_names_and_ids_is_422(alice):
    task = alice.create_task()
    tag = make_tag(alice)
    assert problem_fields(alice.put(f"/api/tasks/{task['id']}/tags",
                                    json={"tags": ["a"], "tag_ids": [tag["id"]]})) == ["tag_ids"]


@pytest.mark.parametrize("family", FAMILIES)
def test_put_tags_of_another_users_task_is_404(alice, bob, family):
    task = alice.create_task(tags=["mine"])
    response = bob.put(f"{family.format(user=bob.id)}/{task['id']}/tags", json={"tags": ["taken"]})
    assert response.status_code == 404
    assert alice.get(f"/api/tasks/{task['id']}").get_json() == task
    assert bob.get("/api/tags").get_json()["count"] == 0  # the missing tag was not created either
    assert alice.get("/api/tags").get_json()["count"] == 1


def test_put_tags_honours_if_match(alice):
    task = alice.create_task()
    stale = alice.put(f"/api/tasks/{task['id']}/tags", json={"tags": ["late"]}, headers={"If-Match": '"7"'})
    assert stale.status_code == 412 and stale.headers["ETag"] == '"1"'
    assert alice.get(f"/api/tasks/{task['id']}").get_json()["tags"] == []
    assert alice.get("/api/tags").get_json()["count"] == 0  # nothing of the refused write stays
    fresh = alice.put(f"/api/tasks/{task['id']}/tags", json={"tags": ["on time"]}, headers={"If-Match": '"1"'})
    assert fresh.status_code == 200 and names(fresh.get_json()) == ["on time"]


# tags / tag_ids in task bodies -----------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_create_and_update_bodies_take_tags_or_tag_ids(alice, family):
    base = family.format(user=alice.id)
    home = make_tag(alice, "home")
    created = alice.post(base, json={"title": "tagged", "tags": ["Home", "new one"]})
    assert created.status_code == 201, created.get_json()
    assert names(created.get_json()) == ["home", "new one"]
    task_id = created.get_json()["id"]
    updated = alice.patch(f"{base}/{task_id}", json={"title": "retagged", "tag_ids": [home["id"]]})
    assert (updated.get_json()["title"], names(updated.get_json()), updated.headers["ETag"]) == \
        ("retagged", ["home"], '"2"')
    put = alice.put(f"{base}/{task_id}", json={"tags": []})
    assert put.status_code == 200 and put.get_json()["tags"] == [] and put.headers["ETag"] == '"3"'
    by_ids = alice.post(base, json={"title": "by ids", "tag_ids": [home["id"]]}).get_json()
    assert names(by_ids) == ["home"]


@pytest.mark.parametrize("family", FAMILIES)
def test_a_body_with_both_tags_and_tag_ids_is_422(alice, family):
    base = family.format(user=alice.id)
    tag = make_tag(alice)
    both = {"tags": ["a"], "tag_ids": [tag["id"]]}
    assert problem_fields(alice.post(base, json={"title": "x", **both})) == ["tag_ids"]
    task = alice.create_task()
    assert problem_fields(alice.patch(f"{base}/{task['id']}", json=both)) == ["tag_ids"]
    assert alice.get("/api/tasks").get_json()["count"] == 1
    assert alice.get("/api/tags").get_json()["count"] == 1


def test_a_body_without_tags_keeps_them(alice):
    task = alice.create_task(tags=["kept"])
    assert names(alice.patch(f"/api/tasks/{task['id']}", json={"title": "renamed"}).get_json()) == ["kept"]
    assert names(alice.patch(f"/api/tasks/{task['id']}/complete").get_json()) == ["kept"]
    assert names(alice.patch(f"/api/tasks/{task['id']}/status", json={"status": "todo"}).get_json()) == ["kept"]


# What a task's version counts ----------------------------------------------------------------
def test_editing_or_deleting_a_tag_does_not_change_its_tasks_versions(alice):
    task = alice.create_task(tags=["old name", "doomed"])
    tags = {tag["name"]: tag for tag in task["tags"]}
    alice.patch(f"/api/tags/{tags['old name']['id']}", json={"name": "New name", "color": "#000000"})
    seen = alice.get(f"/api/tasks/{task['id']}")
    assert [(t["name"], t["color"]) for t in seen.get_json()["tags"]] == [("doomed", None), ("New name", "#000000")]
    assert seen.headers["ETag"] == '"1"'
    assert alice.delete(f"/api/tags/{tags['doomed']['id']}").status_code == 200
    after = alice.get(f"/api/tasks/{task['id']}")
    assert names(after.get_json()) == ["New name"]
    assert after.headers["ETag"] == '"1"'
    assert after.get_json()["updated_at"] == task["updated_at"]


def test_deleting_a_tag_removes_it_from_every_task(alice, admin_db):
    doomed = make_tag(alice, "doomed")
    tasks = [alice.create_task(tags=["doomed", "stays"]) for _ in range(2)]
    tasks.append(alice.create_task(tag_ids=[doomed["id"]]))
    alice.delete(f"/api/tags/{doomed['id']}")
    assert [names(alice.get(f"/api/tasks/{task['id']}").get_json()) for task in tasks] == [["stays"], ["stays"], []]
    with admin_db.cursor() as cur:
        cur.execute("SELECT count(*) FROM task_tags WHERE tag_id = %s", (doomed["id"],))
        assert cur.fetchone() == (0,)
    assert alice.get("/api/tasks?tag=doomed").get_json()["count"] == 0


def test_deleting_a_task_removes_its_links_and_keeps_the_tags(alice, admin_db):
    task = alice.create_task(tags=["survivor"])
    alice.delete(f"/api/tasks/{task['id']}")
    with admin_db.cursor() as cur:
        cur.execute("SELECT count(*) FROM task_tags WHERE task_id = %s", (task["id"],))
        assert cur.fetchone() == (0,)
    assert [tag["name"] for tag in alice.get("/api/tags").get_json()["tags"]] == ["survivor"]


def test_deleting_the_user_removes_their_tags(alice, admin_db):
    alice.create_task(tags=["gone"])
    assert alice.delete("/api/users/me").status_code == 200
    with admin_db.cursor() as cur:
        cur.execute("SELECT count(*) FROM tags WHERE user_id = %s", (alice.id,))
        assert cur.fetchone() == (0,)


# The tag filter ---------------------------------------------------------------------------------
@pytest.fixture
def tagged(alice):
    """Alice's tasks: both (home, work), home, work, none."""
    made = {"both": alice.create_task(tags=["Home", "Work"])["id"], "home": alice.create_task(tags=["home"])["id"],
            "work": alice.create_task(tags=["work", "other"])["id"], "none": alice.create_task()["id"]}
    return alice, made


@pytest.mark.parametrize("family", FAMILIES)
def test_the_tag_filter_needs_every_tag_ignoring_case(tagged, family):
    alice, made = tagged
    base = family.format(user=alice.id)
    cases = {"tag=home": {"both", "home"}, "tag=HOME&tag=work": {"both"}, "tags=home,Work": {"both"},
             "tags=work": {"both", "work"}, "tag=home&tags=work": {"both"}, "tags=%20home%20,%20work": {"both"},
             "tag=home&tag=home": {"both", "home"}, "tag=home&tag=nope": set(), "tags=nope": set(),
             "tag=work&status=completed": set(), "tag=work&search=nothing": set(), "tags=": set(made)}
    for query, expected in cases.items():
        body = alice.get(f"{base}?{query}").get_json()
        assert {task["id"] for task in body["tasks"]} == {made[name] for name in expected}, query
        assert body["count"] == len(expected), query


def test_the_tag_filter_counts(tagged):
    alice, made = tagged
    alice.patch(f"/api/tasks/{made['both']}/complete")
    body = alice.get("/api/tasks?tag=home&status=pending").get_json()
    assert [task["id"] for task in body["tasks"]] == [made["home"]]
    assert (body["count"], body["total"], body["completed_count"], body["pending_count"]) == (1, 1, 1, 1)


def test_the_tag_filter_sees_only_the_callers_tags(tagged, bob):
    bob.create_task(tags=["home"])
    assert bob.get("/api/tasks?tag=home").get_json()["count"] == 1
    assert tagged[0].get("/api/tasks?tag=home").get_json()["count"] == 2


@pytest.mark.parametrize("query", ["tag=" + "x" * 51, "tags=" + ",".join(f"t{n}" for n in range(21))])
def test_a_bad_tag_filter_is_422(alice, query):
    assert problem_fields(alice.get(f"/api/tasks?{query}")) == ["tag"]


# Limits ----------------------------------------------------------------------------------------
def test_twenty_tags_per_task(alice, database_url):
    twenty = [f"t{n:02d}" for n in range(20)]
    task = alice.create_task(tags=twenty)
    assert len(task["tags"]) == 20
    assert problem_fields(alice.put(f"/api/tasks/{task['id']}/tags", json={"tags": [*twenty, "t20"]})) == ["tags"]
    assert problem_fields(alice.post("/api/tasks", json={"title": "x", "tags": [*twenty, "t20"]})) == ["tags"]
    extra = make_tag(alice, "t20")
    ids = [tag["id"] for tag in task["tags"]] + [extra["id"]]
    assert problem_fields(alice.put(f"/api/tasks/{task['id']}/tags", json={"tag_ids": ids})) == ["tag_ids"]
    assert len(alice.get(f"/api/tasks/{task['id']}").get_json()["tags"]) == 20
    with scoped(database_url, alice.id) as cur, pytest.raises(errors.CheckViolation) as raised:
        cur.execute("INSERT INTO task_tags (user_id, task_id, tag_id) VALUES (%s, %s, %s)",
                    (alice.id, task["id"], extra["id"]))
    assert raised.value.diag.constraint_name == "tags_per_task"


def give_tags(admin_db, user_id, count):
    with admin_db.cursor() as cur:
        cur.execute("INSERT INTO tags (user_id, name) SELECT %s, 'bulk ' || n FROM generate_series(1, %s) AS n",
                    (user_id, count))


def test_five_hundred_tags_per_user(alice, admin_db, database_url):
    task = alice.create_task()
    give_tags(admin_db, alice.id, 499)
    make_tag(alice, "the 500th")
    response = alice.post("/api/tags", json={"name": "the 501st"})
    assert problem_fields(response) == ["name"]
    assert "500" in response.get_json()["errors"][0]["message"]
    assert problem_fields(alice.put(f"/api/tasks/{task['id']}/tags", json={"tags": ["brand new"]})) == ["tags"]
    assert problem_fields(alice.post("/api/tasks", json={"title": "x", "tags": ["brand new"]})) == ["tags"]
    assert alice.get("/api/tasks").get_json()["count"] == 1  # the refused create left no task
    # an existing tag can still be used
    assert names(alice.put(f"/api/tasks/{task['id']}/tags", json={"tags": ["bulk 7"]}).get_json()) == ["bulk 7"]
    assert alice.get("/api/tags").get_json()["count"] == 500
    with scoped(database_url, alice.id) as cur, pytest.raises(errors.CheckViolation) as raised:
        cur.execute("INSERT INTO tags (user_id, name) VALUES (%s, 'raw')", (alice.id,))
    assert raised.value.diag.constraint_name == "tags_per_user"


def concurrently(url, user_id, statements):
    """Run each [(sql, params)] list in its own transaction (own connection, the ordinary role
    with `user_id`'s scope), all released together; returns (committed count, errors)."""
    barrier = threading.Barrier(len(statements), timeout=30)
    committed, failures = [], []

    def run(batch):
        conn = psycopg2.connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT set_config('app.user_id', %s, true)", (user_id,))
                barrier.wait()
                for sql, params in batch:
                    cur.execute(sql, params)
            conn.commit()
            committed.append(True)
        except psycopg2.Error as error:
            conn.rollback()
            failures.append(error)
        finally:
            conn.close()

    threads = [threading.Thread(target=run, args=(batch,)) for batch in statements]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return len(committed), failures


def test_two_transactions_adding_eleven_links_each_cannot_both_pass(alice, admin_db, database_url):
    task = alice.create_task()
    give_tags(admin_db, alice.id, 22)
    with admin_db.cursor() as cur:
        cur.execute("SELECT array_agg(id ORDER BY id) FROM tags WHERE user_id = %s", (alice.id,))
        (ids,) = cur.fetchone()
    insert = ("INSERT INTO task_tags (user_id, task_id, tag_id) SELECT %s, %s, unnest(%s::bigint[])")
    for _ in range(3):  # a race may go either way each time: both orders must hold
        with admin_db.cursor() as cur:
            cur.execute("DELETE FROM task_tags WHERE task_id = %s", (task["id"],))
        done, failures = concurrently(database_url, alice.id, [[(insert, (alice.id, task["id"], ids[:11]))],
                                                               [(insert, (alice.id, task["id"], ids[11:]))]])
        assert done == 1, failures
        assert [type(error) for error in failures] == [errors.CheckViolation], failures
        with admin_db.cursor() as cur:
            cur.execute("SELECT count(*) FROM task_tags WHERE task_id = %s", (task["id"],))
            assert cur.fetchone() == (11,)


def test_two_transactions_creating_the_500th_tag_cannot_both_pass(alice, admin_db, database_url):
    alice.create_task()
    give_tags(admin_db, alice.id, 499)
    insert = "INSERT INTO tags (user_id, name) VALUES (%s, %s)"
    done, failures = concurrently(database_url, alice.id, [[(insert, (alice.id, "first"))],
                                                           [(insert, (alice.id, "second"))]])
    assert done == 1, failures
    assert [type(error) for error in failures] == [errors.CheckViolation], failures
    with admin_db.cursor() as cur:
        cur.execute("SELECT count(*) FROM tags WHERE user_id = %s", (alice.id,))
        assert cur.fetchone() == (500,)


def test_concurrent_tag_replacements_through_the_api_keep_the_limit(app, alice):
    from tests.servers import race

    task = alice.create_task()
    first, second = [f"a{n}" for n in range(11)], [f"b{n}" for n in range(11)]
    responses = race(app, alice, [("PUT", f"/api/tasks/{task['id']}/tags", {"json": {"tags": first}}),
                                  ("PUT", f"/api/tasks/{task['id']}/tags", {"json": {"tags": second}})])
    assert [r.status_code for r in responses] == [200, 200]  # each replaces the set: 11 either way
    final = names(alice.get(f"/api/tasks/{task['id']}").get_json())
    assert final in (sorted(first), sorted(second))


# The database: row-level security, links within one user ---------------------------------------
def test_a_link_across_users_cannot_exist(admin_db, alice, bob):
    alices_task = alice.create_task()["id"]
    bobs_tag, bobs_task = make_tag(bob)["id"], bob.create_task()["id"]
    alices_tag = make_tag(alice)["id"]
    with admin_db.cursor() as cur:  # the superuser: no row-level security, only the keys
        for user_id, task_id, tag_id in ((alice.id, alices_task, bobs_tag), (bob.id, alices_task, bobs_tag),
                                         (alice.id, bobs_task, alices_tag), (bob.id, bobs_task, alices_tag)):
            with pytest.raises(errors.ForeignKeyViolation):
                cur.execute("INSERT INTO task_tags (user_id, task_id, tag_id) VALUES (%s, %s, %s)",
                            (user_id, task_id, tag_id))
        cur.execute("INSERT INTO task_tags (user_id, task_id, tag_id) VALUES (%s, %s, %s)",
                    (alice.id, alices_task, alices_tag))
        with pytest.raises(errors.ForeignKeyViolation):  # nor can an update move one across
            cur.execute("UPDATE task_tags SET tag_id = %s WHERE task_id = %s", (bobs_tag, alices_task))
        with pytest.raises(errors.ForeignKeyViolation):
            cur.execute("UPDATE tags SET user_id = %s WHERE id = %s", (bob.id, alices_tag))


def test_the_service_role_sees_and_writes_only_the_scoped_users_tags(database_url, alice, bob):
    alice_task = alice.create_task(tags=["alices"])
    bob.create_task(tags=["bobs"])
    with scoped(database_url, alice.id) as cur:
        cur.execute("SELECT name FROM tags")
        assert cur.fetchall() == [("alices",)]
        cur.execute("SELECT count(*) FROM task_tags")
        assert cur.fetchone() == (1,)
        cur.execute("UPDATE tags SET name = 'renamed' WHERE user_id = %s", (bob.id,))
        assert cur.rowcount == 0
        cur.execute("DELETE FROM task_tags WHERE user_id = %s", (bob.id,))
        assert cur.rowcount == 0
        with pytest.raises(errors.InsufficientPrivilege):
            cur.execute("INSERT INTO tags (user_id, name) VALUES (%s, 'planted')", (bob.id,))
    with scoped(database_url, alice.id) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("INSERT INTO task_tags (user_id, task_id, tag_id) VALUES (%s, %s, %s)",
                    (bob.id, alice_task["id"], alice_task["tags"][0]["id"]))
    conn = psycopg2.connect(database_url)  # no scope at all: nothing
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT (SELECT count(*) FROM tags), (SELECT count(*) FROM task_tags)")
            assert cur.fetchone() == (0, 0)
    finally:
        conn.close()


@pytest.mark.parametrize("name, color, error", [
    ("", None, errors.CheckViolation), ("   ", None, errors.CheckViolation), (" lead", None, errors.CheckViolation),
    ("trail ", None, errors.CheckViolation), ("x" * 51, None, errors.CheckViolation),
    (None, None, errors.NotNullViolation), ("ok", "red", errors.CheckViolation),
    ("ok", "#12345G", errors.CheckViolation),
])
def test_the_database_refuses_a_bad_tag(admin_db, alice, name, color, error):
    alice.create_task()
    with admin_db.cursor() as cur, pytest.raises(error):
        cur.execute("INSERT INTO tags (user_id, name, color) VALUES (%s, %s, %s)", (alice.id, name, color))


def test_tag_timestamps_are_the_databases(admin_db, alice):
    tag = make_tag(alice)
    with admin_db.cursor() as cur:
        cur.execute("UPDATE tags SET color = '#000000', created_at = '2000-01-01Z' WHERE id = %s "
                    "RETURNING created_at = %s::timestamptz, updated_at > %s::timestamptz",
                    (tag["id"], tag["created_at"], tag["updated_at"]))
        assert cur.fetchone() == (True, True)



@pytest.mark.parametrize("body", [{}, {"tags": ["back"]}])
def test_a_create_provisions_the_owner_again_after_another_process_deleted_it(alice, admin_db, body):
    """This process still knows the user; the foreign key tells it the row is gone."""
    alice.create_task()
    with admin_db.cursor() as cur:
        cur.execute("DELETE FROM users WHERE id = %s", (alice.id,))
    response = alice.post("/api/tasks", json={"title": "again", **body})
    assert response.status_code == 201, response.get_json()
    assert names(response.get_json()) == body.get("tags", [])
    assert alice.get("/api/users/me").status_code == 200


def test_concurrent_creates_with_new_tags_by_one_user_all_succeed(app, alice):
    """Each create inserts a task and tags of the same user: the tag limit's lock must not make
    them wait for each other in a circle (a deadlock would be a failed request)."""
    from tests.servers import race

    alice.create_task()
    bodies = [{"json": {"title": f"racer {n}", "tags": ["shared", f"own {n}"]}} for n in range(6)]
    responses = race(app, alice, [("POST", "/api/tasks", body) for body in bodies])
    assert [r.status_code for r in responses] == [201] * 6, [r.get_json() for r in responses]
    assert sorted(tag["name"] for tag in alice.get("/api/tags").get_json()["tags"]) == \
        sorted(["shared", *(f"own {n}" for n in range(6))])
    assert alice.get("/api/tasks?tag=shared").get_json()["count"] == 6


def test_the_tag_tables_carry_the_json_names(database_url, admin_db):
    with admin_db.cursor() as cur:
        cur.execute("SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND table_name IN ('tags', 'task_tags') "
                    "ORDER BY table_name, ordinal_position")
        columns = cur.fetchall()
    assert columns == [
        ("tags", "id", "bigint", "NO"), ("tags", "user_id", "text", "NO"), ("tags", "name", "text", "NO"),
        ("tags", "color", "text", "YES"), ("tags", "created_at", "timestamp with time zone", "NO"),
        ("tags", "updated_at", "timestamp with time zone", "NO"),
        ("task_tags", "user_id", "text", "NO"), ("task_tags", "task_id", "bigint", "NO"),
        ("task_tags", "tag_id", "bigint", "NO"),
    ]
