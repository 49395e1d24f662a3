"""The fields of a task and of a user, each defined once.

A `Field` says what a client may send and what the service shows: its JSON name, type, whether
it is required or nullable, trimming, lengths, pattern, vocabulary, aliases. This one table
drives the body validation (validation.py), the OpenAPI component schemas (openapi/schemas.py),
the import checks (ops/import_file.py), the task JSON that PostgreSQL builds (store/task_sql.py)
and the Peewee columns (db/models.py). Adding a task field is one entry in TASK plus its
migration. What a Field can say, and the limits, are in field_types.py.

A small table of our own rather than pydantic: the service needs the same rules three ways
(request bodies with aliases and folding, JSON Schema, exact import checks), and a body is
parsed in a few microseconds by a dict lookup per key, inside the request budget.
"""
from . import recurrence
from .field_types import (  # noqa: F401 - the limits and rules, re-exported with the tables
    CATEGORY_MAX,
    COLOR_RE,
    DESCRIPTION_MAX,
    EMAIL_MAX,
    EMAIL_RE,
    MAX_OFFSET,
    MAX_TAGS_PER_TASK,
    MAX_TAGS_PER_USER,
    MAX_TASK_ID,
    MAX_VERSION,
    MISSING,
    NAME_MAX,
    SEARCH_MAX,
    TAG_NAME_MAX,
    TITLE_MAX,
    USER_ID_MAX,
    Field,
    FieldError,
    camel,
    parse_instant,
    valid_email,
)


def _trimmed_text(name, max_length, **rules):
    return Field(name, "string", trim=True, min_length=1, max_length=max_length, **rules)


# A task's tags as its JSON shows them: ordered by name ignoring case, then id.
TAGS_SQL = ("(SELECT coalesce(json_agg(row_to_json(tag) ORDER BY lower(tag.name), tag.id), '[]'::json) "
            "FROM task_tags link JOIN tags tag ON tag.id = link.tag_id WHERE link.task_id = {t}.id)")

TASK = (
    Field("id", "integer", "The task's id: sequential, never reused.", writable=False, example=7),
    Field("user_id", "string", "The owner (the token's `sub`).", writable=False, min_length=1,
          max_length=USER_ID_MAX),
    _trimmed_text("title", TITLE_MAX, required=True, example="Buy milk",
                  description=f"Trimmed, then 1..{TITLE_MAX} characters (no NUL)."),
    Field("description", "string", f"Up to {DESCRIPTION_MAX} characters (no NUL), or null.",
          nullable=True, max_length=DESCRIPTION_MAX, example="Semi-skimmed, 2 litres"),
    Field("completed", "boolean", "True exactly when `status` is the last state: completing moves the "
          "task there, un-completing to the first state.", default=False, aliases=("is_completed",)),
    Field("is_completed", "boolean", "The same as `completed` (for clients that read this name).",
          writable=False, stored=False, sql="{t}.completed"),
    Field("priority", "choice", "Importance; sorting by priority follows the vocabulary's order.",
          vocabulary="priority"),
    Field("status", "choice", "The workflow state (a board column); the last one means done.",
          vocabulary="status"),
    Field("completed_at", "instant", "When the task last became completed (set by the database); null "
          "while it is not.", nullable=True, writable=False),
    _trimmed_text("category", CATEGORY_MAX, nullable=True, blank_is_null=True, example="work",
                  description=f"One free label (work, personal, ...): trimmed, 1..{CATEGORY_MAX} "
                              "characters; blank or null clears it."),
    Field("tags", "names", "The task's tags, ordered by name ignoring case, then id. In a body: tag "
          "names (matched ignoring case; a missing tag is created), replacing the task's tags.",
          stored=False, sql=TAGS_SQL, max_items=MAX_TAGS_PER_TASK, example=("errands",)),
    Field("tag_ids", "ids", "In a body: the ids of the caller's tags, replacing the task's tags.",
          in_json=False, stored=False, max_items=MAX_TAGS_PER_TASK, example=(3,)),
    Field("due_date", "instant", "ISO-8601. A date alone (2026-12-01) means midnight UTC; a date-time "
          "without an offset is taken as UTC; null clears it.", nullable=True, example="2026-12-01T09:00:00Z"),
    Field("remind_at", "instant", "When to remind (GET /api/reminders lists the due ones); null: never. "
          "Set it again to snooze, or null to clear.", nullable=True, example="2026-12-01T08:30:00Z"),
    Field("recurrence", "string", "An iCalendar RRULE (RFC 5545) with FREQ (DAILY, WEEKLY, MONTHLY, YEARLY), "
          "INTERVAL, BYDAY, BYMONTHDAY, BYMONTH, COUNT, UNTIL; or null. Needs a due_date; completing the "
          "task creates its next occurrence. Returned as given.", nullable=True, trim=True,
          max_length=recurrence.MAX_LENGTH, check="rrule", example="FREQ=WEEKLY;BYDAY=MO,WE"),
    Field("version", "integer", "Starts at 1, +1 on every change; the task's ETag.", writable=False,
          in_json=False, default=1),
    Field("created_at", "instant", "Set by the database.", writable=False),
    Field("updated_at", "instant", "Set by the database on every change.", writable=False),
)

TAG = (
    Field("id", "integer", "The tag's id.", writable=False, example=3),
    Field("user_id", "string", "The owner (the token's `sub`).", writable=False, min_length=1,
          max_length=USER_ID_MAX),
    _trimmed_text("name", TAG_NAME_MAX, required=True, example="errands",
                  description=f"Trimmed, 1..{TAG_NAME_MAX} characters, unique per user ignoring case."),
    Field("color", "string", "`#RRGGBB`, or null.", nullable=True, max_length=7,
          pattern=(COLOR_RE, "a colour as #RRGGBB"), example="#FF8800"),
    Field("created_at", "instant", "Set by the database.", writable=False),
    Field("updated_at", "instant", "Set by the database on every change.", writable=False),
)

USER = (
    Field("id", "string", "The identity provider's user id (the token's `sub`).", writable=False,
          min_length=1, max_length=USER_ID_MAX, required=True),
    Field("email", "string", "A valid address, unique across users (case-insensitively; 409 on a "
          "clash); blank or null clears it.", nullable=True, trim=True, max_length=EMAIL_MAX,
          email=True, blank_is_null=True, example="ada@example.com"),
    _trimmed_text("name", NAME_MAX, nullable=True, blank_is_null=True, example="Ada Lovelace",
                  description=f"Trimmed, up to {NAME_MAX} characters; blank or null clears it."),
    Field("timezone", "string", "An IANA time zone name (default UTC): the user's days, for date filters, "
          "recurrences and statistics.", trim=True, max_length=64, check="time_zone", default="UTC",
          example="Europe/Berlin"),
    Field("created_at", "instant", "Set by the database.", writable=False),
    Field("updated_at", "instant", "Set by the database on every change.", writable=False),
)


def by_name(fields):
    """{name: Field} of a table."""
    return {field.name: field for field in fields}


def writable(fields, only=None):
    """The fields a body may set (limited to the names in `only`, when given)."""
    return tuple(f for f in fields if f.writable and (only is None or f.name in only))


# Which fields each kind of body sets (beyond the create and update of a whole task).
COMPLETION_FIELDS = frozenset({"completed"})  # PATCH /tasks/{id}/complete
STATUS_FIELDS = frozenset({"status"})  # PATCH /tasks/{id}/status
TAGGING_FIELDS = frozenset({"tags", "tag_ids"})  # PUT /tasks/{id}/tags
PROFILE_SYNC_FIELDS = frozenset({"name"})  # POST /api/users: the email always comes from the token
PROFILE_EDIT_FIELDS = frozenset({"name", "email", "timezone"})  # PATCH /api/users/me
