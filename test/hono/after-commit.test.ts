import { Hono } from "hono";
import { expect, test } from "vitest";
import { getSession, session } from "../../src/adapters/hono.js";
import { SessionCommittedError } from "../../src/core/errors.js";
import { createSessionEngine } from "../../src/setup.js";
import { MemoryStore } from "../../src/stores/memory.js";

test("a session write inside a streamed body, after the commit, throws instead of vanishing", async () => {
  const store = new MemoryStore();
  const engine = createSessionEngine({ store, env: {}, secure: false, csrf: { enabled: false } });
  const app = new Hono();
  app.use(session(engine));
  let caught: unknown = null;
  app.get("/stream", (c) => {
    const s = getSession(c);
    const body = new ReadableStream<Uint8Array>(
      {
        // Runs when the body is read: the response, and so the session, was committed before.
        async pull(controller) {
          caught = await s.insert("late", true).catch((error: unknown) => error);
          controller.enqueue(new TextEncoder().encode("done"));
          controller.close();
        },
      },
      // No queue to fill ahead: `pull` waits for the reader instead of running at once.
      { highWaterMark: 0 },
    );
    return c.body(body);
  });
  const res = await app.request("/stream");
  expect(await res.text()).toBe("done");
  expect(res.headers.get("set-cookie")).toBeNull();
  expect(caught).toBeInstanceOf(SessionCommittedError);
  expect((caught as Error).message).toMatch(/session\.insert\(\) after the response was committed/);
  expect(store.size).toBe(0);
});
