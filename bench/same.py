"""Comparing the service's answers with the reference's: the same members and values, except
that a timestamp may be printed with more or fewer fractional digits (PostgreSQL's JSON drops
trailing zeros, orjson prints six), also inside a list's opaque cursor."""
import base64
import json
import re
from datetime import datetime

TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?([+-]\d\d:\d\d|Z)$")


def _cursor(text):
    try:
        decoded = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        return text
    return {"cursor": normalise(decoded)}


def normalise(value, key=None):
    """`value` (decoded JSON) with every timestamp spelled one way and cursors decoded."""
    if isinstance(value, dict):
        return {k: normalise(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(item) for item in value]
    if isinstance(value, str):
        if key == "next_cursor":
            return _cursor(value)
        if TIMESTAMP_RE.match(value):
            return datetime.fromisoformat(value).isoformat(timespec="microseconds")
    return value


def difference(a, b, path="$"):
    """Where two normalised JSON values first differ (a path and both sides), or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}.{key}: only in {'the first' if key in a else 'the second'}"
            found = difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items against {len(b)}"
        for n, (x, y) in enumerate(zip(a, b, strict=True)):
            found = difference(x, y, f"{path}[{n}]")
            if found:
                return found
        return None
    if a != b or type(a) is not type(b) and not {type(a), type(b)} <= {int, float}:
        return f"{path}: {json.dumps(a)[:200]} against {json.dumps(b)[:200]}"
    return None
