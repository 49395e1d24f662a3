"""The tables, as Peewee models. Their API columns come from service/fields.py (one definition
per field); the keys and the columns only the database writes are declared here.

The schema itself (constraints, defaults, triggers, indexes, row-level security) is created by
the migrations in `migrations/`; these models describe it for queries. Every task query of the
service goes through the task store (service/store/tasks.py), which scopes it to its owner.
"""
from peewee import (
    BigAutoField,
    BigIntegerField,
    BooleanField,
    CompositeKey,
    ForeignKeyField,
    IntegerField,
    Model,
    SmallIntegerField,
    TextField,
)
from playhouse.postgres_ext import DateTimeTZField

from .. import fields
from .pool import database

_COLUMN_TYPES = {"string": TextField, "boolean": BooleanField, "instant": DateTimeTZField,
                 "integer": IntegerField, "choice": TextField}


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


def _add_columns(model, table, declared):
    """Give `model` a column for every stored field of `table` not declared by hand."""
    for field in table:
        if field.stored and field.name not in declared:
            column = _COLUMN_TYPES[field.type](null=field.nullable)
            model._meta.add_field(field.name, column)  # noqa: SLF001 - Peewee's documented way


class User(BaseModel):
    id = TextField(primary_key=True)

    class Meta:
        table_name = "users"


_add_columns(User, fields.USER, {"id"})


class Task(BaseModel):
    id = BigAutoField()
    user = ForeignKeyField(User, column_name="user_id", backref="tasks", on_delete="CASCADE")
    # The priority's rank in its vocabulary, kept by a trigger (migration 005), so sorting by
    # importance reads an index; never written by the service.
    priority_order = SmallIntegerField(null=True)

    class Meta:
        table_name = "tasks"


_add_columns(Task, fields.TASK, {"id", "user_id"})


class Tag(BaseModel):
    id = BigAutoField()
    user = ForeignKeyField(User, column_name="user_id", on_delete="CASCADE")

    class Meta:
        table_name = "tags"


_add_columns(Tag, fields.TAG, {"id", "user_id"})


class TaskTag(BaseModel):
    """A task carrying a tag; both foreign keys include the user id, so the two are the same user's."""

    user = ForeignKeyField(User, column_name="user_id")
    task = BigIntegerField(column_name="task_id")
    tag = BigIntegerField(column_name="tag_id")

    class Meta:
        table_name = "task_tags"
        primary_key = CompositeKey("task", "tag")


class TaskTally(BaseModel):
    """How many tasks a user has per (priority, status, category), kept by triggers (migration 007)."""

    user = ForeignKeyField(User, column_name="user_id")
    priority = TextField()
    status = TextField()
    category = TextField()  # '' for tasks without one
    n = IntegerField()

    class Meta:
        table_name = "task_tallies"
        primary_key = CompositeKey("user", "priority", "status", "category")


class IdempotencyKey(BaseModel):
    """The first answer to a create sent with an `Idempotency-Key`, replayed for 24 hours."""

    user = ForeignKeyField(User, column_name="user_id", on_delete="CASCADE")
    key = TextField()
    request_hash = TextField()
    status = SmallIntegerField(null=True)
    body = TextField(null=True)
    location = TextField(null=True)
    etag = TextField(null=True)
    created_at = DateTimeTZField()

    class Meta:
        table_name = "idempotency_keys"
        primary_key = CompositeKey("user", "key")
