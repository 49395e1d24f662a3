"""The request scope rides on every statement and every transaction, whatever its isolation."""
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
