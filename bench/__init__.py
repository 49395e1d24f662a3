"""The benchmark: the service against a thin reference app and pgbench, in one run (see README.md)."""
