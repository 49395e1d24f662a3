"""Headless Chromium (Debian's `chromium`) for the tests that need a real browser: the docs page
and CORS. scripts/test installs it where it is missing (scripts/install-test-tools); a test
never installs anything. Without it the browser tests skip with the reason, except in CI
(CI=true), where they fail instead.
"""
import os
import shutil
import subprocess

import pytest

BROWSER_TIMEOUT = 120


def find_chromium():
    """The chromium executable; skips the test without it (fails it in CI)."""
    found = shutil.which("chromium")
    if found is None:
        reason = "chromium is not installed (scripts/test installs Debian's package with apt-get)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def headless(chromium, profile, url, *args, budget_ms=5000):
    """Run headless chromium on `url` with a fresh profile in the folder `profile`, every host but
    127.0.0.1 unresolvable; returns what it printed (with `--dump-dom`: the page's DOM once
    `budget_ms` of virtual time has passed; virtual time stands still while fetches are pending).
    """
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--virtual-time-budget={budget_ms}", *args, url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT,
                            check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout
