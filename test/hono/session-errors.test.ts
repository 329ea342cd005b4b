import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { afterEach, expect, test, vi } from "vitest";
import { getSession, session, sessionErrors } from "../../src/adapters/hono.js";
import { generateId } from "../../src/core/id.js";
import type { SessionStore } from "../../src/core/store.js";
import { createSessionEngine } from "../../src/setup.js";
import { MemoryStore } from "../../src/stores/memory.js";

/** A store whose every operation fails, as during an outage. */
function downStore(): SessionStore {
  const fail = async () => {
    throw new Error("connect ECONNREFUSED 127.0.0.1:6379");
  };
  const store = new MemoryStore();
  return Object.assign(Object.create(store), { load: fail, write: fail, inProcess: false });
}

function app(withHandler: boolean) {
  const engine = createSessionEngine({
    secure: false,
    store: downStore(),
    logger: { warn() {}, error() {} },
  });
  const a = new Hono();
  a.use(session(engine));
  a.get("/", async (c) => c.text(String(await getSession(c).get("n"))));
  a.get("/teapot", () => {
    throw new HTTPException(418, { message: "short and stout" });
  });
  a.get("/bug", () => {
    throw new Error("handler bug");
  });
  if (withHandler) a.onError(sessionErrors());
  return a;
}

afterEach(() => vi.restoreAllMocks());

test("sessionErrors(): an outage is a negotiated 503 on every request, and Hono logs none of them", async () => {
  const logged = vi.spyOn(console, "error").mockImplementation(() => {});
  const a = app(true);
  for (let i = 0; i < 20; i++) {
    const res = await a.request("/", {
      headers: { cookie: `session_id=${generateId()}`, accept: "text/html" },
    });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).not.toBeNull();
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
  }
  expect(logged).not.toHaveBeenCalled();
});

test("without it, Hono's default handler logs every one (what sessionErrors() is for)", async () => {
  const logged = vi.spyOn(console, "error").mockImplementation(() => {});
  const a = app(false);
  for (let i = 0; i < 5; i++) {
    const res = await a.request("/", { headers: { cookie: `session_id=${generateId()}` } });
    expect(res.status).toBe(503);
  }
  expect(logged).toHaveBeenCalledTimes(5);
});

test("other errors keep Hono's default: HTTPException's response, a logged 500 for the rest", async () => {
  const logged = vi.spyOn(console, "error").mockImplementation(() => {});
  const a = app(true);
  const teapot = await a.request("/teapot");
  expect(teapot.status).toBe(418);
  expect(await teapot.text()).toBe("short and stout");
  const bug = await a.request("/bug");
  expect(bug.status).toBe(500);
  expect(logged).toHaveBeenCalledTimes(1);
});
