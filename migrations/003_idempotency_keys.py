"""Idempotency keys: the first answer to a create, kept 24 hours per (user, key)."""


def migrate(migrator, database, *, fake=False):
    """Create idempotency_keys, scoped by row-level security like the other tables."""
    migrator.sql("""
CREATE TABLE idempotency_keys (
    user_id      text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key          text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    request_hash text NOT NULL,
    status       smallint,
    body         text,
    location     text,
    etag         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
)""")
    migrator.sql("CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at)")
    admits = "user_id = NULLIF(current_setting('app.user_id', true), '') OR rls_bypassed()"
    migrator.sql("ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY")
    migrator.sql("ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY")
    migrator.sql(f"CREATE POLICY idempotency_keys_owner ON idempotency_keys "
                 f"USING ({admits}) WITH CHECK ({admits})")


def rollback(migrator, database, *, fake=False):
    """Drop idempotency_keys (its policy and index go with it)."""
    migrator.sql("DROP TABLE idempotency_keys")
