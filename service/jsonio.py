"""JSON for responses: orjson, so timestamps come out as ISO-8601 with their UTC offset (Flask's
default writes HTTP dates) and large task lists encode quickly."""
import orjson
from flask.json.provider import DefaultJSONProvider


class OrjsonProvider(DefaultJSONProvider):
    """Flask's JSON provider, encoding with orjson."""

    def dumps(self, obj, **kwargs):
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()

    def response(self, *args, **kwargs):
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS),
                                        mimetype=self.mimetype)
