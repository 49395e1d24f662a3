"""Before measuring: the thin reference must answer every scenario as the service does, or the
comparison means nothing.

Reads are asked of both and compared (bench/same.py: the same members and values; timestamps
may differ in their fractional digits). A write cannot be sent twice to the same row with the
same result, so each write scenario is sent to one target and its answer compared with what the
other target then reads back (the task, and a recurring task's next occurrence), both ways;
status codes and ETags included. The data is put back as it was (toggled twice, created tasks and
occurrences removed by the harness's reset).
"""
import json
import urllib.error
import urllib.request

from . import database, same
from .scenarios import SCENARIOS


class Mismatch(SystemExit):
    pass


def call(base, path, token, method="GET", body=None):
    """(status, headers, decoded JSON) of one request to a target on loopback."""
    data = body.encode() if body else None
    headers = {"Authorization": f"Bearer {token}", **({"Content-Type": "application/json"} if data else {})}
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.headers, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read() or b"null")


def _compare(what, first, second, names=("service", "reference")):
    (status_a, headers_a, body_a), (status_b, headers_b, body_b) = first, second
    found = None
    if status_a != status_b:
        found = f"status {status_a} against {status_b}"
    elif headers_a.get("ETag") != headers_b.get("ETag"):
        found = f"ETag {headers_a.get('ETag')} against {headers_b.get('ETag')}"
    else:
        found = same.difference(same.normalise(body_a), same.normalise(body_b))
    if found:
        raise Mismatch(f"the reference and the service disagree on {what}: {found}\n"
                       f"  {names[0]}: {json.dumps(body_a)[:600]}\n  {names[1]}: {json.dumps(body_b)[:600]}")


def check_reads(bases, files, users=5):
    """Every read scenario, asked of both targets, for the first few users (their time zones
    differ: the statistics' days do) and the heavy user."""
    heavy = files["heavy"].read_text().strip()
    for number, line in enumerate(files["tokens"].read_text().splitlines()[:users]):
        token, task_id = line.split()
        for spec in SCENARIOS.values():
            if spec.writes or (spec.who == "heavy" and number):  # the heavy user's once
                continue
            path, who = spec.url(task_id, files.get("cursor", "")), heavy if spec.who == "heavy" else token
            _compare(f"{spec.name} ({path})", *(call(bases[t], path, who) for t in ("service", "reference")))


def _written_then_read(what, bases, writer, reader, token, method, path, body, task_id=None):
    """Write through `writer`, read the task (and its next occurrence) back through `reader`."""
    written = call(bases[writer], path, token, method, body)
    if written[0] not in (200, 201):
        raise Mismatch(f"{what} through the {writer} failed: {written[0]} {json.dumps(written[2])[:300]}")
    task = dict(written[2])
    following = task.pop("next_occurrence", None)
    read = call(bases[reader], f"/api/tasks/{task['id'] if task_id is None else task_id}", token)
    _compare(f"{what} (written by the {writer}, read by the {reader})", (written[0], written[1], task),
             (written[0], read[1], read[2]), (writer, reader))
    if following is not None:
        read = call(bases[reader], f"/api/tasks/{following['id']}", token)
        _compare(f"{what}: the next occurrence", (200, {}, following), (read[0], {}, read[2]), (writer, reader))
    return written[2]


def check_writes(bases, files, admin, name, last_task_id, pool):
    """toggle, create and recurring, each written by one target and read back by the other."""
    token, task_id = files["tokens"].read_text().split("\n", 1)[0].split()
    tokens = dict(enumerate((line.split()[0] for line in files["tokens"].read_text().splitlines()), start=1))
    for writer, reader in (("service", "reference"), ("reference", "service")):
        toggle, create = SCENARIOS["toggle"], SCENARIOS["create"]
        _written_then_read("toggle", bases, writer, reader, token, toggle.method, toggle.url(task_id), None, task_id)
        _written_then_read("create", bases, writer, reader, token, create.method, create.url(), create.body)
        user, recurring_id = pool[0]
        spec = SCENARIOS["recurring"]
        answer = _written_then_read("recurring", bases, writer, reader, tokens[user], spec.method,
                                    spec.url(recurring_id), spec.body, recurring_id)
        if answer.get("next_occurrence") is None:
            raise Mismatch(f"completing recurring task {recurring_id} through the {writer} created no next occurrence")
        database.reset(admin, name, last_task_id)
