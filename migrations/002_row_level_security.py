"""Row-level security: a second wall behind the service's own owner conditions.

Each request's statements run with the transaction-local setting `app.user_id` (see
service/db.py); the policies admit only that user's rows. FORCE applies them to the table owner
too, since hosted databases (Neon, Heroku) give the service the owner role. Operator commands
take the deliberate path around them by setting `app.bypass_rls` to `on` for their transaction.
NULLIF: once a local setting has ended, current_setting(..., true) returns '' rather than NULL.

The bypass test lives in a PL/pgSQL function on purpose: the planner estimates an opaque boolean
function at 1/3, whereas the inline `current_setting(...) = 'on'` comparison made it estimate a
user's list at ~1 row and pick a bitmap scan plus sort over the ordered index scan. For the
service's own rows the first arm of the OR is true, so the function is never called for them.
"""

ADMITS = "{column} = NULLIF(current_setting('app.user_id', true), '') OR rls_bypassed()"


def migrate(migrator, database, *, fake=False):
    """Enable and force row-level security on users and tasks."""
    migrator.sql("""
CREATE FUNCTION rls_bypassed() RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce(current_setting('app.bypass_rls', true), '') = 'on';
END $$""")
    for table, column in (("users", "id"), ("tasks", "user_id")):
        admits = ADMITS.format(column=column)
        migrator.sql(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        migrator.sql(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        migrator.sql(f"CREATE POLICY {table}_owner ON {table} USING ({admits}) WITH CHECK ({admits})")


def rollback(migrator, database, *, fake=False):
    """Drop the policies and turn row-level security off."""
    for table in ("tasks", "users"):
        migrator.sql(f"DROP POLICY {table}_owner ON {table}")
        migrator.sql(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        migrator.sql(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    migrator.sql("DROP FUNCTION rls_bypassed()")
