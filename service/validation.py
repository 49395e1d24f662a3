"""Request bodies to typed values, or a 400/413/415/422 problem. Views never see raw input.

A body is read against a table of fields (service/fields.py): each key the table knows, under
its name or an alias, is parsed by its field; unknown keys are ignored (a client may send `id`
or `user_id`; the owner always comes from the token). Two spellings of one field that disagree
once parsed are a 422.
"""
import functools
import json

from flask import request

from . import fields as F
from .errors import ApiError, ValidationError

MAX_JSON_DEPTH = 32


def json_body(required=True):
    """The request's JSON object; 415 when not JSON, 400 when malformed, 422 when not an object."""
    raw = request.get_data(cache=True)  # werkzeug enforces MAX_CONTENT_LENGTH (413) while reading
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit:
        # A body without Content-Length (chunked) is cut at the limit by werkzeug, silently;
        # a cut body is one over the limit, not malformed JSON.
        raise ApiError(413, f"The body is larger than {limit} bytes.")
    if not raw.strip():
        if required:
            raise ApiError(400, "A JSON body is required.")
        return {}
    if not request.is_json:
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


@functools.cache
def spellings(table, only=None):
    """{spelling: field} for the writable fields of `table`: names and aliases, each also in
    camelCase (`dueDate`, `isCompleted`, `tagIds`), for frontends written for other backends."""
    found = {}
    for field in F.writable(table, only):
        for spelling in (field.name, *field.aliases):
            found[spelling] = found[F.camel(spelling)] = field
    return found


def parse_body(table, body, vocabularies, *, only=None, complete=False, nonempty=False):
    """The fields of `table` (limited to the names in `only`) present in `body`, parsed into
    {name: value}. `complete`: the required fields must be there (a create). `nonempty`: at least
    one field must be (an update)."""
    known = spellings(table, only)
    errors, values, spelled = [], {}, {}
    for key, raw in body.items():
        field = known.get(key)
        if field is None:
            continue
        try:
            value = field.parse(raw, vocabularies)
        except F.FieldError as error:
            errors.append({"field": key, "message": str(error)})
            spelled.setdefault(field.name, key)
            continue
        if field.name in values and values[field.name] != value:
            errors.append({"field": key, "message": f"disagrees with {spelled[field.name]}"})
            continue
        values[field.name] = value
        spelled[field.name] = key
    if complete:
        errors += [{"field": f.name, "message": "is required"}
                   for f in F.writable(table, only) if f.required and f.name not in spelled]
    if errors:
        raise ValidationError(errors)
    if nonempty and not values:
        names = ", ".join(f.name for f in F.writable(table, only))
        raise ValidationError([{"field": "body", "message": f"give at least one of {names}"}],
                              detail="Nothing to update.")
    return values


def task_body(body, vocabularies, *, creating, only=None):
    """The task fields of a create (title required) or update (at least one field) body. A
    `completed` that disagrees with the `status` beside it (done is the last state) is a 422."""
    values = parse_body(F.TASK, body, vocabularies, only=only, complete=creating, nonempty=not creating)
    if creating and values.get("recurrence") and not values.get("due_date"):
        raise ValidationError([{"field": "recurrence", "message": "needs a due_date (the first occurrence)"}])
    if "completed" in values and "status" in values and values["completed"] != (values["status"] == vocabularies.done):
        raise ValidationError([{"field": "completed", "message": f"disagrees with status {values['status']!r} "
                                f"(completed means {vocabularies.done!r})"}])
    return values


def tag_body(body, *, creating):
    """The fields of a tag body (name required on create)."""
    return parse_body(F.TAG, body, None, complete=creating, nonempty=not creating)


def completion_body(body, vocabularies):
    """`{"completed": bool}` sets the flag; without it the flag is toggled (None)."""
    return parse_body(F.TASK, body, vocabularies, only=F.COMPLETION_FIELDS).get("completed")


def user_body(body, *, only, nonempty=False):
    """The user fields of a body, limited to the names in `only`."""
    return parse_body(F.USER, body, None, only=only, nonempty=nonempty)
