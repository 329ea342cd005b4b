import { afterEach, expect, test } from "vitest";
import { exerciseExample, runExample } from "./run-example.js";

let example: Awaited<ReturnType<typeof runExample>> | undefined;
afterEach(() => example?.stop());

test.each(["hono", "express", "fastify"])(
  "examples/%s runs as a process: visits, CSRF-protected form, redirect",
  async (name) => {
    example = await runExample(name);
    const { first, token, refused, saved, second } = await exerciseExample(example);
    expect(first.text).toContain("Hello, stranger. Visits: 1");
    expect(first.res.headers.get("set-cookie")).toMatch(/^session_id=/);
    expect(token).not.toBe("");
    expect(refused.res.status).toBe(403);
    expect(saved.res.status).toBe(303);
    expect(second.text).toContain("Hello, Al&#60;b&#62;. Visits: 2");
  },
);
