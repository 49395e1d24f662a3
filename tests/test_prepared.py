"""Hot statements run as server-side prepared statements (service/db/prepared.py): prepared once
per connection, in the same message as their first EXECUTE, named by a hash of their SQL, and
given up safely when a pooler loses them."""
import pytest

from service.db import database
from service.db.prepared import _named
from tests.conftest import Caller
from tests.servers import fresh_app


def prepared_on(db):
    """The service's statements prepared on `db`'s connection of this thread."""
    return sorted(name for (name,) in db.execute_sql(
        "SELECT name FROM pg_prepared_statements WHERE name LIKE 'todo%%'").fetchall())


def test_a_hot_statement_is_prepared_once_then_executed_by_name(database_url):
    with fresh_app(database_url, DATABASE_POOL_SIZE="4") as app:
        db = app.extensions["database"]
        caller = Caller(app.test_client())
        task = caller.create_task(title="prepared")
        sent = []
        original = db._send

        def record(sql, params, shape=None):
            sent.append(sql)
            return original(sql, params, shape)

        db._send = record
        try:
            for _ in range(3):
                assert caller.get(f"/api/tasks/{task['id']}").get_json()["title"] == "prepared"
        finally:
            del db._send
        gets = [sql for sql in sent if "EXECUTE todo_" in sql]
        assert len(gets) == 3
        assert sum("PREPARE todo_" in sql for sql in sent) <= 1  # at most once on this connection
        database.initialize(db)
        db.open_for(caller.id)
        try:
            names = prepared_on(db)
        finally:
            db.release()
        assert names and all(name.startswith("todo_") for name in names)


def test_names_are_the_sql_texts_hash_so_a_name_always_means_the_same_statement():
    first, second = 'SELECT "id" FROM "tasks" WHERE "id" = %s', 'SELECT "id" FROM "tasks" WHERE "user_id" = %s'
    assert _named(first)[0] == _named(first)[0] != _named(second)[0]
    name, prepare, count = _named('SELECT %s, \'100%%\' WHERE x = %s')
    assert prepare == f"PREPARE {name} AS SELECT $1, '100%%' WHERE x = $2; " and count == 2


def test_a_statement_already_prepared_on_the_connection_is_executed_by_name(database_url):
    with fresh_app(database_url, DATABASE_POOL_SIZE="1") as app:
        db = app.extensions["database"]
        caller = Caller(app.test_client())
        task = caller.create_task(title="known")
        assert caller.get(f"/api/tasks/{task['id']}").status_code == 200
        db.prepared._on.clear()  # this process forgets what the connection has (as after a restart of the pool)
        assert caller.get(f"/api/tasks/{task['id']}").get_json()["title"] == "known"
        assert db.prepared.enabled


def test_they_can_be_turned_off(database_url):
    with fresh_app(database_url, DATABASE_PREPARED_STATEMENTS="off") as app:
        db = app.extensions["database"]
        caller = Caller(app.test_client())
        task = caller.create_task(title="plain")
        assert caller.get(f"/api/tasks/{task['id']}").status_code == 200
        database.initialize(db)
        db.open_for(caller.id)
        try:
            assert prepared_on(db) == []
        finally:
            db.release()


def test_a_lost_statement_turns_them_off_and_the_request_still_answers(database_url):
    with fresh_app(database_url, DATABASE_POOL_SIZE="1") as app:
        db = app.extensions["database"]
        caller = Caller(app.test_client())
        task = caller.create_task(title="lost")
        assert caller.get(f"/api/tasks/{task['id']}").status_code == 200
        database.initialize(db)
        db.open_for(caller.id)
        try:
            db.execute_sql("DEALLOCATE ALL")  # what a pooler's other server connection looks like
        finally:
            db.release()
        assert caller.get(f"/api/tasks/{task['id']}").get_json()["title"] == "lost"
        assert not db.prepared.enabled


@pytest.mark.parametrize("setting", ["maybe", "2"])
def test_a_bad_setting_is_one_line(setting):
    from service.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="DATABASE_PREPARED_STATEMENTS must be on or off"):
        load_config({"DATABASE_PREPARED_STATEMENTS": setting})
