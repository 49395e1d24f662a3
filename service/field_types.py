"""What a field is (`Field`) and the rules its values follow: the limits, the text, instant,
email and list checks, each written once. The fields themselves, the tables of a task, a tag and
a user, are in fields.py."""
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


@dataclass(frozen=True, eq=False)  # compared and hashed as itself: a hash of every rule, per request, costs
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
