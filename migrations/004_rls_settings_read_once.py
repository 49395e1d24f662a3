"""Row-level security policies that read their settings once per statement, not once per row.

Written as scalar subqueries, `current_setting(...)` becomes an InitPlan: evaluated once, then
each row costs one text comparison. Counting a user's 100,000 tasks went from ~45 ms to ~15 ms
(the same count without row-level security: ~12 ms), and the planner, seeing a parameter rather
than a selective-looking expression, keeps its ordered index scans (which is what 002's
rls_bypassed() function was for; it is no longer needed).
"""

TABLES = (("users", "id"), ("tasks", "user_id"), ("idempotency_keys", "user_id"))
READ_ONCE = ("{column} = (SELECT NULLIF(current_setting('app.user_id', true), '')) "
             "OR (SELECT coalesce(current_setting('app.bypass_rls', true), '') = 'on')")
PER_ROW = "{column} = NULLIF(current_setting('app.user_id', true), '') OR rls_bypassed()"


def _set_policies(migrator, template):
    for table, column in TABLES:
        admits = template.format(column=column)
        migrator.sql(f"ALTER POLICY {table}_owner ON {table} USING ({admits}) WITH CHECK ({admits})")


def migrate(migrator, database, *, fake=False):
    """Rewrite the three owner policies with settings read once; drop rls_bypassed()."""
    _set_policies(migrator, READ_ONCE)
    migrator.sql("DROP FUNCTION rls_bypassed()")


def rollback(migrator, database, *, fake=False):
    """Restore 002/003's per-row policies and their function."""
    migrator.sql("""
CREATE FUNCTION rls_bypassed() RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce(current_setting('app.bypass_rls', true), '') = 'on';
END $$""")
    _set_policies(migrator, PER_ROW)
