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
