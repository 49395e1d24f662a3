"""Flask CLI commands (`flask --app wsgi ...`): filled in by the operations issue."""


def register(app):
    """Add the service's commands to `app.cli`."""
