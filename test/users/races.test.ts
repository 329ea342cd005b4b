import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AuthSession } from "../../src/core/auth.js";
import type { Session } from "../../src/core/session.js";
import type {
  IndexEntry,
  IndexSelection,
  SessionStore,
  SessionWrite,
  UserIndexStore,
  WriteMode,
} from "../../src/core/store.js";
import { MemoryStore } from "../../src/stores/memory.js";
import { RedisStore } from "../../src/stores/redis.js";
import { engineHarness } from "../support/engine-harness.js";
import { nodeRedis, requireSharedRedis, uniquePrefix } from "../support/redis.js";

/**
 * A store that runs `after.claim` (once) right after a claim has taken the record, before the
 * claim answers: the moment a revocation can land in the middle of an id change.
 */
class HookStore {
  readonly inProcess: boolean;
  readonly after: { claim?: () => Promise<void> } = {};
  readonly #inner: SessionStore & UserIndexStore;
  constructor(inner: SessionStore & UserIndexStore) {
    this.#inner = inner;
    this.inProcess = inner.inProcess;
  }
  load(id: string, now: number) {
    return this.#inner.load(id, now);
  }
  write(id: string, w: SessionWrite, mode: WriteMode, now: number) {
    return this.#inner.write(id, w, mode, now);
  }
  destroy(id: string) {
    return this.#inner.destroy(id);
  }
  async claim(id: string, now: number) {
    const claimed = await this.#inner.claim(id, now);
    const hook = this.after.claim;
    this.after.claim = undefined;
    await hook?.();
    return claimed;
  }
  take(id: string, keys: readonly string[]) {
    return this.#inner.take(id, keys);
  }
  indexPut(u: string, e: IndexEntry, id: string, r: string | null, now: number, limit: number) {
    return this.#inner.indexPut(u, e, id, r, now, limit);
  }
  indexRemove(u: string, s: IndexSelection, now: number, destroy: boolean) {
    return this.#inner.indexRemove(u, s, now, destroy);
  }
  indexList(u: string, now: number) {
    return this.#inner.indexList(u, now);
  }
  peek(refs: readonly string[], now: number) {
    return this.#inner.peek(refs, now);
  }
  close() {
    return this.#inner.close?.();
  }
}

let client: Awaited<ReturnType<typeof nodeRedis>>;
beforeAll(async () => {
  await requireSharedRedis();
  client = await nodeRedis();
});
afterAll(async () => {
  await client.close();
});

const cases: Array<{ name: string; make: () => SessionStore & UserIndexStore }> = [
  { name: "memory", make: () => new MemoryStore() },
  { name: "Redis", make: () => new RedisStore(client, { keyPrefix: uniquePrefix("races") }) },
];

describe.each(cases)("revocation races on the $name store", ({ make }) => {
  async function setup() {
    const store = new HookStore(make());
    const h = engineHarness(store as unknown as SessionStore);
    const signIn = async (user: string) => {
      const answer = await h.request(null, async (s) => {
        await (await AuthSession.open(s)).login(user, [], { userAgent: "race" });
      });
      return answer.cookieId as string;
    };
    const userOf = async (id: string) =>
      (await h.request(id, async (s: Session) => (await AuthSession.open(s)).userId())).value;
    return { ...h, store, signIn, userOf };
  }

  test("an update in flight on a revoked session does not bring it back", async () => {
    const { begin, engine, signIn, userOf } = await setup();
    const id = await signIn("ann");
    const inFlight = await begin(id, async (s) => {
      await s.insert("cart", ["book"]);
    });
    expect(await engine.revokeUserSessions("ann")).toBe(1);
    const answer = await inFlight.commit();
    expect(answer.setCookie).toBeUndefined();
    expect(await userOf(id)).toBeNull();
    expect(await engine.listUserSessions("ann")).toEqual([]);
  });

  test("an id change that already claimed the record when the revocation landed hands out nothing", async () => {
    const { begin, engine, signIn, userOf, store } = await setup();
    const id = await signIn("bob");
    const inFlight = await begin(id, async (s) => {
      await (await AuthSession.open(s)).rotate();
    });
    store.after.claim = async () => {
      expect(await engine.revokeUserSessions("bob")).toBe(1);
    };
    const answer = await inFlight.commit();
    expect(store.after.claim).toBeUndefined();
    expect(answer.setCookie).toBeUndefined();
    expect(answer.result.action).toBe("discard-new");
    expect(await userOf(id)).toBeNull();
    expect(await engine.listUserSessions("bob")).toEqual([]);
  });

  test("a revocation before the id change claims the record: the move finds nothing", async () => {
    const { begin, engine, signIn, userOf } = await setup();
    const id = await signIn("cy");
    const inFlight = await begin(id, async (s) => {
      await (await AuthSession.open(s)).rotate();
    });
    expect(await engine.revokeUserSessions("cy")).toBe(1);
    const answer = await inFlight.commit();
    expect(answer.setCookie).toBeUndefined();
    expect(await userOf(id)).toBeNull();
    expect(await engine.listUserSessions("cy")).toEqual([]);
  });

  test("signing in again on a session being revoked does not re-index it", async () => {
    const { begin, engine, signIn, userOf, store } = await setup();
    const id = await signIn("dee");
    const inFlight = await begin(id, async (s) => {
      await (await AuthSession.open(s)).login("dee", [], { userAgent: "again" });
    });
    store.after.claim = async () => {
      expect(await engine.revokeUserSessions("dee")).toBe(1);
    };
    const answer = await inFlight.commit();
    expect(answer.setCookie).toBeUndefined();
    expect(await userOf(id)).toBeNull();
    expect(await engine.listUserSessions("dee")).toEqual([]);
  });

  test("an id change that wins the race keeps its handle, and the revocation then ends it", async () => {
    const { begin, engine, signIn, userOf } = await setup();
    const id = await signIn("eve");
    const [before] = await engine.listUserSessions("eve");
    const inFlight = await begin(id, async (s) => {
      await (await AuthSession.open(s)).rotate();
    });
    const answer = await inFlight.commit();
    const moved = answer.cookieId as string;
    expect(moved).not.toBe(id);
    const [after] = await engine.listUserSessions("eve");
    expect(after?.handle).toBe(before?.handle);
    expect(await engine.revokeUserSession("eve", after?.handle as string)).toBe(true);
    expect(await userOf(moved)).toBeNull();
    expect(await userOf(id)).toBeNull();
  });
});
