-- The service's statement for this route, as psycopg2 sends it (parameters interpolated), scope
-- prefix included, in one simple-query message (\; joins them), run by the app role (RLS applies).
-- bench/load.py puts the seeded users' id prefix for @USER_PREFIX@; :n picks one of 1,000 users (ids
-- PREFIX-00001.., padded by lpad, which PostgreSQL folds to a constant when planning);
-- -D task_base, task_stride (user n's first task), heavy, cursor_at, cursor_id come from the harness.
-- heavy user: -D heavy=<id>
SELECT set_config('app.user_id', ':heavy', true), set_config('app.bypass_rls', 'off', true), set_config('statement_timeout', '5000', true), set_config('TimeZone', 'UTC', true) \; SELECT "t1"."id", "t1"."user_id", "t1"."title", "t1"."description", "t1"."completed", "t1"."priority", "t1"."due_date", "t1"."version", "t1"."created_at", "t1"."updated_at", (SELECT COUNT("t1"."id") FROM "tasks" AS "t1" WHERE ("t1"."user_id" = ':heavy')) AS "total" FROM "tasks" AS "t1" WHERE ("t1"."user_id" = ':heavy') ORDER BY "t1"."created_at" DESC, "t1"."id" DESC LIMIT 21;
