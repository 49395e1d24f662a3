"""The fields of a task and of a user, each defined once.

A `Field` says what a client may send and what the service shows: its JSON name, type, whether
it is required or nullable, trimming, lengths, pattern, vocabulary, aliases. This one table
drives the body validation (validation.py), the OpenAPI component schemas (openapi/schemas.py),
the import checks (ops/export_import.py), the task JSON that PostgreSQL builds (store/tasks.py)
and the Peewee columns (db/models.py). Adding a task field is one entry in TASK plus its
migration.

A small table of our own rather than pydantic: the service needs the same rules three ways
(request bodies with aliases and folding, JSON Schema, exact import checks), and a body is
parsed in a few microseconds by a dict lookup per key, inside the request budget.
"""
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from . import recurrence

# The limits, each defined once.
TITLE_MAX = 200
DESCRIPTION_MAX = 1000
NAME_MAX = 255
EMAIL_MAX = 254
USER_ID_MAX = 255
MAX_TASK_ID = 2**63 - 1  # tasks.id is a bigint
MAX_VERSION = 2**31 - 1  # tasks.version is an integer
MAX_OFFSET = 10_000_000
SEARCH_MAX = 200
TAG_NAME_MAX = 50
CATEGORY_MAX = 50
MAX_TAGS_PER_TASK = 20
MAX_TAGS_PER_USER = 500
COLOR_RE = re.compile(r"^#[0-9A-Fa-f]{6}\Z")

# An address as RFC 5321 spells it (ASCII dot-atom local part of at most 64, hostname labels;
# what JSON Schema's "email" format accepts): no control characters, no trailing newline.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"(?![A-Za-z0-9]{2}--)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_RE = re.compile(rf"^(?=[^@]{{1,64}}@){_ATEXT}+(?:\.{_ATEXT}+)*@{_LABEL}(?:\.{_LABEL})+\Z")

MISSING = object()


class FieldError(ValueError):
    """A value a field refuses; the message says why, for the client."""


def camel(name):
    """`due_date` as camelCase: `dueDate` (what frontends written for other backends send)."""
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def valid_email(value):
    """`value` when it is a plausible email address, else None (claims from tokens)."""
    if isinstance(value, str) and len(value) <= EMAIL_MAX and "\x00" not in value and EMAIL_RE.match(value):
        return value
    return None


def parse_instant(value):
    """An ISO-8601 date or date-time as an aware UTC datetime; naive values are taken as UTC."""
    if not isinstance(value, str) or "\x00" in value:
        raise ValueError("not a string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if len(text) == 10:
        parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
    else:
        parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        # In UTC: PostgreSQL refuses offsets beyond 15:59 that ISO-8601 allows (up to 23:59).
        utc = parsed.astimezone(UTC)
    except OverflowError:  # an offset pushing year 1 or 9999 past the calendar's ends
        raise ValueError("out of range") from None
    if not 1 <= utc.year <= 9999:
        raise ValueError("out of range")
    return utc


def _text(value, *, trim, min_length, max_length):
    if not isinstance(value, str):
        raise FieldError("must be a string")
    if "\x00" in value:
        raise FieldError("must not contain NUL characters")
    if not value.isascii():
        try:  # JSON can spell lone surrogates (\ud800), which UTF-8 and PostgreSQL cannot hold
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise FieldError("must not contain lone surrogates") from None
    if trim:
        value = value.strip()
    if len(value) < min_length:
        raise FieldError("must not be empty" if min_length == 1 else f"must be at least {min_length} characters")
    if max_length is not None and len(value) > max_length:
        raise FieldError(f"must be at most {max_length} characters")
    return value


@dataclass(frozen=True)
class Field:
    """One field of a resource: its rules, for input, output and storage.

    type: "string", "boolean", "instant" (timestamptz), "integer", "choice" (a value of the
    vocabulary named by `vocabulary`, see vocabularies.py), "names" (a list of tag names) or
    "ids" (a list of ids).
    writable: accepted in request bodies. in_json: shown in the resource's JSON. stored: a column
    of the resource's table (exported and imported). blank_is_null: "" (after trimming) means null.
    sql: for a shown field that is not a column, the SQL giving it ({t}: the row's table).
    pattern: a regular expression the (trimmed) string must match, and what it means.
    """

    name: str
    type: str
    description: str = ""
    required: bool = False
    nullable: bool = False
    writable: bool = True
    in_json: bool = True
    stored: bool = True
    trim: bool = False
    min_length: int = 0
    max_length: int | None = None
    email: bool = False
    blank_is_null: bool = False
    vocabulary: str | None = None
    default: object = MISSING
    aliases: tuple = ()
    example: object = MISSING
    sql: str | None = None
    pattern: tuple | None = None  # (compiled regex, what it means)
    max_items: int | None = None
    check: str | None = None  # a further rule of its own: "time_zone" or "rrule" (recurrence.py)

    def parse(self, value, vocabularies=None):
        """The client's `value` as the service stores it, or FieldError."""
        if value is None:
            if self.nullable:
                return None
            raise FieldError("must not be null")
        if self.type == "string":
            text = _text(value, trim=self.trim, min_length=0 if self.blank_is_null else self.min_length,
                         max_length=self.max_length)
            if self.blank_is_null and not text:
                return None
            if self.email and not EMAIL_RE.match(text):
                raise FieldError("must be a valid email address")
            if self.pattern and not self.pattern[0].match(text):
                raise FieldError(f"must be {self.pattern[1]}")
            return self._checked(text)
        if self.type == "boolean":
            if not isinstance(value, bool):
                raise FieldError("must be true or false")
            return value
        if self.type == "instant":
            try:
                return parse_instant(value)
            except (TypeError, ValueError):
                raise FieldError("must be an ISO-8601 date-time (e.g. 2026-12-01T09:00:00Z) or null") from None
        if self.type == "choice":
            return vocabularies[self.vocabulary].parse(value)
        if self.type in ("names", "ids"):
            return self._parse_list(value)
        raise TypeError(f"{self.name} is not writable")  # pragma: no cover - integers are read-only

    def _checked(self, text):
        if self.check is None:
            return text
        try:
            return CHECKS[self.check](text)
        except ValueError as error:
            raise FieldError(str(error)) from None

    def _parse_list(self, value):
        """A list of tag names (trimmed, distinct ignoring case) or of ids (distinct)."""
        if not isinstance(value, list):
            raise FieldError("must be a list")
        items, seen = [], set()
        for item in value:
            if self.type == "ids":
                if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= MAX_TASK_ID:
                    raise FieldError("must hold whole numbers >= 1 (tag ids)")
                key = item
            else:
                try:
                    item = _text(item, trim=True, min_length=1, max_length=TAG_NAME_MAX)
                except FieldError as error:
                    raise FieldError(f"must hold tag names: each {error}") from None
                key = item.lower()
            if key not in seen:
                seen.add(key)
                items.append(item)
        if self.max_items is not None and len(items) > self.max_items:
            raise FieldError(f"must hold at most {self.max_items} distinct tags")
        return items

    def check_stored(self, value, vocabularies=None):
        """`value` (not None) from an export file, exactly as stored (nothing is trimmed or folded),
        else FieldError."""
        if self.type == "string":
            text = _text(value, trim=False, min_length=self.min_length, max_length=self.max_length)
            if self.trim and text != text.strip():
                raise FieldError("must not start or end with whitespace")
            if self.pattern and not self.pattern[0].match(text):
                raise FieldError(f"must be {self.pattern[1]}")
            return self._checked(text)
        if self.type == "boolean":
            if not isinstance(value, bool):
                raise FieldError("must be true or false")
            return value
        if self.type == "instant":
            parsed = None
            try:
                parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
            except ValueError:
                pass
            if parsed is None or parsed.tzinfo is None:
                raise FieldError("must be an ISO-8601 timestamp with a UTC offset")
            return value  # PostgreSQL parses the original text: no precision lost on the way
        if self.type == "integer":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise FieldError("must be a whole number >= 1")
            return value
        if self.type == "choice":
            if value not in vocabularies[self.vocabulary].values:
                raise FieldError("must be one of " + ", ".join(vocabularies[self.vocabulary].values))
            return value
        raise TypeError(self.type)  # pragma: no cover


CHECKS = {"time_zone": recurrence.time_zone, "rrule": recurrence.validate}


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
