"""Request input to typed values, or a 400/413/415/422 problem. Views never see raw input.

Unknown body keys are ignored (a client may send `id` or `user_id`; the owner always comes from
the token). Every string is checked for NUL, which PostgreSQL cannot store.
"""
import json
import re
from datetime import UTC, date, datetime

from flask import request

from .errors import ApiError, ValidationError, field_error
from .models import PRIORITIES

TITLE_MAX = 200
DESCRIPTION_MAX = 1000
NAME_MAX = 255
# An address as RFC 5321 spells it (ASCII dot-atom local part of at most 64, hostname labels;
# what JSON Schema's "email" format accepts): no control characters, no trailing newline.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"(?![A-Za-z0-9]{2}--)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_RE = re.compile(rf"^(?=[^@]{{1,64}}@){_ATEXT}+(?:\.{_ATEXT}+)*@{_LABEL}(?:\.{_LABEL})+\Z")
MAX_JSON_DEPTH = 32
TASK_FIELDS = ("title", "description", "completed", "priority", "due_date")


def json_body(required=True):
    """The request's JSON object; 415 when not JSON, 400 when malformed, 422 when not an object."""
    req = request._get_current_object()  # one context lookup, not one per attribute
    raw = req.get_data(cache=True)  # werkzeug enforces MAX_CONTENT_LENGTH (413) while reading
    limit = req.max_content_length
    if req.content_length is None and limit is not None and len(raw) >= limit:
        # A body without Content-Length (chunked) is cut at the limit by werkzeug, silently;
        # a cut body is one over the limit, not malformed JSON.
        raise ApiError(413, f"The body is larger than {limit} bytes.")
    if not raw.strip():
        if required:
            raise ApiError(400, "A JSON body is required.")
        return {}
    if not req.is_json:
        raise ApiError(415, "Send the body as application/json.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "The body is not valid UTF-8.") from None
    if _nests_too_deep(text):
        raise ApiError(400, f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.")
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise ApiError(400, f"Malformed JSON: {error.msg} at line {error.lineno} column {error.colno}.") from None
    except ValueError:  # a number longer than Python converts (int_max_str_digits): not a decode error
        raise ApiError(400, "Malformed JSON: a number has too many digits.") from None
    if not isinstance(body, dict):
        raise ValidationError([{"field": "body", "message": "must be a JSON object"}])
    return body


def _nests_too_deep(text):
    """True when the JSON text nests objects and arrays deeper than MAX_JSON_DEPTH. Checked
    before parsing so a hostile body cannot exhaust the parser's recursion."""
    if text.count("{") + text.count("[") <= MAX_JSON_DEPTH:
        return False  # the usual body: it cannot nest deeper than it opens (a C-speed count)
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest > MAX_JSON_DEPTH


def _string(body, field, errors, *, max_length, nullable, strip=False, min_length=0):
    value = body[field]
    if value is None:
        if not nullable:
            errors.append({"field": field, "message": "must not be null"})
        return None
    if not isinstance(value, str):
        errors.append({"field": field, "message": "must be a string"})
        return None
    if "\x00" in value:
        errors.append({"field": field, "message": "must not contain NUL characters"})
        return None
    if not value.isascii():
        try:  # JSON can spell lone surrogates (\ud800), which UTF-8 and PostgreSQL cannot hold
            value.encode("utf-8")
        except UnicodeEncodeError:
            errors.append({"field": field, "message": "must not contain lone surrogates"})
            return None
    if strip:
        value = value.strip()
    if len(value) < min_length:
        errors.append({"field": field, "message": "must not be empty" if min_length == 1
                       else f"must be at least {min_length} characters"})
    elif len(value) > max_length:
        errors.append({"field": field, "message": f"must be at most {max_length} characters"})
    return value


def parse_datetime(value):
    """An ISO-8601 date or date-time as an aware datetime; naive values are taken as UTC."""
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


def task_fields(body, *, creating):
    """The task fields present in `body`, validated; `title` is required when creating."""
    errors, fields = [], {}
    if creating and "title" not in body:
        errors.append({"field": "title", "message": "is required"})
    if "title" in body:
        fields["title"] = _string(body, "title", errors, max_length=TITLE_MAX, nullable=False,
                                  strip=True, min_length=1)
    if "description" in body:
        fields["description"] = _string(body, "description", errors,
                                        max_length=DESCRIPTION_MAX, nullable=True)
    if "completed" in body:
        if not isinstance(body["completed"], bool):
            errors.append({"field": "completed", "message": "must be true or false"})
        fields["completed"] = body["completed"]
    if "priority" in body:
        if body["priority"] not in PRIORITIES:
            errors.append({"field": "priority", "message": "must be one of low, medium, high"})
        fields["priority"] = body["priority"]
    if "due_date" in body:
        fields["due_date"] = None
        if body["due_date"] is not None:
            try:
                fields["due_date"] = parse_datetime(body["due_date"])
            except (TypeError, ValueError):
                errors.append({"field": "due_date",
                               "message": "must be an ISO-8601 date-time (e.g. 2026-12-01T09:00:00Z) or null"})
    if errors:
        raise ValidationError(errors)
    if not creating and not fields:
        raise ValidationError(
            [{"field": "body", "message": "give at least one of " + ", ".join(TASK_FIELDS)}],
            detail="Nothing to update.")
    return fields


def completed_toggle(body):
    """`{"completed": bool}` sets the flag; an empty body toggles it (None)."""
    if "completed" not in body:
        return None
    if not isinstance(body["completed"], bool):
        raise field_error("completed", "must be true or false")
    return body["completed"]


def user_fields(body, *, allow_email):
    """Validated `name` (and `email` when allowed) from a user body; unknown keys are ignored."""
    errors, fields = [], {}
    if "name" in body:
        name = _string(body, "name", errors, max_length=NAME_MAX, nullable=True, strip=True)
        fields["name"] = name or None
    if allow_email and "email" in body:
        email = _string(body, "email", errors, max_length=254, nullable=True, strip=True)
        if email and not EMAIL_RE.match(email):
            errors.append({"field": "email", "message": "must be a valid email address"})
        fields["email"] = email or None
    if errors:
        raise ValidationError(errors)
    return fields


def valid_email(value):
    """`value` when it is a plausible email address, else None (claims from tokens)."""
    if isinstance(value, str) and len(value) <= 254 and "\x00" not in value and EMAIL_RE.match(value):
        return value
    return None
