/**
 * A small typed client of the todo service, as a frontend writes one: the types come from
 * `openapi-typescript` run on the served /api/openapi.json (generated/api.d.ts, made by
 * tests/test_typescript.py), the calls go through openapi-fetch, so every path, parameter, body
 * and answer below is checked by `tsc --strict` against the document.
 *
 * A new call is one method in `todoClient` (and a step in `demo` to run it).
 */
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/api.js";

export type Task = components["schemas"]["Task"];
export type TaskList = components["schemas"]["TaskList"];
export type NewTask = components["schemas"]["TaskCreate"];
export type TaskChanges = components["schemas"]["TaskUpdate"];
export type Deleted = components["schemas"]["DeleteResult"];
export type Problem = components["schemas"]["Problem"];
export type Tag = components["schemas"]["Tag"];
export type TagList = components["schemas"]["TagList"];
export type ListQuery = NonNullable<paths["/api/tasks"]["get"]["parameters"]["query"]>;

/** An answer: the resource (with its ETag), or the problem document and its status. */
export type Result<T> =
  | { ok: true; value: T; etag: string | null }
  | { ok: false; status: number; problem: Problem };

async function result<T>(
  call: Promise<{ data?: T; error?: Problem; response: Response }>,
): Promise<Result<T>> {
  const { data, error, response } = await call;
  if (error !== undefined) {
    return { ok: false, status: response.status, problem: error };
  }
  if (data === undefined) {
    throw new Error(`no body in a ${response.status} answer`);
  }
  return { ok: true, value: data, etag: response.headers.get("ETag") };
}

/** The calls of a todo frontend, for the user of `token`. */
export function todoClient(baseUrl: string, token: string) {
  const api = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
  return {
    list: (query: ListQuery = {}) =>
      result<TaskList>(api.GET("/api/tasks", { params: { query } })),
    get: (id: number) =>
      result<Task>(api.GET("/api/tasks/{task_id}", { params: { path: { task_id: id } } })),
    create: (task: NewTask) => result<Task>(api.POST("/api/tasks", { body: task })),
    update: (id: number, changes: TaskChanges, etag?: string) =>
      result<Task>(api.PATCH("/api/tasks/{task_id}", {
        params: { path: { task_id: id }, header: etag === undefined ? {} : { "If-Match": etag } },
        body: changes,
      })),
    /** Toggles, or sets `completed` when given. */
    complete: (id: number, completed?: boolean) =>
      result<Task>(api.PATCH("/api/tasks/{task_id}/complete", {
        params: { path: { task_id: id } },
        ...(completed === undefined ? {} : { body: { completed } }),
      })),
    remove: (id: number) =>
      result<Deleted>(api.DELETE("/api/tasks/{task_id}", { params: { path: { task_id: id } } })),
    createTag: (name: string, color: string | null = null) =>
      result<Tag>(api.POST("/api/tags", { body: { name, color } })),
    tags: () => result<TagList>(api.GET("/api/tags")),
    /** Replaces the task's tags by names (missing ones are created). */
    tagTask: (id: number, names: string[]) =>
      result<Task>(api.PUT("/api/tasks/{task_id}/tags", {
        params: { path: { task_id: id } },
        body: { tags: names },
      })),
  };
}

/** The value of an answer that must have succeeded. */
function value<T>(answer: Result<T>, what: string): T {
  if (!answer.ok) {
    throw new Error(`${what}: ${answer.status} ${answer.problem.code}: ${answer.problem.detail}`);
  }
  return answer.value;
}

/** Every call once, against a live service: what a frontend would show, as plain data. */
export async function demo(baseUrl: string, token: string) {
  const client = todoClient(baseUrl, token);
  const created = value(await client.create({ title: "Typed task", priority: "high" }), "create");
  const listed = value(await client.list({ status: "pending", sort: "priority", limit: 10 }), "list");
  const first = await client.update(created.id, { title: "Typed task, renamed" }, '"1"');
  const stale = await client.update(created.id, { description: "too late" }, '"1"');
  const tag = value(await client.createTag("Errands", "#FF8800"), "create a tag");
  const tagged = value(await client.tagTask(created.id, ["errands", "home"]), "tag the task");
  const tags = value(await client.tags(), "list the tags");
  const done = value(await client.complete(created.id), "complete");
  const undone = value(await client.complete(created.id, false), "complete with a body");
  const deleted = value(await client.remove(created.id), "delete");
  const gone = await client.get(created.id);
  return {
    created: { id: created.id, title: created.title, priority: created.priority, completed: created.completed },
    listed: { count: listed.count, ids: listed.tasks.map((task) => task.id) },
    renamed: first.ok ? { title: first.value.title, etag: first.etag } : first.problem.code,
    stale: stale.ok ? "accepted" : { status: stale.status, code: stale.problem.code },
    tagged: { tag: tag.name, names: tagged.tags.map((t) => t.name), listed: tags.tags.map((t) => t.name) },
    completed: [done.completed, undone.completed],
    deleted: deleted.deleted_id,
    gone: gone.ok ? "still there" : { status: gone.status, code: gone.problem.code },
  };
}
