"""Helpers for the tests of contract section 6 (vocabularies, status, tags, category).

- `VocabularyDatabase`: a database of its own, migrated and with the vocabularies of a given
  configuration applied (as the release phase does), an app configured the same way on it, and a
  superuser connection for raw checks. Non-default vocabularies need their own database: the
  lookup tables hold one vocabulary at a time.
- `scoped`: a connection of the service's ordinary role with a user's row-level-security scope
  set, for raw SQL that the database alone must refuse.
"""
import contextlib
import uuid

import psycopg2

from service import create_app
from service.db import database
from tests.conftest import Caller, admin_connect, create_database, drop_database, make_config, migrate, role_url

FAMILIES = ["/api/tasks", "/api/{user}/tasks"]
TAG_FAMILIES = ["/api/tags", "/api/{user}/tags"]
CUSTOM = {"TASK_STATUSES": "backlog,in_progress,blocked,done",
          "TASK_PRIORITIES": "low,medium,high,critical"}
UPPER = {"TASK_STATUSES": "TO_DO,IN_PROGRESS,DONE", "TASK_PRIORITIES": "LOW,MEDIUM,HIGH,URGENT"}


class VocabularyDatabase:
    """A migrated database with `env`'s vocabularies applied, an app on it, a superuser
    connection (`admin`, autocommit) and the app role's URL (`url`)."""

    def __init__(self, admin_url, migrated_with=None, **env):
        self.admin_url = admin_url
        self.env = env
        self.name = create_database(admin_url, prefix="todo_org")
        self.url = role_url(admin_url, self.name)
        try:
            _router, db = migrate(self.url, make_config(**(env if migrated_with is None else migrated_with)))
            db.close_all()
            self.config = make_config(**env)
            previous = database.obj
            self.app = create_app(self.config, database_url=self.url)
            self.app.config["TESTING"] = True
            if previous is not None:  # the session's app keeps working (see servers.fresh_app)
                database.initialize(previous)
            self.admin = admin_connect(admin_url, self.name)
        except BaseException:
            drop_database(admin_url, self.name)
            raise

    @property
    def db(self):
        """The app's own pooled database object (the ordinary role)."""
        return self.app.extensions["database"]

    def caller(self, user_id=None):
        """A signed-in API user of this app."""
        return Caller(self.app.test_client(), user_id)

    def query(self, sql, params=None):
        """All rows of `sql` as the superuser (no row-level security)."""
        with self.admin.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None

    def close(self):
        self.admin.close()
        self.app.extensions["database"].close_all()
        drop_database(self.admin_url, self.name)


@contextlib.contextmanager
def vocabulary_database(admin_url, **env):
    """A VocabularyDatabase for the block."""
    made = VocabularyDatabase(admin_url, **env)
    try:
        yield made
    finally:
        made.close()


@contextlib.contextmanager
def scoped(url, user_id):
    """A cursor of the service's ordinary role inside one transaction whose row-level-security
    scope is `user_id`; rolled back at the end (raw SQL only)."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT set_config('app.user_id', %s, true)", (user_id,))
            yield cur
    finally:
        conn.rollback()
        conn.close()


def new_user(cur):
    """A user row with a fresh id (superuser or bypass connection); returns the id."""
    user_id = f"user-{uuid.uuid4().hex[:12]}"
    cur.execute("INSERT INTO users (id) VALUES (%s)", (user_id,))
    return user_id


def problem_fields(response):
    """The `field` of each error of a 422."""
    assert response.status_code == 422, (response.status_code, response.get_json())
    return [error["field"] for error in response.get_json()["errors"]]
