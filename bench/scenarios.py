"""The benchmark's scenarios, each defined once: the request it sends, whose token it carries and
which task it names. wrk (bench/wrk/scenario.lua, through the environment), the in-process CPU
measure (cpu.py), the profiler, the pgbench script generator (statements.py) and the answer
check all read this table.

`who`: "user" (a random one of the benchmark's users, and its oldest task), "heavy" (the user
with 100,000 tasks) or "pool" (a fresh recurring task for each request, see bench/README.md).
"""
from dataclasses import dataclass

TAG = "work"  # one of seed-bulk's five tags, on about 18% of tasks
CREATED_TITLE = "benchmark task"


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str
    method: str
    path: str  # {task}: the task's id; {cursor}: the heavy user's page-500 cursor
    who: str = "user"
    body: str | None = None

    @property
    def writes(self):
        return self.method != "GET"

    def url(self, task_id="", cursor=""):
        return self.path.replace("{task}", str(task_id)).replace("{cursor}", cursor)


SCENARIOS = {s.name: s for s in (
    Scenario("list", "list, first page (limit 20)", "GET", "/api/tasks?limit=20"),
    Scenario("list_tag", f"list filtered by a tag ({TAG}), first page", "GET", f"/api/tasks?limit=20&tag={TAG}"),
    Scenario("get", "get one", "GET", "/api/tasks/{task}"),
    Scenario("stats", "statistics (GET /api/stats)", "GET", "/api/stats"),
    Scenario("reminders", "due reminders (GET /api/reminders)", "GET", "/api/reminders"),
    Scenario("heavy_first", "heavy user, page 1", "GET", "/api/tasks?limit=20", "heavy"),
    Scenario("heavy_page500", "heavy user, page 500 (cursor)", "GET", "/api/tasks?limit=20&cursor={cursor}", "heavy"),
    Scenario("heavy_tag", f"heavy user, filtered by a tag ({TAG})", "GET", f"/api/tasks?limit=20&tag={TAG}", "heavy"),
    Scenario("heavy_stats", "heavy user, statistics", "GET", "/api/stats", "heavy"),
    Scenario("toggle", "toggle complete", "PATCH", "/api/tasks/{task}/complete"),
    Scenario("create", "create", "POST", "/api/tasks", body=f'{{"title":"{CREATED_TITLE}"}}'),
    Scenario("recurring", "complete a recurring task (next occurrence created)", "PATCH",
             "/api/tasks/{task}/complete", "pool", '{"completed":true}'),
)}
NAMES = tuple(SCENARIOS)
