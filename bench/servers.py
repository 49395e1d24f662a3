"""The HTTP targets: the service and the thin reference, each under gunicorn with the project's
gunicorn.conf.py (same workers, same worker class), on loopback ports; and a sampler of their
workers' memory."""
import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import psutil

from .paths import OUT, PROJECT, VENV_BIN
from .report import gunicorn_settings

APPS = {"service": "wsgi:app", "reference": "bench.reference_app:app"}
# A server's log is written to memory while it runs and moved to bench/out when it stops. On a
# PaaS the service's output is a pipe to the log router, not a file on the disk PostgreSQL
# commits to; a run writes ~30 MB of request lines, whose flushes would otherwise compete with
# the write scenarios' commits (the reference logs nothing, so only the service would pay).
LIVE_LOGS = Path("/dev/shm") if Path("/dev/shm").is_dir() else OUT  # noqa: S108 - tmpfs, by design


class Server:
    """One gunicorn master serving `app` on 127.0.0.1:`port`."""

    def __init__(self, name, app, port, env):
        self.name, self.app, self.port, self.env = name, app, port, env
        self.process = None
        self.log_path = OUT / f"{name}.log"  # where the log is kept once the server stops
        self._live_log = LIVE_LOGS / f"todo-bench-{os.getpid()}-{name}.log"

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=60):
        env = {**os.environ, **self.env, "PORT": str(self.port)}
        log = open(self._live_log, "wb")  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}",
             # several masters run at once here: no shared control socket in ~/.gunicorn
             "--no-control-socket", self.app], cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT)
        expected = self.expected_workers()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._keep_log()
                raise RuntimeError(f"{self.name} exited at start; see {self.log_path}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(self.base + "/health", timeout=2) as response:  # noqa: S310 - loopback http
                    # One worker answering is not all of them: the warm-up must find every one.
                    if response.status == 200 and len(self.workers()) >= expected:
                        return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer /health with all its workers within {timeout}s; "
                           f"see {self.log_path}")

    def expected_workers(self):
        """How many workers gunicorn.conf.py starts under this server's environment."""
        if self.env.get("WEB_CONCURRENCY", "").strip():
            return int(self.env["WEB_CONCURRENCY"])
        return gunicorn_settings()["workers"]

    def workers(self):
        """The worker processes (the master's children)."""
        try:
            return psutil.Process(self.process.pid).children()
        except psutil.NoSuchProcess:
            return []

    def workers_with_connections(self):
        """The pids of the workers holding a client connection right now."""
        pids = set()
        for worker in self.workers():
            with contextlib.suppress(psutil.Error):
                if any(c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == self.port
                       for c in worker.net_connections("tcp")):
                    pids.add(worker.pid)
        return pids

    def cpu_seconds(self):
        """User + system CPU all of gunicorn's processes (the master and its workers) have used so far."""
        total = 0.0
        processes = self.workers()
        with contextlib.suppress(psutil.Error):
            processes.append(psutil.Process(self.process.pid))
        for worker in processes:
            with contextlib.suppress(psutil.Error):
                times = worker.cpu_times()
                total += times.user + times.system
        return total

    def stop(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=35)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._keep_log()

    def _keep_log(self):
        with contextlib.suppress(FileNotFoundError):
            shutil.move(self._live_log, self.log_path)


class MemorySampler:
    """Samples every worker's resident set size while running; keeps each worker's peak."""

    def __init__(self, servers, interval=0.25):
        self.servers = servers
        self.interval = interval
        self.peaks = {server.name: {} for server in servers}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.is_set():
            for server in self.servers:
                for worker in server.workers():
                    with contextlib.suppress(psutil.Error):
                        rss = worker.memory_info().rss
                        peaks = self.peaks[server.name]
                        peaks[worker.pid] = max(peaks.get(worker.pid, 0), rss)
            self._stop.wait(self.interval)

    def summary(self):
        """Per server: the largest worker peak and the mean of the workers' peaks, in MiB."""
        result = {}
        for name, peaks in self.peaks.items():
            values = list(peaks.values()) or [0]
            result[name] = {"peak_rss_mib": round(max(values) / 2**20, 1),
                            "mean_peak_rss_mib": round(sum(values) / len(values) / 2**20, 1),
                            "workers_seen": len(peaks)}
        return result
