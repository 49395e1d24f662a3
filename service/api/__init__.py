"""The authenticated API under /api: one blueprint per resource, all behind the identity hook.

A route is found by its URL's first word: /api/tasks (and /api/{user_id}/tasks) in tasks.py,
/api/tags (and /api/{user_id}/tags) in tags.py, /api/reminders in reminders.py, /api/stats and
/api/statistics in stats.py, /api/users (and /api/{user_id}/profile) in users.py. The whole API
is served twice, under /api and under /api/v1 (for frontends written against a versioned
backend): the same blueprint registered under two names (PREFIXES), so both run the same
identity hook and teardown.

A user id in a Phase II path never takes the place of a route word (ROUTE_WORDS): /api/v1/tasks
is the v1 family's own list, /api/users/tasks the users route; a user whose id is such a word
uses the /api/tasks family, where the user comes from the token.
"""
import re

from flask import Blueprint
from werkzeug.routing import BaseConverter

from . import identity, reminders, stats, tags, tasks, users

# The blueprint's registration name -> its URL prefix.
PREFIXES = {"api": "/api", "api_v1": "/api/v1"}

# Every first word of a route under /api (and /api/v1), present or reserved for the routes the
# contract names: tests/test_route_words.py checks that each registered route's is here.
ROUTE_WORDS = frozenset({"v1", "tasks", "users", "tags", "stats", "statistics", "reminders",
                         "profile", "docs", "openapi.json"})


class PathUserConverter(BaseConverter):
    """`<user:...>`: the user id of a Phase II path: one path segment, but not a route word."""

    regex = "(?!(?:{})\\Z)[^/]+".format("|".join(re.escape(word) for word in sorted(ROUTE_WORDS)))
    part_isolating = True  # matched against one segment (werkzeug guesses not: the regex has a /)


# The prefix of every Phase II route (/api/{user_id}/...); the identity hook checks it.
USER_PREFIX = "/<user:path_user_id>"


def blueprint():
    """The /api blueprint with its resources, the identity hook and the connection's release."""
    api = Blueprint("api", __name__, url_prefix=PREFIXES["api"])
    # Before the nested blueprints' rules are added, which use it.
    api.record_once(lambda state: state.app.url_map.converters.setdefault("user", PathUserConverter))
    api.before_request(identity.identify)
    api.teardown_request(identity.release)
    api.register_blueprint(tasks.bp, url_prefix="/tasks")
    api.register_blueprint(tasks.bp, url_prefix=f"{USER_PREFIX}/tasks", name="user_tasks")
    api.register_blueprint(tags.bp, url_prefix="/tags")
    api.register_blueprint(tags.bp, url_prefix=f"{USER_PREFIX}/tags", name="user_tags")
    api.register_blueprint(reminders.bp, url_prefix="/reminders")
    api.register_blueprint(reminders.bp, url_prefix=f"{USER_PREFIX}/reminders", name="user_reminders")
    for prefix, name in (("/stats", "stats"), ("/statistics", "statistics"), (f"{USER_PREFIX}/stats", "user_stats"),
                         (f"{USER_PREFIX}/statistics", "user_statistics")):
        api.register_blueprint(stats.bp, url_prefix=prefix, name=name)
    api.register_blueprint(users.bp, url_prefix="/users")
    api.register_blueprint(users.profile, url_prefix=f"{USER_PREFIX}/profile")
    return api


def register(app):
    """Serve the API under each of PREFIXES."""
    api = blueprint()
    for name, prefix in PREFIXES.items():
        app.register_blueprint(api, name=name, url_prefix=prefix)
