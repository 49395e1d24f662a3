"""Organising tasks (contract section 6): priority and status vocabularies, workflow status with
completion kept consistent, completed_at, category, and the user's tags.

- Vocabularies are lookup tables (`task_priorities`, `task_statuses`: value, rank); tasks refer to
  them by foreign key, so the database refuses any other value. This migration seeds the default
  vocabularies; `flask --app wsgi apply-vocabularies` (the release phase, after migrating) makes
  them match TASK_PRIORITIES / TASK_STATUSES.
- Sorting by priority reads `priority_order`, kept by a trigger from the value's rank. 001's
  generated `priority_rank` knows only low/medium/high; it stays where it is (dropping it here
  and adding it back on rollback would move it to the end of the table, so the rollback would not
  restore the schema exactly), but no index or query reads it any more.
- `completed` is true exactly when `status` is the last state, kept so by a trigger (completing
  moves to the last state, un-completing to the first, setting the status sets `completed`);
  `completed_at` is when the task last became completed (a CHECK ties it to `completed`).
- tags and task_tags: the link's foreign keys share the user id, so a task and a tag of
  different users cannot be linked. At most 20 tags per task and 500 per user, checked after
  each statement under a lock on the parent row (concurrent inserts cannot both pass).
Every new table has row-level security, forced, like tasks (the vocabularies: readable by all,
written only with the operator bypass).
"""

ADMITS = ("{column} = (SELECT NULLIF(current_setting('app.user_id', true), '')) "
          "OR (SELECT coalesce(current_setting('app.bypass_rls', true), '') = 'on')")
BYPASS = "(SELECT coalesce(current_setting('app.bypass_rls', true), '') = 'on')"
TRIMMED = r"char_length({c}) BETWEEN 1 AND {n} AND {c} !~ '^\s' AND {c} !~ '\s$'"
VOCABULARIES = (("task_priorities", ("low", "medium", "high")),
                ("task_statuses", ("todo", "in_progress", "done")))


def _vocabularies(migrator):
    for table, values in VOCABULARIES:
        migrator.sql(f"""
CREATE TABLE {table} (
    value text PRIMARY KEY CHECK (value ~ '^[A-Za-z0-9_-]{{1,30}}$'),
    rank  smallint NOT NULL,
    CONSTRAINT {table}_rank_key UNIQUE (rank) DEFERRABLE INITIALLY DEFERRED
)""")
        rows = ", ".join(f"('{value}', {rank})" for rank, value in enumerate(values))
        migrator.sql(f"INSERT INTO {table} (value, rank) VALUES {rows}")
        migrator.sql(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        migrator.sql(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        migrator.sql(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING (true)")
        migrator.sql(f"CREATE POLICY {table}_write ON {table} USING ({BYPASS}) WITH CHECK ({BYPASS})")


def _task_columns(migrator):
    migrator.sql("ALTER TABLE tasks DROP CONSTRAINT tasks_priority_known")
    migrator.sql("ALTER TABLE tasks ADD CONSTRAINT tasks_priority_fkey FOREIGN KEY (priority) "
                 "REFERENCES task_priorities (value) ON UPDATE CASCADE")
    migrator.sql("ALTER TABLE tasks ADD COLUMN priority_order smallint")
    migrator.sql("ALTER TABLE tasks ADD COLUMN status text NOT NULL DEFAULT 'todo' "
                 "REFERENCES task_statuses (value) ON UPDATE CASCADE")
    migrator.sql("ALTER TABLE tasks ADD COLUMN completed_at timestamptz")
    migrator.sql(f"ALTER TABLE tasks ADD COLUMN category text CONSTRAINT tasks_category_trimmed "
                 f"CHECK (category IS NULL OR ({TRIMMED.format(c='category', n=50)}))")
    migrator.sql("""
CREATE FUNCTION task_priority_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.priority_order := (SELECT rank FROM task_priorities WHERE value = NEW.priority);
    RETURN NEW;
END $$""")
    migrator.sql("""
CREATE FUNCTION task_status_sync() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    first_state text := (SELECT value FROM task_statuses ORDER BY rank LIMIT 1);
    last_state  text := (SELECT value FROM task_statuses ORDER BY rank DESC LIMIT 1);
BEGIN
    IF coalesce(current_setting('app.vocabulary_release', true), '') = 'on' THEN
        NEW.completed := NEW.status = last_state;  -- the release moved the last state
    ELSIF TG_OP = 'INSERT' THEN
        IF NEW.completed AND NEW.status = first_state THEN
            NEW.status := last_state;  -- completed given, status left at its default
        END IF;
    ELSIF NEW.status IS DISTINCT FROM OLD.status AND NEW.completed = OLD.completed THEN
        NEW.completed := NEW.status = last_state;
    ELSIF NEW.completed <> OLD.completed AND NEW.status = OLD.status THEN
        NEW.status := CASE WHEN NEW.completed THEN last_state ELSE first_state END;
    END IF;
    IF TG_OP = 'INSERT' AND NEW.status = last_state THEN
        NEW.completed := true;
    END IF;
    IF NEW.completed IS DISTINCT FROM (NEW.status = last_state) THEN
        RAISE EXCEPTION 'completed must be true exactly when status is the last state (%%)', last_state
            USING ERRCODE = 'check_violation', CONSTRAINT = 'tasks_status_completed';
    END IF;
    IF NOT NEW.completed THEN
        NEW.completed_at := NULL;
    ELSIF TG_OP = 'INSERT' THEN
        NEW.completed_at := coalesce(NEW.completed_at, now());  -- an import keeps its own
    ELSIF OLD.completed THEN
        NEW.completed_at := OLD.completed_at;  -- still completed: since when it became so
    ELSE
        NEW.completed_at := now();
    END IF;
    RETURN NEW;
END $$""")
    migrator.sql("CREATE TRIGGER tasks_priority_order BEFORE INSERT OR UPDATE OF priority ON tasks "
                 "FOR EACH ROW EXECUTE FUNCTION task_priority_order()")
    migrator.sql("CREATE TRIGGER tasks_status_sync BEFORE INSERT OR UPDATE ON tasks "
                 "FOR EACH ROW EXECUTE FUNCTION task_status_sync()")
    # Existing rows take their rank, the last state when completed, and their last change as the
    # moment they were completed (nothing better is known); versions and timestamps are kept.
    migrator.sql("ALTER TABLE tasks DISABLE TRIGGER tasks_touch, DISABLE TRIGGER tasks_status_sync")
    migrator.sql("UPDATE tasks SET priority = priority, status = CASE WHEN completed THEN 'done' ELSE 'todo' END, "
                 "completed_at = CASE WHEN completed THEN updated_at END")
    migrator.sql("ALTER TABLE tasks ENABLE TRIGGER tasks_touch, ENABLE TRIGGER tasks_status_sync")
    migrator.sql("ALTER TABLE tasks ADD CONSTRAINT tasks_completed_at_set "
                 "CHECK (completed = (completed_at IS NOT NULL))")
    migrator.sql("DROP INDEX tasks_user_priority")
    migrator.sql("CREATE INDEX tasks_user_priority_order ON tasks (user_id, priority_order, id)")
    # The category filter ignores case. Under row-level security PostgreSQL uses no index condition
    # built on a function that is not leakproof (lower() is not), so an index on lower(category)
    # would never serve it: the folded value is a generated column of its own, compared by `=`.
    migrator.sql("ALTER TABLE tasks ADD COLUMN category_key text GENERATED ALWAYS AS (lower(category)) STORED")
    migrator.sql("CREATE INDEX tasks_user_category ON tasks (user_id, category_key, created_at, id)")
    migrator.sql("CREATE INDEX tasks_user_status ON tasks (user_id, status, created_at, id)")
    # The link table's foreign keys reference (user_id, id): it must be a key.
    migrator.sql("ALTER TABLE tasks ADD CONSTRAINT tasks_user_id_id_key UNIQUE (user_id, id)")


TOUCH_TASK = """
CREATE OR REPLACE FUNCTION touch_task() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.created_at := OLD.created_at;
    {release}NEW.updated_at := now();
    NEW.version := OLD.version + 1;
    RETURN NEW;
END $$"""
# While the release re-ranks or re-completes tasks for a changed vocabulary, no client changed them.
RELEASE_KEEPS_VERSIONS = """IF coalesce(current_setting('app.vocabulary_release', true), '') = 'on' THEN
        RETURN NEW;
    END IF;
    """


def _tags(migrator):
    migrator.sql(f"""
CREATE TABLE tags (
    id         bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       text NOT NULL CONSTRAINT tags_name_trimmed CHECK ({TRIMMED.format(c='name', n=50)}),
    color      text CONSTRAINT tags_color_hex CHECK (color IS NULL OR color ~ '^#[0-9A-Fa-f]{{6}}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tags_user_id_id_key UNIQUE (user_id, id)
)""")
    migrator.sql("CREATE UNIQUE INDEX tags_user_name_key ON tags (user_id, lower(name))")
    migrator.sql("CREATE TRIGGER tags_touch BEFORE UPDATE ON tags FOR EACH ROW EXECUTE FUNCTION touch_updated_at()")
    migrator.sql("""
CREATE TABLE task_tags (
    user_id text NOT NULL,
    task_id bigint NOT NULL,
    tag_id  bigint NOT NULL,
    PRIMARY KEY (task_id, tag_id),
    CONSTRAINT task_tags_task_fkey FOREIGN KEY (user_id, task_id) REFERENCES tasks (user_id, id) ON DELETE CASCADE,
    CONSTRAINT task_tags_tag_fkey FOREIGN KEY (user_id, tag_id) REFERENCES tags (user_id, id) ON DELETE CASCADE
)""")
    migrator.sql("CREATE INDEX task_tags_tag ON task_tags (tag_id, task_id)")
    for table, parent, key, limit, constraint in (
            ("tags", "users", "user_id", 500, "tags_per_user"),
            ("task_tags", "tasks", "task_id", 20, "tags_per_task")):
        migrator.sql(f"""
CREATE FUNCTION {constraint}_limit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    over text;
BEGIN
    -- The parents' rows are locked first, so of two concurrent inserts the second counts the first's.
    -- NO KEY UPDATE: each insert's foreign-key check holds KEY SHARE on the parent, which FOR UPDATE
    -- would wait for (two concurrent inserts then deadlock); this lock still excludes its own kind.
    PERFORM 1 FROM {parent} WHERE id IN (SELECT {key} FROM new_rows) ORDER BY id FOR NO KEY UPDATE;
    SELECT {key}::text INTO over FROM {table} WHERE {key} IN (SELECT {key} FROM new_rows)
     GROUP BY {key} HAVING count(*) > {limit} LIMIT 1;
    IF over IS NOT NULL THEN
        RAISE EXCEPTION 'at most {limit} {table} per {parent[:-1]} (%% has more)', over
            USING ERRCODE = 'check_violation', CONSTRAINT = '{constraint}';
    END IF;
    RETURN NULL;
END $$""")
        migrator.sql(f"CREATE TRIGGER {constraint} AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
                     f"FOR EACH STATEMENT EXECUTE FUNCTION {constraint}_limit()")
    for table in ("tags", "task_tags"):
        admits = ADMITS.format(column="user_id")
        migrator.sql(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        migrator.sql(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        migrator.sql(f"CREATE POLICY {table}_owner ON {table} USING ({admits}) WITH CHECK ({admits})")


def migrate(migrator, database, *, fake=False):
    """Vocabularies, status, completed_at, category, tags."""
    # The backfill below must see every user's tasks, which row-level security (forced on the
    # owner too) hides from a connection without a user: lifted for this transaction only.
    migrator.sql("SELECT set_config('app.bypass_rls', 'on', true)")
    _vocabularies(migrator)
    _task_columns(migrator)
    migrator.sql(TOUCH_TASK.format(release=RELEASE_KEEPS_VERSIONS))
    _tags(migrator)


def rollback(migrator, database, *, fake=False):
    """Back to 004: drop the tags, the new columns, triggers and vocabularies; priorities are
    again checked against low/medium/high (a task with another priority stops the rollback)."""
    migrator.sql("DROP TABLE task_tags")
    migrator.sql("DROP TABLE tags")
    migrator.sql("DROP FUNCTION tags_per_task_limit()")
    migrator.sql("DROP FUNCTION tags_per_user_limit()")
    migrator.sql("ALTER TABLE tasks DROP CONSTRAINT tasks_user_id_id_key")
    migrator.sql(TOUCH_TASK.format(release=""))
    migrator.sql("DROP TRIGGER tasks_status_sync ON tasks")
    migrator.sql("DROP TRIGGER tasks_priority_order ON tasks")
    migrator.sql("DROP FUNCTION task_status_sync()")
    migrator.sql("DROP FUNCTION task_priority_order()")
    migrator.sql("ALTER TABLE tasks DROP COLUMN category_key, DROP COLUMN category, DROP COLUMN completed_at, "
                 "DROP COLUMN status, DROP COLUMN priority_order")
    migrator.sql("CREATE INDEX tasks_user_priority ON tasks (user_id, priority_rank, id)")
    migrator.sql("ALTER TABLE tasks DROP CONSTRAINT tasks_priority_fkey")
    migrator.sql("ALTER TABLE tasks ADD CONSTRAINT tasks_priority_known "
                 "CHECK (priority IN ('low', 'medium', 'high'))")
    migrator.sql("ALTER TABLE tasks ALTER COLUMN priority SET DEFAULT 'medium'")
    migrator.sql("DROP TABLE task_statuses")
    migrator.sql("DROP TABLE task_priorities")
