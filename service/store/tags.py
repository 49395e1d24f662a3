"""The tag store: a user's own labels (`/api/tags`). Names are unique per user ignoring case
(the database's unique index); PostgreSQL builds each tag's JSON (`row_to_json`)."""
from peewee import SQL, IntegrityError

from .. import fields
from ..db import database
from ..db.models import Tag
from ..errors import ApiError, ValidationError
from .tagging import constraint

ROW = Tag.alias("tag")  # reads use `tags AS tag`; writes return from `tags`
ROW_JSON = SQL("row_to_json(tag)::text")
WRITTEN_JSON = SQL("row_to_json(tags)::text")
CLASH = "tags_user_name_key"


def _not_found(tag_id):
    return ApiError(404, f"Tag {tag_id} not found.")


def _clash():
    return ApiError(409, "You have a tag of that name already (names ignore case).",
                    errors=[{"field": "name", "message": "is taken by another of your tags"}])


def _refused(error):
    name = constraint(error)
    if name == CLASH:
        return _clash()
    if name == "tags_per_user":
        return ValidationError([{"field": "name", "message": f"you have {fields.MAX_TAGS_PER_USER} tags already"}])
    return error


def all_of(user):
    """The user's tags as JSON texts, ordered by name ignoring case, then id."""
    return [json for (json,) in ROW.select(ROW_JSON).where(ROW.user == user)
            .order_by(SQL("lower(tag.name)"), ROW.id).tuples()]


def get(user, tag_id):
    """The user's tag `tag_id` as JSON text, or 404 (another user's is the same 404)."""
    found = (ROW.select(ROW_JSON).where(ROW.user == user, ROW.id == tag_id).tuples()
             if tag_id <= fields.MAX_TASK_ID else [])
    for (json,) in found:
        return json
    raise _not_found(tag_id)


def _written(query):
    # Inside a transaction (an Idempotency-Key's), a failed statement would abort it; a
    # savepoint keeps the failure to this one.
    try:
        if database.in_transaction():
            with database.savepoint():
                return list(query.returning(Tag.id, WRITTEN_JSON).tuples().execute())
        return list(query.returning(Tag.id, WRITTEN_JSON).tuples().execute())
    except IntegrityError as error:
        raise _refused(error) from None


def create(user, values):
    """A new tag: (id, JSON text); 409 when the name is taken (ignoring case)."""
    return _written(Tag.insert(user=user, **values))[0]


def update(user, tag_id, values):
    """Rename or recolour a tag: its JSON text; 409 on a clash, 404 when missing."""
    if tag_id > fields.MAX_TASK_ID:
        raise _not_found(tag_id)
    rows = _written(Tag.update(**values).where(Tag.user == user, Tag.id == tag_id))
    if not rows:
        raise _not_found(tag_id)
    return rows[0][1]


def delete(user, tag_id):
    """Delete a tag (it leaves every task); its id."""
    deleted = (Tag.delete().where(Tag.user == user, Tag.id == tag_id).execute()
               if tag_id <= fields.MAX_TASK_ID else 0)
    if not deleted:
        raise _not_found(tag_id)
    return tag_id
