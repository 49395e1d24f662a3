"""gunicorn settings for the Procfile's web process: `gunicorn -c gunicorn.conf.py wsgi:app`.

- bind 0.0.0.0:$PORT (PaaS routers connect to the port they assign; default 8000).
- workers: $WEB_CONCURRENCY (Heroku sets it per dyno size), else 2 x cores.
- worker class gthread, 4 threads each: a request spends most of its time waiting on PostgreSQL
  or on the client, and psycopg2 and socket I/O release the GIL, so threads overlap those waits
  at a fraction of a process's memory; idle keep-alive connections and slow clients no longer
  pin a whole worker as they do with `sync`. Each thread holds at most one pooled connection, so
  the pool (DATABASE_POOL_SIZE, default 10) must be at least the thread count, which is checked
  here. Override with GUNICORN_CMD_ARGS="--threads 8" (command-line settings win over this file).
- graceful shutdown: on SIGTERM workers stop accepting and finish in-flight requests for up to
  25 s, inside the 30 s most platforms (Heroku) wait before SIGKILL.
- preload: the app is built once in the master, so a bad setting stops the server with one
  line before any worker starts (validating inside workers makes gunicorn print a HaltServer
  traceback), and workers fork with the code already loaded.
- metrics: every worker writes its Prometheus values to files in PROMETHEUS_MULTIPROC_DIR and
  /metrics merges them (service/metrics.py). The folder is prepared here, before the app is
  imported: a fresh temporary one per server start (removed when the master exits), or the
  operator's own with its old files removed. Each worker samples its gauges once a second; a
  worker that exits takes its gauges with it.
"""
import atexit
import glob
import os
import shutil
import sys
import tempfile

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
_MULTIPROC_OWNER = "TODO_METRICS_DIR_MASTER"  # the master that made the folder (ours to remove)


def _prepare_metrics_dir():
    """Set PROMETHEUS_MULTIPROC_DIR before prometheus_client is imported, for this server only."""
    owner = os.environ.get(_MULTIPROC_OWNER)
    if owner == str(os.getpid()):
        return  # this file read again by the same master (SIGHUP): keep its folder
    if MULTIPROC_DIR in os.environ and not owner:
        # The operator's folder: counts of an earlier server would be added to this one's.
        os.makedirs(os.environ[MULTIPROC_DIR], exist_ok=True)
        for stale in glob.glob(os.path.join(os.environ[MULTIPROC_DIR], "*.db")):
            os.remove(stale)
        return
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - memory, not disk
    os.environ[MULTIPROC_DIR] = tempfile.mkdtemp(prefix="todo-metrics-", dir=shm)
    os.environ[_MULTIPROC_OWNER] = str(os.getpid())
    # Removed when the master exits, however it does (a stop, a configuration error, a failed
    # preload); forked workers inherit the hook, but the folder is not theirs.
    atexit.register(_remove_metrics_dir)


def _remove_metrics_dir():
    """Remove the metrics folder this master made (never the operator's)."""
    if os.environ.get(_MULTIPROC_OWNER) == str(os.getpid()):
        shutil.rmtree(os.environ[MULTIPROC_DIR], ignore_errors=True)


# gunicorn executes this file as the module `__config__`; a reader of its settings (bench/report.py
# runs it with runpy) gets them without a metrics folder of its own.
if __name__ == "__config__":
    _prepare_metrics_dir()

from service import instruments  # noqa: E402 - after the metrics folder is set
from service.config import ConfigError, load_config  # noqa: E402


def _fail(message):
    # Runs while gunicorn reads this file, in the master: one line, then stop before anything
    # starts (gunicorn reports an Exception from this file with a traceback, but not SystemExit).
    print(f"configuration error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def _whole_number(name, default, minimum=1):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        _fail(f"{name} must be a whole number >= {minimum}, got {raw!r}")
    return int(raw)


try:
    _config = load_config()
except ConfigError as error:
    _fail(error)

_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

bind = f"0.0.0.0:{_whole_number('PORT', 8000)}"
workers = _whole_number("WEB_CONCURRENCY", 2 * _cores)
worker_class = "gthread"
threads = 4


def _check_pool(thread_count):
    if thread_count > _config.pool_size:
        _fail(f"DATABASE_POOL_SIZE ({_config.pool_size}) must be at least gunicorn's threads "
              f"({thread_count}): each thread holds one pooled connection")


_check_pool(threads)


def on_starting(server):
    """Check again once every setting is known: GUNICORN_CMD_ARGS may have changed threads."""
    _check_pool(server.cfg.threads)


def post_fork(server, worker):
    """In each new worker: sample its gauges into its metrics files once a second."""
    instruments.start_sampler()


def child_exit(server, worker):
    """A worker exited: its gauges (requests in flight, pool) no longer describe anything."""
    instruments.mark_process_dead(worker.pid)



preload_app = True
graceful_timeout = 25
timeout = 30
keepalive = 5

# The service writes one structured line per request itself (service/request_log.py).
accesslog = None
errorlog = "-"
loglevel = _config.log_level.lower()
# No `gunicornc` control socket: nothing here uses it, and every gunicorn of a user would share
# its default path ($HOME/.gunicorn/gunicorn.ctl).
control_socket_disable = True
# Heartbeat files in memory, not on a possibly slow container disk.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - gunicorn's documented advice

# gunicorn answers a header line over 8190 bytes itself (431, HTML) before the app sees it; the
# contract wants an oversized bearer token (> 8 KB) to be the service's own 401 with
# WWW-Authenticate and a problem body, so header lines up to 32 KiB reach the identity hook
# (tests/test_auth.py::test_oversized_token_is_the_services_401_behind_gunicorn).
limit_request_field_size = 32768
