"""The OpenAPI 3.1 description of the service (filled in by the API issue)."""


def spec():
    """The OpenAPI document."""
    return {"openapi": "3.1.0", "info": {"title": "Todo service", "version": "1.0.0"}, "paths": {}}
