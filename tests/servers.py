"""Helpers for tests that need real concurrency or real servers.

- `race`: send requests at the same moment from separate threads (each with its own test client).
"""
import threading
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import Caller


def race(app, caller, requests, timeout=30):
    """Send `requests` [(method, path, kwargs)] as `caller` at once, one thread and one test
    client each; a barrier releases them together. Returns the responses in order."""
    barrier = threading.Barrier(len(requests))

    def send(item):
        method, path, kwargs = item
        own = Caller(app.test_client(), caller.id)
        barrier.wait(timeout=10)
        return own.request(method, path, **kwargs)

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(send, requests, timeout=timeout))
