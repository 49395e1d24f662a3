"""Operator code, apart from the request path: the Flask CLI commands, demo and bulk seeding,
export/import, and the admin-scoped database plumbing they share."""
