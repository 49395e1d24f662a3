"""Counters kept by the database, so counting a user's tasks costs the same for 100 tasks or 100,000.

- task_tallies: how many tasks a user has per (priority, status, category); a list filtered by
  nothing but status, priority or category, and the statistics' totals, sum a few rows of it.
- task_completion_days: how many tasks a user completed per day of their time zone (by
  completed_at); the statistics' streaks and week read it. A change of the user's time zone
  recounts their days.
Triggers keep both exact in the same transaction as each change: statement-level for inserts
and deletes (an import or a cascade is one pass), row-level for updates, and only when a counted
column changed. Every change to a user's tallies is applied in one upsert in key order, so two
transactions moving tasks in opposite directions cannot deadlock on them; that upsert adds -1 as
well as +1, which is why `n` has no CHECK (n >= 0): PostgreSQL checks the row it would insert
before it finds the conflict. Exactness is tested instead (tests/test_counters.py compares them
with count(*) after a randomized mix of changes). Both tables have row-level security like tasks.
"""

ADMITS = ("user_id = (SELECT NULLIF(current_setting('app.user_id', true), '')) "
          "OR (SELECT coalesce(current_setting('app.bypass_rls', true), '') = 'on')")
# A task's completion day: completed_at in its user's time zone.
DAY = "(({t}.completed_at AT TIME ZONE (SELECT timezone FROM users WHERE id = {t}.user_id))::date)"


def _tables(migrator):
    migrator.sql("""
CREATE TABLE task_tallies (
    user_id  text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    priority text NOT NULL,
    status   text NOT NULL,
    category text NOT NULL,  -- '' for tasks without one
    n        integer NOT NULL,
    PRIMARY KEY (user_id, priority, status, category)
)""")
    migrator.sql("""
CREATE TABLE task_completion_days (
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    day     date NOT NULL,
    n       integer NOT NULL,
    PRIMARY KEY (user_id, day)
)""")
    for table in ("task_tallies", "task_completion_days"):
        migrator.sql(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        migrator.sql(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        migrator.sql(f"CREATE POLICY {table}_owner ON {table} USING ({ADMITS}) WITH CHECK ({ADMITS})")


# Add `sign` x the rows of `source` (a transition table) to the counters, in key order.
TALLY = """
    INSERT INTO task_tallies AS t (user_id, priority, status, category, n)
    SELECT user_id, priority, status, coalesce(category, ''), {sign} count(*) FROM {source}
    GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (user_id, priority, status, category) DO UPDATE SET n = t.n + EXCLUDED.n;
    INSERT INTO task_completion_days AS d (user_id, day, n)
    SELECT user_id, {day}, {sign} count(*) FROM {source} WHERE completed_at IS NOT NULL
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (user_id, day) DO UPDATE SET n = d.n + EXCLUDED.n;"""


def _triggers(migrator):
    migrator.sql(f"""
CREATE FUNCTION task_counters_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{TALLY.format(sign="", source="new_rows", day=DAY.format(t="new_rows"))}
    RETURN NULL;
END $$""")
    # A deleted user's counters go with it (ON DELETE CASCADE); only the rows still there change.
    migrator.sql(f"""
CREATE FUNCTION task_counters_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE task_tallies t SET n = t.n - gone.n FROM (
        SELECT user_id, priority, status, coalesce(category, '') AS category, count(*) AS n FROM old_rows
        GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4) gone
    WHERE (t.user_id, t.priority, t.status, t.category) = (gone.user_id, gone.priority, gone.status, gone.category);
    UPDATE task_completion_days d SET n = d.n - gone.n FROM (
        SELECT user_id, {DAY.format(t="old_rows")} AS day, count(*) AS n FROM old_rows
        WHERE completed_at IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2) gone
    WHERE (d.user_id, d.day) = (gone.user_id, gone.day);
    RETURN NULL;
END $$""")
    migrator.sql(f"""
CREATE FUNCTION task_counters_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (OLD.priority, OLD.status, coalesce(OLD.category, '')) IS DISTINCT FROM
       (NEW.priority, NEW.status, coalesce(NEW.category, '')) THEN
        INSERT INTO task_tallies AS t (user_id, priority, status, category, n)
        SELECT * FROM (VALUES (OLD.user_id, OLD.priority, OLD.status, coalesce(OLD.category, ''), -1),
                              (NEW.user_id, NEW.priority, NEW.status, coalesce(NEW.category, ''), 1)) AS v
        ORDER BY 1, 2, 3, 4
        ON CONFLICT (user_id, priority, status, category) DO UPDATE SET n = t.n + EXCLUDED.n;
    END IF;
    IF OLD.completed_at IS DISTINCT FROM NEW.completed_at THEN
        INSERT INTO task_completion_days AS d (user_id, day, n)
        SELECT user_id, day, sum(n) FROM (
            SELECT OLD.user_id AS user_id, {DAY.format(t="OLD")} AS day, -1 AS n WHERE OLD.completed_at IS NOT NULL
            UNION ALL
            SELECT NEW.user_id, {DAY.format(t="NEW")}, 1 WHERE NEW.completed_at IS NOT NULL) AS v
        GROUP BY 1, 2 HAVING sum(n) <> 0 ORDER BY 1, 2
        ON CONFLICT (user_id, day) DO UPDATE SET n = d.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END $$""")
    migrator.sql(f"""
CREATE FUNCTION user_completion_days_recount() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM task_completion_days WHERE user_id = NEW.id;
    INSERT INTO task_completion_days (user_id, day, n)
    SELECT user_id, {DAY.format(t="tasks")}, count(*) FROM tasks
    WHERE user_id = NEW.id AND completed_at IS NOT NULL GROUP BY 1, 2;
    RETURN NULL;
END $$""")
    migrator.sql("CREATE TRIGGER tasks_counters_insert AFTER INSERT ON tasks REFERENCING NEW TABLE AS new_rows "
                 "FOR EACH STATEMENT EXECUTE FUNCTION task_counters_insert()")
    migrator.sql("CREATE TRIGGER tasks_counters_delete AFTER DELETE ON tasks REFERENCING OLD TABLE AS old_rows "
                 "FOR EACH STATEMENT EXECUTE FUNCTION task_counters_delete()")
    # Not `UPDATE OF ...`: completing changes status and completed_at in a BEFORE trigger, which
    # such a trigger would not see; WHEN compares the row's values (in C, no function call).
    migrator.sql("CREATE TRIGGER tasks_counters_update AFTER UPDATE ON tasks FOR EACH ROW WHEN ("
                 "(OLD.priority, OLD.status, OLD.category, OLD.completed_at) IS DISTINCT FROM "
                 "(NEW.priority, NEW.status, NEW.category, NEW.completed_at)) EXECUTE FUNCTION task_counters_update()")
    migrator.sql("CREATE TRIGGER users_completion_days_recount AFTER UPDATE OF timezone ON users FOR EACH ROW "
                 "WHEN (OLD.timezone IS DISTINCT FROM NEW.timezone) EXECUTE FUNCTION user_completion_days_recount()")


def migrate(migrator, database, *, fake=False):
    """Create the counters, fill them from the tasks there are, and keep them by triggers."""
    # The fill must see every user's tasks, which row-level security (forced on the owner too)
    # hides from a connection without a user: lifted for this transaction only.
    migrator.sql("SELECT set_config('app.bypass_rls', 'on', true)")
    _tables(migrator)
    migrator.sql("INSERT INTO task_tallies (user_id, priority, status, category, n) "
                 "SELECT user_id, priority, status, coalesce(category, ''), count(*) FROM tasks GROUP BY 1, 2, 3, 4")
    migrator.sql(f"INSERT INTO task_completion_days (user_id, day, n) SELECT user_id, {DAY.format(t='tasks')}, "
                 "count(*) FROM tasks WHERE completed_at IS NOT NULL GROUP BY 1, 2")
    _triggers(migrator)
    # Overdue tasks (due before now, not completed): counted for the statistics, listed by the
    # overdue filter, from an index of the open tasks' due dates.
    migrator.sql("CREATE INDEX tasks_user_open_due ON tasks (user_id, due_date) WHERE NOT completed")


def rollback(migrator, database, *, fake=False):
    """Drop the counters and their triggers."""
    migrator.sql("DROP INDEX tasks_user_open_due")
    migrator.sql("DROP TRIGGER users_completion_days_recount ON users")
    for event in ("insert", "delete", "update"):
        migrator.sql(f"DROP TRIGGER tasks_counters_{event} ON tasks")
        migrator.sql(f"DROP FUNCTION task_counters_{event}()")
    migrator.sql("DROP FUNCTION user_completion_days_recount()")
    migrator.sql("DROP TABLE task_completion_days")
    migrator.sql("DROP TABLE task_tallies")
