"""The request scope rides on every statement and every transaction, whatever its isolation."""
import contextlib

import pytest


@pytest.mark.parametrize("isolation", [None, "SERIALIZABLE", "REPEATABLE READ"])
def test_transactions_carry_the_scope_at_any_isolation_level(app, alice, isolation):
    task = alice.create_task()
    db = app.extensions["database"]
    db.bind_user(alice.id)
    try:
        with db.connection_context(), db.atomic(isolation_level=isolation) if isolation else db.atomic():
            (setting,) = db.execute_sql("SELECT current_setting('app.user_id', true)").fetchone()
            (visible,) = db.execute_sql("SELECT count(*) FROM tasks WHERE id = %s", (task["id"],)).fetchone()
            if isolation:
                (level,) = db.execute_sql("SHOW transaction_isolation").fetchone()
                assert level == isolation.lower()
    finally:
        db.unbind()
    assert setting == alice.id
    assert visible == 1


# Raw SQL and `%`: psycopg2 formats every statement peewee sends (peewee always passes a
# parameter tuple, and under a scope it is never empty), so each `%` is a placeholder.
@contextlib.contextmanager
def sending(db, mode):
    """A connection of `db` as `mode`: unscoped, scoped to a user, or scoped inside a transaction."""
    if mode != "unscoped":
        db.bind_user("percent-user")
    try:
        with db.connection_context(), db.atomic() if mode == "in a transaction" else contextlib.nullcontext():
            yield
    finally:
        db.unbind()


MODES = ["unscoped", "scoped", "in a transaction"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sql", ["SELECT '100%'", "SELECT 'abc' LIKE 'a%'", "SELECT '%%' || '%'"])
def test_a_bare_percent_in_raw_sql_is_refused_saying_to_write_it_doubled(app, mode, sql):
    db = app.extensions["database"]
    with sending(db, mode), pytest.raises(ValueError, match="must be written %%"):
        db.execute_sql(sql)


@pytest.mark.parametrize("mode", MODES)
def test_a_doubled_percent_is_a_literal_percent(app, mode):
    db = app.extensions["database"]
    with sending(db, mode):
        assert db.execute_sql("SELECT '100%%', 'abc' LIKE 'a%%'").fetchone() == ("100%", True)
        assert db.execute_sql("SELECT %s || '%%'", ("100",)).fetchone() == ("100%",)
        if mode != "unscoped":
            (user,) = db.execute_sql("SELECT current_setting('app.user_id', true)").fetchone()
            assert user == "percent-user"
