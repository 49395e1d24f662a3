"""The OpenAPI component schemas, generated from the field table (service/fields.py), so a field's
rules are written once: what a client may send (Create/Update bodies) and what it gets back.

Strings are trimmed before their length is checked, and NUL is refused (PostgreSQL cannot store
it), so the exact input rule is a pattern: optional blanks, 1..N characters that neither start
nor end with a blank, optional blanks. "Blank" is spelled out as Python's str.strip() sees it,
because `\\s` differs between regex engines (ECMA-262's lacks U+0085, U+001C..U+001F; adds U+FEFF).
"""
import json

from .. import fields as F

BLANK = (r"\t-\r\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f"
         r"\u3000")
SOLID = rf"[^{BLANK}\u0000]"  # neither blank nor NUL
NO_NUL = r"^[^\u0000]*$"
# fields.EMAIL_RE (RFC 5321 dot-atom @ hostname) on the trimmed value, kept a little stricter and
# free of look-arounds so generators handle it: local part at most 64, no hyphens in labels.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9]{1,40}"
EMAIL_OR_BLANK = (rf"^[{BLANK}]*(?:{_ATOM}{{1,32}}(?:\.{_ATOM}{{1,31}})?@{_LABEL}(?:\.{_LABEL}){{1,2}})?"
                  rf"[{BLANK}]*$")
TIMESTAMP = {"type": "string", "format": "date-time"}


def trimmed(max_length, optional=False):
    """The pattern of a string that, trimmed, has 1..max_length characters (0.. if optional)."""
    core = rf"{SOLID}(?:[^\u0000]{{0,{max_length - 2}}}{SOLID})?"
    return rf"^[{BLANK}]*(?:{core})?[{BLANK}]*$" if optional else rf"^[{BLANK}]*{core}[{BLANK}]*$"


def _typed(base, nullable):
    return [base, "null"] if nullable else base


def output_schema(field, vocabularies):
    """The JSON Schema of `field` as the service shows it."""
    if field.type == "names":  # a task's tags: the Tag resource
        return {"type": "array", "items": {"$ref": "#/components/schemas/Tag"}, "description": field.description}
    schema = {"type": _typed({"string": "string", "boolean": "boolean", "integer": "integer",
                              "instant": "string", "choice": "string"}[field.type], field.nullable)}
    if field.type == "string":
        if field.min_length:
            schema["minLength"] = field.min_length
        if field.max_length:
            schema["maxLength"] = field.max_length
        if field.email:
            schema["format"] = "email"  # fields.EMAIL_RE admits only what this format does
        if field.pattern:
            schema["pattern"] = field.pattern[0].pattern.replace("\\Z", "$")
    elif field.type == "integer":
        schema.update({"format": "int64", "minimum": 1})
    elif field.type == "instant":
        schema.update(TIMESTAMP)
        schema["type"] = _typed("string", field.nullable)
        schema["description"] = "ISO-8601 with an explicit UTC offset, e.g. 2026-12-01T09:00:00+00:00."
    elif field.type == "choice":
        schema["enum"] = list(vocabularies[field.vocabulary].values)
    if field.description and "description" not in schema:
        schema["description"] = field.description
    if field.example is not F.MISSING:
        schema["examples"] = [field.example]
    return schema


def input_schema(field, vocabularies, creating=False):
    """The JSON Schema of `field` as a request body may give it (`creating`: a body that creates,
    where an absent field takes its default; elsewhere an absent field is left as it is)."""
    if field.type in ("names", "ids"):
        item = ({"type": "string", "pattern": trimmed(F.TAG_NAME_MAX)} if field.type == "names"
                else {"type": "integer", "format": "int64", "minimum": 1, "maximum": F.MAX_TASK_ID})
        schema = {"type": "array", "items": item, "maxItems": field.max_items, "description": field.description}
        if field.example is not F.MISSING:
            schema["examples"] = [list(field.example)]
        return schema
    schema = {"type": output_schema(field, vocabularies)["type"], "description": field.description}
    if field.type == "string":
        if field.pattern:
            schema["pattern"] = field.pattern[0].pattern.replace("\\Z", "$")
        elif field.email:
            schema["pattern"] = EMAIL_OR_BLANK
        elif field.trim:
            schema["pattern"] = trimmed(field.max_length, optional=field.blank_is_null)
            if not field.blank_is_null:
                schema.update({"minLength": 1, "maxLength": field.max_length})
                schema["description"] += (" Blanks around it are not counted (the service accepts "
                                          "them beyond maxLength too).")
        else:
            schema.update({"maxLength": field.max_length, "pattern": NO_NUL})
    elif field.type == "instant":
        schema["format"] = "date-time"
    elif field.type == "choice":
        vocabulary = vocabularies[field.vocabulary]
        schema["enum"] = list(vocabulary.values)
        schema["description"] += " Matched ignoring case, with `-`, `_` and space alike."
    default = field.default
    if default is F.MISSING and field.type == "choice":
        default = vocabularies[field.vocabulary].default
    if creating and default is not F.MISSING:
        # In words, not as `default`: openapi-typescript types a property that has a `default`
        # as always present, which would make it required in a frontend's request type.
        shown = default if isinstance(default, str) else json.dumps(default)
        schema["description"] += f" Default: `{shown}`."
    if field.example is not F.MISSING:
        schema["examples"] = [field.example]
    return schema


def resource(table, vocabularies):
    """The schema of a resource's JSON: every field it shows, all required."""
    shown = [field for field in table if field.in_json]
    return {"type": "object", "required": [field.name for field in shown],
            "properties": {field.name: output_schema(field, vocabularies) for field in shown}}


def body(table, vocabularies, *, only=None, required=(), at_least_one=False, description="",
         creating=False):
    """The schema of a request body setting the writable fields of `table` (or those in `only`)."""
    writable = F.writable(table, only)
    schema = {"type": "object",
              "properties": {field.name: input_schema(field, vocabularies, creating)
                             for field in writable}}
    if required:
        schema["required"] = list(required)
    if at_least_one:
        schema["anyOf"] = [{"required": [field.name]} for field in writable]
    if {"tags", "tag_ids"} <= {field.name for field in writable}:
        schema["not"] = {"required": ["tags", "tag_ids"]}  # one way to name the tags, not both
    if description:
        schema["description"] = description
    return schema


def field_schemas(vocabularies):
    """The components generated from the field table."""
    ignored = " Other keys (even `id`, `user_id`) are ignored: the owner is always the caller."
    return {
        "Task": resource(F.TASK, vocabularies),
        "TaskCreate": body(F.TASK, vocabularies, required=[f.name for f in F.TASK if f.required and f.writable],
                           description="A new task." + ignored, creating=True),
        "TaskUpdate": body(F.TASK, vocabularies, at_least_one=True,
                           description="A partial update: only the given fields change; at least one "
                                       "is required (422 otherwise)." + ignored),
        "TaskCompletion": body(F.TASK, vocabularies, only=F.COMPLETION_FIELDS,
                               description="`completed` sets the flag; without it (or with no body at "
                                           "all) the flag is toggled."),
        "TaskStatus": body(F.TASK, vocabularies, only=F.STATUS_FIELDS, required=["status"],
                           description="The new workflow state; `completed` follows (the last state is done)."),
        "TaskTags": body(F.TASK, vocabularies, only=F.TAGGING_FIELDS, at_least_one=True,
                         description="`tag_ids` (the caller's tags) or `tags` (names, matched ignoring case; "
                                     "missing ones are created), not both: they replace the task's tags."),
        "Tag": resource(F.TAG, vocabularies),
        "TagCreate": body(F.TAG, vocabularies, required=["name"], description="A new tag."),
        "TagUpdate": body(F.TAG, vocabularies, at_least_one=True, description="Rename or recolour a tag."),
        "User": resource(F.USER, vocabularies),
        "UserCreate": body(F.USER, vocabularies, only=F.PROFILE_SYNC_FIELDS,
                           description="Optional. The email always comes from the token; other keys "
                                       "are ignored."),
        "UserUpdate": body(F.USER, vocabularies, only=F.PROFILE_EDIT_FIELDS, at_least_one=True,
                           description="At least one field (422 otherwise). Other keys are ignored."),
    }
