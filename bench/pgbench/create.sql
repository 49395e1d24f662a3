-- The service's statement for this route, as psycopg2 sends it (parameters interpolated), scope
-- prefix included, in one simple-query message (\; joins them), run by the app role (RLS applies).
-- bench/load.py puts the seeded users' id prefix for @USER_PREFIX@; :n picks one of 1,000 users (ids
-- PREFIX-00001.., padded by lpad, which PostgreSQL folds to a constant when planning);
-- -D task_base, task_stride (user n's first task), heavy, cursor_at, cursor_id come from the harness.
\set n random(1, 1000)
SELECT set_config('app.user_id', ('@USER_PREFIX@' || lpad(':n', 5, '0')), true), set_config('app.bypass_rls', 'off', true), set_config('statement_timeout', '5000', true), set_config('TimeZone', 'UTC', true) \; INSERT INTO "tasks" ("user_id", "title", "completed", "priority", "version") VALUES (('@USER_PREFIX@' || lpad(':n', 5, '0')), 'benchmark task', false, 'medium', 1) RETURNING "tasks"."id", "tasks"."user_id", "tasks"."title", "tasks"."description", "tasks"."completed", "tasks"."priority", "tasks"."due_date", "tasks"."version", "tasks"."created_at", "tasks"."updated_at";
