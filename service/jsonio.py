"""JSON for responses: orjson, so timestamps come out as ISO-8601 with their UTC offset (Flask's
default writes HTTP dates) and large task lists encode quickly."""
import orjson
from flask import Response
from flask.json.provider import DefaultJSONProvider

_OPTIONS = orjson.OPT_NON_STR_KEYS


def json_response(body, status=200, headers=None, mimetype="application/json"):
    """`body` as a JSON response. The hot routes build their responses with this rather than
    returning `(dict, status, headers)`: Flask's unpacking of such a tuple costs as much as the
    encoding itself."""
    return Response(orjson.dumps(body, option=_OPTIONS), status, headers, mimetype=mimetype)


def json_array(texts):
    """JSON texts (built by PostgreSQL) as one array, embedded in a body as it is (no re-parsing)."""
    return orjson.Fragment("[" + ",".join(texts) + "]")


class OrjsonProvider(DefaultJSONProvider):
    """Flask's JSON provider, encoding with orjson (for views that return a dict)."""

    def dumps(self, obj, **kwargs):
        return orjson.dumps(obj, option=_OPTIONS).decode()

    def response(self, *args, **kwargs):
        return json_response(self._prepare_response_obj(args, kwargs), mimetype=self.mimetype)
