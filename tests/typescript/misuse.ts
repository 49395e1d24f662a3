/**
 * What the generated types must refuse: each line marked `@ts-expect-error` has to be a type
 * error, or tsc fails with "Unused '@ts-expect-error' directive". So a document too loose to
 * catch these mistakes fails the compile of tests/test_typescript.py.
 */
import createClient from "openapi-fetch";
import type { paths } from "./generated/api.js";
import { type Problem, type Task, todoClient } from "./client.js";

export async function misuse(task: Task, problem: Problem) {
  const api = createClient<paths>({ baseUrl: "http://localhost" });
  const client = todoClient("http://localhost", "token");
  // @ts-expect-error: no such route
  await api.GET("/api/taskz");
  // @ts-expect-error: not a priority of the vocabulary
  await client.create({ title: "x", priority: "urgent" });
  // @ts-expect-error: a new task needs a title
  await client.create({ description: "no title" });
  // @ts-expect-error: task ids are numbers
  await api.GET("/api/tasks/{task_id}", { params: { path: { task_id: "7" } } });
  // @ts-expect-error: the task JSON spells its fields in snake_case
  const due: string = task.dueDate;
  // @ts-expect-error: not one of the problem codes
  const unknown = problem.code === "timeout";
  return [due, unknown];
}
