"""Time (contract section 6): the user's time zone, reminders and recurring tasks.

- users.timezone: a zone PostgreSQL knows (the service accepts IANA names only), default UTC.
  The check calls a function because a CHECK cannot look the name up in pg_timezone_names.
- tasks.remind_at: when to remind; a partial index serves a user's due reminders.
- tasks.recurrence: an RFC 5545 RRULE of the parts the service expands (FREQ, INTERVAL, BYDAY,
  BYMONTHDAY, BYMONTH, COUNT, UNTIL, WKST), as given; a recurring task needs a due date. The
  service validates the rule with python-dateutil; the database checks its shape.
- An index on completed_at serves the statistics' streaks and week.
"""

PART = "(FREQ|INTERVAL|BYDAY|BYMONTHDAY|BYMONTH|COUNT|UNTIL|WKST)=[^;=]+"
RRULE_SHAPE = (f"recurrence ~* '^(RRULE:)?{PART}(;{PART})*$' "
               "AND recurrence ~* '(^|:|;)FREQ=(DAILY|WEEKLY|MONTHLY|YEARLY)(;|$)' "
               "AND char_length(recurrence) <= 500")


def migrate(migrator, database, *, fake=False):
    """Add users.timezone, tasks.remind_at and tasks.recurrence, with their checks and indexes."""
    migrator.sql("""
CREATE FUNCTION is_time_zone(name text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM now() AT TIME ZONE name;
    RETURN true;
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN false;
END $$""")
    migrator.sql("ALTER TABLE users ADD COLUMN timezone text NOT NULL DEFAULT 'UTC' "
                 "CONSTRAINT users_timezone_known CHECK (char_length(timezone) <= 64 AND is_time_zone(timezone))")
    migrator.sql("ALTER TABLE tasks ADD COLUMN remind_at timestamptz")
    migrator.sql(f"ALTER TABLE tasks ADD COLUMN recurrence text "
                 f"CONSTRAINT tasks_recurrence_rule CHECK (recurrence IS NULL OR ({RRULE_SHAPE}))")
    migrator.sql("ALTER TABLE tasks ADD CONSTRAINT tasks_recurrence_needs_due_date "
                 "CHECK (recurrence IS NULL OR due_date IS NOT NULL)")
    migrator.sql("CREATE INDEX tasks_user_reminders ON tasks (user_id, remind_at, id) "
                 "WHERE remind_at IS NOT NULL AND NOT completed")
    migrator.sql("CREATE INDEX tasks_user_completed_at ON tasks (user_id, completed_at) "
                 "WHERE completed_at IS NOT NULL")


def rollback(migrator, database, *, fake=False):
    """Drop what migrate added."""
    migrator.sql("ALTER TABLE tasks DROP COLUMN recurrence, DROP COLUMN remind_at")
    migrator.sql("DROP INDEX tasks_user_completed_at")
    migrator.sql("ALTER TABLE users DROP COLUMN timezone")
    migrator.sql("DROP FUNCTION is_time_zone(text)")
