"""The Procfile run as a PaaS runs it: `release:` then `web:` with only PORT, DATABASE_URL (and
the auth secret) in the environment, then SIGTERM while requests are in flight."""
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import PROJECT, SECRET, create_database, drop_database, make_token, role_url

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def procfile():
    """{process type: command} from the Procfile."""
    lines = (PROJECT / "Procfile").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if line.strip() and not line.startswith("#"))


def run_line(command, **kwargs):
    """Start a Procfile command the way PaaS runners do: `bash -c` (bash execs a lone command, so
    the process is the server itself and receives the platform's signals)."""
    return subprocess.Popen(["/bin/bash", "-c", command], cwd=PROJECT, **kwargs)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def paas_env(**extra):
    """The bare environment a PaaS gives a process: PATH (with the app's virtualenv) and config."""
    return {"PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin", **extra}


def get(url, token=None, timeout=5):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback
        return response.status, json.loads(response.read())


def wait_ready(port, process, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        try:
            if get(f"http://127.0.0.1:{port}/readyz", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("the web process never became ready")


@pytest.fixture
def fresh_url(admin_url):
    """An empty database (not migrated: the release phase does that)."""
    name = create_database(admin_url, prefix="todo_procfile")
    yield role_url(admin_url, name)
    drop_database(admin_url, name)


def test_procfile_declares_web_and_release():
    processes = procfile()
    assert shlex.split(processes["web"])[:1] == ["gunicorn"]
    assert "wsgi:app" in processes["web"]
    # Migrations first, then the configured vocabularies (migrations/005_organising.py).
    assert shlex.split(processes["release"]) == ["pw_migrate", "migrate", "&&", "flask", "--app", "wsgi",
                                                 "apply-vocabularies"]


def send_partial(port, head, rest):
    """Open a connection, send `head` of a request and keep `rest` for later."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head)
    return sock, rest


def finish(sock, rest):
    """Send the rest of the request; return (status, body) of the answer."""
    sock.sendall(rest)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_web_process_finishes_in_flight_requests_on_sigterm(fresh_url):
    processes = procfile()
    release = run_line(processes["release"], env=paas_env(DATABASE_URL=fresh_url), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    assert release.wait(timeout=120) == 0, release.stdout.read()
    port = free_port()
    env = paas_env(PORT=str(port), DATABASE_URL=fresh_url, BETTER_AUTH_SECRET=SECRET)
    web = run_line(processes["web"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                   start_new_session=True)
    try:
        wait_ready(port, web)
        token = make_token("procfile-user")
        auth = f"Authorization: Bearer {token}\r\n".encode()
        assert get(f"http://127.0.0.1:{port}/api/tasks", token)[0] == 200
        # Requests the server has accepted and is reading: creates whose body is half sent, and
        # lists whose headers are not finished yet.
        in_flight = []
        for number in range(3):
            body = json.dumps({"title": f"sent across a shutdown {number}"}).encode()
            head = (b"POST /api/tasks HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    + auth + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
            in_flight.append(send_partial(port, head + body[:5], body[5:]))
            in_flight.append(send_partial(port, b"GET /api/tasks?limit=500 HTTP/1.1\r\nHost: localhost\r\n" + auth,
                                          b"Connection: close\r\n\r\n"))
        time.sleep(1.0)  # let the workers pick them up
        os.killpg(web.pid, signal.SIGTERM)  # as a PaaS stops a dyno: every process gets SIGTERM
        time.sleep(1.0)
        assert web.poll() is None, "gunicorn exited without waiting for in-flight requests"
        answers = [finish(sock, rest) for sock, rest in in_flight]
        assert [status for status, _ in answers] == [201, 200] * 3, answers
        assert web.wait(timeout=30) == 0
    finally:
        if web.poll() is None:
            os.killpg(web.pid, signal.SIGKILL)
            web.wait()
    stderr = web.stderr.read()
    assert "Traceback" not in stderr
    assert token not in stderr


@pytest.mark.parametrize(("variable", "value", "named"), [
    ("DATABASE_POOL_SIZE", "abc", "DATABASE_POOL_SIZE"),
    ("BETTER_AUTH_SECRET", "too-short", "BETTER_AUTH_SECRET"),
    ("PORT", "eighty", "PORT"),
    ("DATABASE_POOL_SIZE", "2", "threads"),  # fewer pooled connections than threads per worker
])
def test_bad_setting_stops_the_web_process_with_one_line(variable, value, named):
    env = paas_env(PORT=str(free_port()), DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
                   BETTER_AUTH_SECRET=SECRET)
    env[variable] = value
    web = run_line(procfile()["web"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _out, stderr = web.communicate(timeout=60)
    assert web.returncode != 0
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert named in lines[0]
    assert "Traceback" not in stderr
