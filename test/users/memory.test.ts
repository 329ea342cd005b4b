import { describe, expect, test } from "vitest";
import { AuthSession } from "../../src/core/auth.js";
import { ConfigError, IndexUnsupportedError } from "../../src/core/errors.js";
import type { RecordStore } from "../../src/core/store.js";
import { MemoryStore } from "../../src/stores/memory.js";
import { browser, usersApp, usersEngine } from "./app.js";
import { userIndexSuite } from "./suite.js";

userIndexSuite("memory", async () => new MemoryStore());

/** A store with records only: what a custom store without the optional index looks like. */
function recordsOnly(): RecordStore {
  const inner = new MemoryStore();
  return {
    inProcess: true,
    load: (id, now) => inner.load(id, now),
    write: (id, w, mode, now) => inner.write(id, w, mode, now),
    destroy: (id) => inner.destroy(id),
    claim: (id, now) => inner.claim(id, now),
    take: (id, keys) => inner.take(id, keys),
  };
}

describe("a store without a user index", () => {
  test("sign-in works; listing and revoking throw a clear error", async () => {
    const engine = usersEngine(recordsOnly());
    const app = usersApp(engine);
    const b = browser(app);
    expect((await b.post("/login/alice")).status).toBe(200);
    expect(await b.me()).toBe("alice");
    await expect(engine.listUserSessions("alice")).rejects.toBeInstanceOf(IndexUnsupportedError);
    await expect(engine.revokeUserSessions("alice")).rejects.toThrow(/keeps no per-user index/);
    const s = engine.open(`session_id=${b.jar.cookie.split("=")[1]}`);
    const auth = await AuthSession.open(s);
    await expect(auth.listSessions()).rejects.toBeInstanceOf(IndexUnsupportedError);
    await b.post("/logout");
    expect(await b.me()).toBeNull();
  });

  test("max_sessions_per_user is refused at start-up", () => {
    expect(() => usersEngine(recordsOnly(), { maxSessionsPerUser: 3 })).toThrow(ConfigError);
  });
});

test("revoke_oldest lists a user's sessions only when a sign-in takes the index over the limit", async () => {
  const store = new MemoryStore();
  const calls = { list: 0, peek: 0, limit: [] as number[] };
  const spied = new Proxy(store, {
    get(target, name) {
      const value = Reflect.get(target, name, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (name === "indexList") calls.list++;
        if (name === "peek") calls.peek++;
        if (name === "indexPut") calls.limit.push(args[5] as number);
        return value.apply(target, args);
      };
    },
  });
  const app = usersApp(usersEngine(spied, { maxSessionsPerUser: 3 }));
  for (let i = 0; i < 3; i++) expect((await browser(app).post("/login/capped")).status).toBe(200);
  expect(calls).toEqual({ list: 0, peek: 0, limit: [3, 3, 3] });
  const fourth = browser(app);
  await fourth.post("/login/capped");
  expect(calls.list).toBe(1);
  expect(calls.peek).toBe(1);
  expect((await fourth.json<unknown[]>("GET", "/sessions")).length).toBe(3);
});
