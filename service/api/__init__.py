"""The authenticated API under /api: one blueprint per resource, all behind the identity hook.

A route is found by its URL's first word: /api/tasks (and /api/{user_id}/tasks) in tasks.py,
/api/tags (and /api/{user_id}/tags) in tags.py, /api/reminders in reminders.py, /api/stats and
/api/statistics in stats.py, /api/users (and /api/{user_id}/profile) in users.py.
"""
from flask import Blueprint

from . import identity, reminders, stats, tags, tasks, users


def blueprint():
    """The /api blueprint with its resources, the identity hook and the connection's release."""
    api = Blueprint("api", __name__, url_prefix="/api")
    api.before_request(identity.identify)
    api.teardown_request(identity.release)
    api.register_blueprint(tasks.bp, url_prefix="/tasks")
    api.register_blueprint(tasks.bp, url_prefix="/<path_user_id>/tasks", name="user_tasks")
    api.register_blueprint(tags.bp, url_prefix="/tags")
    api.register_blueprint(tags.bp, url_prefix="/<path_user_id>/tags", name="user_tags")
    api.register_blueprint(reminders.bp, url_prefix="/reminders")
    api.register_blueprint(reminders.bp, url_prefix="/<path_user_id>/reminders", name="user_reminders")
    for prefix, name in (("/stats", "stats"), ("/statistics", "statistics"), ("/<path_user_id>/stats", "user_stats"),
                         ("/<path_user_id>/statistics", "user_statistics")):
        api.register_blueprint(stats.bp, url_prefix=prefix, name=name)
    api.register_blueprint(users.bp, url_prefix="/users")
    api.register_blueprint(users.profile, url_prefix="/<path_user_id>/profile")
    return api
