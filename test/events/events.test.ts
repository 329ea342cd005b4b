import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { Hono } from "hono";
import { afterEach, beforeEach, expect, test } from "vitest";
import { getSession, session, sessionLock } from "../../src/adapters/hono.js";
import { CsrfToken } from "../../src/core/csrf.js";
import { EVENTS, idHash } from "../../src/core/events.js";
import { generateId } from "../../src/core/id.js";
import { createSessionEngine } from "../../src/setup.js";
import { Jar } from "../support/hono-app.js";

/** coatcheck's diagnostics_channel events, through Hono's request path on the memory store. */

const seen: Array<{ name: string; message: Record<string, unknown> }> = [];
const listeners = Object.values(EVENTS).map((name) => {
  const listener = (message: unknown) =>
    seen.push({ name, message: message as Record<string, unknown> });
  return [name, listener] as const;
});
beforeEach(() => {
  seen.length = 0;
  for (const [name, listener] of listeners) subscribe(name, listener);
});
afterEach(() => {
  for (const [name, listener] of listeners) unsubscribe(name, listener);
});

const warnings: string[] = [];
function app() {
  const engine = createSessionEngine({
    secure: false,
    lockTimeoutMs: 50,
    logger: { warn: (_f: unknown, m: string) => warnings.push(m), error: () => {} },
  });
  const a = new Hono();
  a.use(session(engine));
  a.get("/", async (c) => c.text(String(await getSession(c).get("n"))));
  a.get("/form", async (c) => c.text((await CsrfToken.from(getSession(c))).token()));
  a.post("/set", async (c) => {
    await getSession(c).insert("n", 1);
    return c.text("ok");
  });
  a.post("/cycle", async (c) => {
    await getSession(c).cycleId();
    return c.text("ok");
  });
  a.post("/destroy", async (c) => {
    await getSession(c).destroy();
    return c.text("ok");
  });
  a.post("/slow", sessionLock(), async (c) => {
    await new Promise((r) => setTimeout(r, 200));
    return c.text("ok");
  });
  return a;
}

const names = () => seen.map((e) => e.name);

test("lifecycle events follow one session by its hash, never by its id", async () => {
  const a = app();
  const jar = new Jar();
  jar.take(await a.request("/form"));
  const id = jar.cookie.split("=")[1] as string;
  const token = await (await a.request("/form", { headers: jar.headers() })).text();
  const post = (path: string) =>
    a.request(path, { method: "POST", headers: { ...jar.headers(), "x-csrf-token": token } });
  jar.take(await post("/set"));
  jar.take(await post("/cycle"));
  const cycledTo = jar.cookie.split("=")[1] as string;
  jar.take(await a.request("/form", { headers: jar.headers() }));
  const fresh = await (await a.request("/form", { headers: jar.headers() })).text();
  await a.request("/destroy", {
    method: "POST",
    headers: { ...jar.headers(), "x-csrf-token": fresh },
  });

  expect(names()).toContain(EVENTS.created);
  expect(names()).toContain(EVENTS.saved);
  expect(seen).toContainEqual({
    name: EVENTS.loaded,
    message: { session: idHash(id), found: true },
  });
  expect(seen).toContainEqual({
    name: EVENTS.cycled,
    message: { from: idHash(id), to: idHash(cycledTo) },
  });
  expect(seen).toContainEqual({ name: EVENTS.destroyed, message: { session: idHash(cycledTo) } });
  const text = JSON.stringify(seen);
  expect(text).not.toContain(id);
  expect(text).not.toContain(cycledTo);
  expect(text).not.toContain(token);
});

test("cookies that are not used: malformed, duplicated, unknown", async () => {
  const a = app();
  await a.request("/", { headers: { cookie: "session_id=nope" } });
  const id = generateId();
  await a.request("/", { headers: { cookie: `session_id=${id}; session_id=${id}` } });
  await a.request("/", { headers: { cookie: `session_id=${id}` } });
  expect(seen.filter((e) => e.name === EVENTS.cookieRejected).map((e) => e.message)).toEqual([
    { reason: "malformed" },
    { reason: "duplicate" },
    { reason: "unknown" },
  ]);
});

test("a CSRF rejection names reason, method and path; its log line comes once per burst", async () => {
  const a = app();
  warnings.length = 0;
  for (let i = 0; i < 5; i++) await a.request("/set?x=1", { method: "POST" });
  const rejected = seen.filter((e) => e.name === EVENTS.csrfRejected).map((e) => e.message);
  expect(rejected).toHaveLength(5);
  expect(rejected[0]).toEqual({ reason: "token_missing", method: "POST", path: "/set" });
  expect(warnings.filter((w) => w.includes("CSRF check refused POST /set"))).toHaveLength(1);
});

test("a lock wait and a lock timeout", async () => {
  const a = app();
  const jar = new Jar();
  jar.take(await a.request("/form"));
  const token = await (await a.request("/form", { headers: jar.headers() })).text();
  const post = () =>
    a.request("/slow", { method: "POST", headers: { ...jar.headers(), "x-csrf-token": token } });
  const answers = await Promise.all([post(), post()]);
  expect(answers.map((r) => r.status).sort()).toEqual([200, 503]);
  const timeout = seen.find((e) => e.name === EVENTS.lockTimeout);
  expect(timeout?.message.session).toMatch(/^[0-9a-f]{12}$/);
  expect(timeout?.message.waitedMs).toBeGreaterThan(0);
});
