import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import type { SessionMeta } from "../core/expiry.js";
import { generateId } from "../core/id.js";
import {
  type IndexEntry,
  inheritsNothing,
  type SessionStore,
  type SessionWrite,
  type UserIndexStore,
} from "../core/store.js";
import { refOf } from "../core/user-index.js";

/** A test or hook body. */
export type TestBody = () => void | Promise<void>;

/**
 * The few functions of your test runner the suite needs: vitest, jest and `node:test` all have
 * them (`import { describe, test, beforeEach, afterEach } from "vitest"`, or `it` as `test`).
 */
export interface TestRunner {
  describe(name: string, body: () => void): unknown;
  test(name: string, body: TestBody): unknown;
  beforeEach(body: TestBody): unknown;
  afterEach(body: TestBody): unknown;
}

/** JSON data as compared by the suite: prototypes and undefined members ignored. */
function data(value: unknown): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

/** The matchers the suite uses, on node:assert, so it runs under any test runner. */
function expect(actual: unknown) {
  const is = (expected: unknown) =>
    ok(Object.is(actual, expected), `expected ${String(actual)} to be ${String(expected)}`);
  return {
    toBe: is,
    toEqual: (expected: unknown) => deepStrictEqual(data(actual), data(expected)),
    toBeNull: () => is(null),
    toBeUndefined: () => is(undefined),
    toHaveLength: (length: number) => strictEqual((actual as { length: number }).length, length),
    toBeGreaterThan: (n: number) => ok((actual as number) > n, `expected ${actual} > ${n}`),
    toBeLessThanOrEqual: (n: number) => ok((actual as number) <= n, `expected ${actual} <= ${n}`),
    not: { toBeNull: () => ok(actual !== null, "expected a value, got null") },
  };
}

/** Backend probes a store's test file may offer; the suite checks more when they are given. */
export interface StoreProbes {
  /** Remaining time to live of the record's backend key in ms, or null when the key is missing. */
  ttlOf?(store: SessionStore, id: string): Promise<number | null>;
  /** `false` for a store without locks (`acquireLock`/`releaseLock`): the lock tests are skipped. */
  locks?: boolean;
  /** `true` to also check the optional per-user session index (`UserIndexStore`). */
  userIndex?: boolean;
}

/** A fixed, fake epoch: stores must take time from the `now` argument, never from their own clock. */
const T0 = Date.UTC(2026, 0, 1);
const PROTO = "__proto__";

function fields(entries: Record<string, unknown>): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  for (const [key, value] of Object.entries(entries)) out[key] = JSON.stringify(value);
  return out;
}

function meta(overrides: Partial<SessionMeta> = {}): SessionMeta {
  return { createdAt: T0, absoluteAt: T0 + 3_600_000, idleMs: 0, ...overrides };
}

function write(set: Record<string, string>, del: string[] = [], m = meta()): SessionWrite {
  return { set, del, meta: m };
}

function plain(record: Record<string, string>): Record<string, string> {
  return { ...record };
}

/**
 * The store contract (`RecordStore` and `LockStore` from `coatcheck/adapter-kit`) as one suite:
 * every built-in store passes it, and so must yours. Call it from a test file of your own with your
 * runner's functions; `makeStore` is called before each test, and the store is closed after it.
 * Give it a fresh, empty store (or a unique key prefix) each time.
 *
 * @example
 * ```ts
 * import { afterEach, beforeEach, describe, test } from "vitest";
 * import { describeStoreConformance } from "coatcheck/testing";
 * import { MyStore } from "./my-store.js";
 *
 * describeStoreConformance("MyStore", () => new MyStore(), { describe, test, beforeEach, afterEach });
 * ```
 */
export function describeStoreConformance(
  name: string,
  makeStore: () => SessionStore | Promise<SessionStore>,
  runner: TestRunner,
  probes: StoreProbes = {},
): void {
  const { describe, test, beforeEach, afterEach } = runner;
  describe(`store conformance: ${name}`, () => {
    let store: SessionStore;

    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await store.close?.();
    });

    test("a missing record loads as null", async () => {
      expect(await store.load(generateId(), T0)).toBeNull();
    });

    test("create stores fields and metadata; load returns them", async () => {
      const id = generateId();
      const m = meta({ idleMs: 60_000, maxAgeSecs: 3600 });
      expect(
        await store.write(id, write(fields({ user: "alice", n: 1 }), [], m), "create", T0),
      ).toBe(true);
      const got = await store.load(id, T0 + 1);
      expect(got).not.toBeNull();
      expect(plain(got?.fields ?? {})).toEqual({ user: '"alice"', n: "1" });
      expect(got?.meta).toEqual(m);
    });

    test("create refuses an existing id and leaves the record alone", async () => {
      const id = generateId();
      expect(await store.write(id, write(fields({ a: 1 })), "create", T0)).toBe(true);
      expect(await store.write(id, write(fields({ a: 2, b: 3 })), "create", T0)).toBe(false);
      expect(plain((await store.load(id, T0))?.fields ?? {})).toEqual({ a: "1" });
    });

    test("update refuses a missing id and does not create it", async () => {
      const id = generateId();
      expect(await store.write(id, write(fields({ a: 1 })), "update", T0)).toBe(false);
      expect(await store.load(id, T0)).toBeNull();
    });

    test("no resurrection: update after destroy or claim fails", async () => {
      const destroyed = generateId();
      await store.write(destroyed, write(fields({ a: 1 })), "create", T0);
      await store.destroy(destroyed);
      expect(await store.write(destroyed, write(fields({ b: 2 })), "update", T0)).toBe(false);
      expect(await store.load(destroyed, T0)).toBeNull();

      const claimed = generateId();
      await store.write(claimed, write(fields({ a: 1 })), "create", T0);
      expect(await store.claim(claimed, T0)).not.toBeNull();
      expect(await store.write(claimed, write(fields({ b: 2 })), "update", T0)).toBe(false);
      expect(await store.load(claimed, T0)).toBeNull();
    });

    test("destroying a missing record is not an error", async () => {
      expect(await store.destroy(generateId())).toBeUndefined();
    });

    test("two writers changing different keys both persist (per-key merge)", async () => {
      const id = generateId();
      await store.write(id, write(fields({ base: 0, gone: 1 })), "create", T0);
      await Promise.all([
        store.write(id, write(fields({ a: "from-a" })), "update", T0 + 1),
        store.write(id, write(fields({ b: "from-b" }), ["gone"]), "update", T0 + 1),
      ]);
      expect(plain((await store.load(id, T0 + 2))?.fields ?? {})).toEqual({
        base: "0",
        a: '"from-a"',
        b: '"from-b"',
      });
    });

    test("an update that leaves no keys deletes the record", async () => {
      const id = generateId();
      await store.write(id, write(fields({ a: 1, b: 2 })), "create", T0);
      expect(await store.write(id, write(fields({}), ["a", "b"]), "update", T0)).toBe(true);
      expect(await store.load(id, T0)).toBeNull();
      expect(await store.write(id, write(fields({ c: 3 })), "update", T0)).toBe(false);
      if (probes.ttlOf) expect(await probes.ttlOf(store, id)).toBeNull();
    });

    test("idle timeout: a load renews the deadline; an idle record expires", async () => {
      const id = generateId();
      const m = meta({ idleMs: 1000 });
      await store.write(id, write(fields({ a: 1 }), [], m), "create", T0);
      expect(await store.load(id, T0 + 900)).not.toBeNull();
      expect(await store.load(id, T0 + 1800)).not.toBeNull();
      expect(await store.load(id, T0 + 2700)).not.toBeNull();
      expect(await store.load(id, T0 + 3701)).toBeNull();
    });

    test("loads within a tenth of the idle timeout do not renew it; one after that does", async () => {
      const m = meta({ idleMs: 1000 });
      const kept = generateId();
      await store.write(kept, write(fields({ a: 1 }), [], m), "create", T0);
      // Renewing would move the deadline by at most 100 ms, a tenth of the timeout: left alone.
      for (const t of [20, 40, 60, 80, 100]) expect(await store.load(kept, T0 + t)).not.toBeNull();
      // So the record dies a timeout after its creation, not after the last of those loads.
      expect(await store.load(kept, T0 + 1000)).toBeNull();

      const renewed = generateId();
      await store.write(renewed, write(fields({ a: 1 }), [], m), "create", T0);
      expect(await store.load(renewed, T0 + 101)).not.toBeNull();
      expect(await store.load(renewed, T0 + 1100)).not.toBeNull();
      // Idle for exactly the timeout after the last renewal: gone.
      expect(await store.load(renewed, T0 + 2100)).toBeNull();
    });

    test("an update renews the idle deadline too; an update after expiry fails", async () => {
      const id = generateId();
      const m = meta({ idleMs: 1000 });
      await store.write(id, write(fields({ a: 1 }), [], m), "create", T0);
      expect(await store.write(id, write(fields({ b: 2 }), [], m), "update", T0 + 900)).toBe(true);
      expect(await store.load(id, T0 + 1800)).not.toBeNull();
      expect(await store.write(id, write(fields({ c: 3 }), [], m), "update", T0 + 2801)).toBe(
        false,
      );
      expect(await store.load(id, T0 + 2801)).toBeNull();
    });

    test("the absolute deadline caps idle renewal", async () => {
      const id = generateId();
      const m = meta({ idleMs: 1000, absoluteAt: T0 + 2500 });
      await store.write(id, write(fields({ a: 1 }), [], m), "create", T0);
      expect(await store.load(id, T0 + 900)).not.toBeNull();
      expect(await store.load(id, T0 + 1800)).not.toBeNull();
      expect(await store.load(id, T0 + 2400)).not.toBeNull();
      expect(await store.load(id, T0 + 2501)).toBeNull();
    });

    test("a record without idle timeout lives until its absolute deadline", async () => {
      const id = generateId();
      await store.write(
        id,
        write(fields({ a: 1 }), [], meta({ absoluteAt: T0 + 5000 })),
        "create",
        T0,
      );
      expect(await store.load(id, T0 + 4999)).not.toBeNull();
      expect(await store.load(id, T0 + 5000)).toBeNull();
    });

    if (probes.ttlOf) {
      const ttlOf = probes.ttlOf;
      // Real time passes between the write and the probe, so allow a little slack below.
      const near = (ttl: number | null, want: number) => {
        expect(ttl).not.toBeNull();
        expect(ttl as number).toBeLessThanOrEqual(want);
        expect(ttl as number).toBeGreaterThan(want - 5000);
      };

      test("every write and every load sets the backend TTL from deadlineOf", async () => {
        const id = generateId();
        const m = meta({ idleMs: 60_000, absoluteAt: T0 + 100_000 });
        await store.write(id, write(fields({ a: 1 }), [], m), "create", T0);
        near(await ttlOf(store, id), 60_000);
        await store.load(id, T0 + 30_000);
        near(await ttlOf(store, id), 60_000);
        await store.write(id, write(fields({ b: 1 }), [], m), "update", T0 + 60_000);
        near(await ttlOf(store, id), 40_000);
        // Capped by the absolute deadline, the load has nothing to renew: the TTL is the write's.
        await store.load(id, T0 + 90_000);
        near(await ttlOf(store, id), 40_000);
      });

      test("a record without idle timeout gets the absolute deadline as TTL", async () => {
        const id = generateId();
        const m = meta({ absoluteAt: T0 + 86_400_000 });
        await store.write(id, write(fields({ a: 1 }), [], m), "create", T0 + 400_000);
        near(await ttlOf(store, id), 86_000_000);
      });
    }

    test("claim returns the record and deletes it, once", async () => {
      const id = generateId();
      const m = meta({ idleMs: 60_000 });
      await store.write(id, write(fields({ a: 1, b: 2 }), [], m), "create", T0);
      const claimed = await store.claim(id, T0 + 1);
      expect(plain(claimed?.fields ?? {})).toEqual({ a: "1", b: "2" });
      expect(claimed?.meta).toEqual(m);
      expect(await store.claim(id, T0 + 1)).toBeNull();
      expect(await store.load(id, T0 + 1)).toBeNull();
    });

    test("claim of an expired record returns null", async () => {
      const id = generateId();
      await store.write(id, write(fields({ a: 1 }), [], meta({ idleMs: 1000 })), "create", T0);
      expect(await store.claim(id, T0 + 1001)).toBeNull();
      expect(await store.load(id, T0)).toBeNull();
    });

    test("parallel claims: exactly one wins", async () => {
      const id = generateId();
      await store.write(id, write(fields({ a: 1 })), "create", T0);
      const results = await Promise.all(Array.from({ length: 10 }, () => store.claim(id, T0)));
      expect(results.filter((r) => r !== null)).toHaveLength(1);
    });

    test("take returns and deletes only the keys that exist, leaving the rest", async () => {
      const id = generateId();
      await store.write(
        id,
        write(fields({ "flash.1": "hi", "flash.2": "yo", keep: 1 })),
        "create",
        T0,
      );
      const got = await store.take(id, ["flash.1", "flash.2", "flash.3"]);
      expect(plain(got)).toEqual({ "flash.1": '"hi"', "flash.2": '"yo"' });
      expect(plain((await store.load(id, T0))?.fields ?? {})).toEqual({ keep: "1" });
      expect(plain(await store.take(id, ["flash.1"]))).toEqual({});
      expect(plain(await store.take(generateId(), ["flash.1"]))).toEqual({});
    });

    test("parallel takes of one key: exactly one caller gets it", async () => {
      const id = generateId();
      await store.write(id, write(fields({ flash: "once", keep: 1 })), "create", T0);
      const results = await Promise.all(
        Array.from({ length: 20 }, () => store.take(id, ["flash"])),
      );
      const winners = results.filter((r) => r.flash !== undefined);
      expect(winners).toHaveLength(1);
      expect(winners[0]?.flash).toBe('"once"');
    });

    const locks = () => {
      if (typeof store.acquireLock !== "function" || typeof store.releaseLock !== "function") {
        throw new Error(`${name} has no locks; pass { locks: false } to skip the lock tests`);
      }
      return store as Required<SessionStore>;
    };

    if (probes.locks !== false) {
      test("acquireLock: one holder at a time; releaseLock needs the holder's token", async () => {
        const s = locks();
        const id = generateId();
        expect(await s.acquireLock(id, "token-a", 10_000)).toBe(true);
        expect(await s.acquireLock(id, "token-b", 10_000)).toBe(false);
        await s.releaseLock(id, "not-the-token");
        expect(await s.acquireLock(id, "token-b", 10_000)).toBe(false);
        expect(await s.acquireLock(generateId(), "token-b", 10_000)).toBe(true);
        await s.releaseLock(id, "token-a");
        expect(await s.acquireLock(id, "token-b", 10_000)).toBe(true);
        await s.releaseLock(id, "token-b");
      });

      test("releaseLock is idempotent: twice, or for a lock never taken", async () => {
        const s = locks();
        const id = generateId();
        expect(await s.releaseLock(id, "never")).toBeUndefined();
        expect(await s.acquireLock(id, "t", 10_000)).toBe(true);
        await s.releaseLock(id, "t");
        expect(await s.releaseLock(id, "t")).toBeUndefined();
        expect(await s.acquireLock(id, "u", 10_000)).toBe(true);
        await s.releaseLock(id, "u");
      });

      test("parallel acquireLock: exactly one wins", async () => {
        const s = locks();
        const id = generateId();
        const held = await Promise.all(
          Array.from({ length: 10 }, (_, i) => s.acquireLock(id, `t${i}`, 10_000)),
        );
        expect(held.filter(Boolean)).toHaveLength(1);
        await s.releaseLock(id, `t${held.indexOf(true)}`);
      });

      test("a lock frees itself after its TTL", async () => {
        const s = locks();
        const id = generateId();
        expect(await s.acquireLock(id, "first", 40)).toBe(true);
        // The lock TTL is real time by contract (it guards real requests), so this test waits.
        await new Promise((r) => setTimeout(r, 120));
        expect(await s.acquireLock(id, "next", 10_000)).toBe(true);
        // The expired holder's late release must not free the new holder's lock.
        await s.releaseLock(id, "first");
        expect(await s.acquireLock(id, "third", 10_000)).toBe(false);
        await s.releaseLock(id, "next");
      });

      test("the lock is independent of the record", async () => {
        const s = locks();
        const id = generateId();
        await store.write(id, write(fields({ a: 1 })), "create", T0);
        expect(await s.acquireLock(id, "t", 10_000)).toBe(true);
        expect(await store.load(id, T0)).not.toBeNull();
        await store.destroy(id);
        expect(await s.acquireLock(id, "u", 10_000)).toBe(false);
        await s.releaseLock(id, "t");
      });
    }

    test("inProcess is a boolean the store declares", () => {
      expect(typeof store.inProcess).toBe("boolean");
    });

    test("an update without metadata keeps the stored lifetime", async () => {
      const id = generateId();
      const m = meta({ absoluteAt: T0 + 30 * 86_400_000, maxAgeSecs: 30 * 86_400 });
      await store.write(id, write(fields({ a: 1 })), "create", T0);
      // A parallel request's setExpiry…
      expect(await store.write(id, write(fields({}), [], m), "update", T0 + 1)).toBe(true);
      // …is not undone by a request that only changed a key.
      expect(await store.write(id, { set: fields({ b: 2 }), del: [] }, "update", T0 + 2)).toBe(
        true,
      );
      const got = await store.load(id, T0 + 3);
      expect(got?.meta).toEqual(m);
      expect(plain(got?.fields ?? {})).toEqual({ a: "1", b: "2" });
      // The stored deadline still holds: alive a day before it, gone after.
      expect(await store.load(id, T0 + 29 * 86_400_000)).not.toBeNull();
      expect(await store.load(id, T0 + 30 * 86_400_000 + 1)).toBeNull();
    });

    test("an update without metadata renews the idle deadline from the stored metadata", async () => {
      const id = generateId();
      await store.write(id, write(fields({ a: 1 }), [], meta({ idleMs: 1000 })), "create", T0);
      expect(await store.write(id, { set: fields({ b: 2 }), del: [] }, "update", T0 + 900)).toBe(
        true,
      );
      expect(await store.load(id, T0 + 1800)).not.toBeNull();
      expect(await store.load(id, T0 + 2801)).toBeNull();
    });

    test("an update's `loaded` hint is checked against the record, never trusted", async () => {
      const loaded = meta();
      // Another request gave the session a new lifetime after this one loaded it.
      const moved = generateId();
      const later = meta({ absoluteAt: T0 + 7_200_000, maxAgeSecs: 7200 });
      await store.write(moved, write(fields({ a: 1 }), [], loaded), "create", T0);
      expect(await store.write(moved, write(fields({}), [], later), "update", T0 + 1)).toBe(true);
      const hinted = (set: Record<string, string>): SessionWrite => ({ set, del: [], loaded });
      expect(await store.write(moved, hinted(fields({ b: 2 })), "update", T0 + 2)).toBe(true);
      expect((await store.load(moved, T0 + 3))?.meta).toEqual(later);
      expect(await store.load(moved, T0 + 3_600_001)).not.toBeNull();
      // The stored record has an idle timeout the hint does not show: the update renews it.
      const idle = generateId();
      await store.write(idle, write(fields({ a: 1 }), [], meta({ idleMs: 1000 })), "create", T0);
      expect(await store.write(idle, hinted(fields({ b: 2 })), "update", T0 + 900)).toBe(true);
      expect(await store.load(idle, T0 + 1800)).not.toBeNull();
      expect(await store.load(idle, T0 + 2801)).toBeNull();
      // Destroyed, or past its deadline: refused, and nothing comes back.
      const gone = generateId();
      await store.write(gone, write(fields({ a: 1 }), [], loaded), "create", T0);
      await store.destroy(gone);
      expect(await store.write(gone, hinted(fields({ b: 2 })), "update", T0 + 1)).toBe(false);
      expect(await store.load(gone, T0 + 1)).toBeNull();
      const ended = generateId();
      await store.write(ended, write(fields({ a: 1 }), [], loaded), "create", T0);
      expect(await store.write(ended, hinted(fields({ b: 2 })), "update", loaded.absoluteAt)).toBe(
        false,
      );
      expect(await store.load(ended, loaded.absoluteAt)).toBeNull();
    });

    test("a late reply's retry: the same update applied twice gives the same record", async () => {
      const id = generateId();
      await store.write(id, write(fields({ a: 1, gone: 2 })), "create", T0);
      const change = { set: fields({ b: 3 }), del: ["gone"] };
      expect(await store.write(id, change, "update", T0 + 1)).toBe(true);
      expect(await store.write(id, change, "update", T0 + 2)).toBe(true);
      expect(plain((await store.load(id, T0 + 3))?.fields ?? {})).toEqual({ a: "1", b: "3" });
    });

    test("a claimed record written back with create under its id is whole again (late claim)", async () => {
      const id = generateId();
      const m = meta({ idleMs: 60_000, maxAgeSecs: 3600 });
      await store.write(id, write(fields({ a: 1, b: 2 }), [], m), "create", T0);
      const claimed = await store.claim(id, T0 + 1);
      expect(claimed).not.toBeNull();
      const back = { set: claimed?.fields ?? {}, del: [], meta: claimed?.meta as SessionMeta };
      expect(await store.write(id, back, "create", T0 + 2)).toBe(true);
      const got = await store.load(id, T0 + 3);
      expect(plain(got?.fields ?? {})).toEqual({ a: "1", b: "2" });
      expect(got?.meta).toEqual(m);
    });

    test("a create without metadata is refused", async () => {
      const id = generateId();
      expect(await store.write(id, { set: fields({ a: 1 }), del: [] }, "create", T0)).toBe(false);
      expect(await store.load(id, T0)).toBeNull();
    });

    test("a record without any deadline still ends within 400 days", async () => {
      const id = generateId();
      await store.write(id, write(fields({ a: 1 }), [], meta({ absoluteAt: 0 })), "create", T0);
      expect(await store.load(id, T0 + 401 * 86_400_000)).toBeNull();
    });

    test("keys named __proto__, constructor and prototype stay plain keys", async () => {
      const id = generateId();
      // Built by assignment: in an object literal, `__proto__:` would set the prototype instead.
      const set = fields({ constructor: "c", prototype: "p" });
      set[PROTO] = JSON.stringify({ polluted: true });
      await store.write(id, write(set), "create", T0);
      await store.write(id, write(fields({ hasOwnProperty: 1 })), "update", T0);
      const got = await store.load(id, T0);
      const f = got?.fields as Record<string, string>;
      expect(inheritsNothing(f)).toBe(true);
      expect("toString" in f).toBe(false);
      expect(Object.keys(f).sort()).toEqual([
        "__proto__",
        "constructor",
        "hasOwnProperty",
        "prototype",
      ]);
      expect(Object.hasOwn(f, "__proto__")).toBe(true);
      expect(f[PROTO]).toBe('{"polluted":true}');
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      const taken = await store.take(id, [PROTO, "toString"]);
      expect(Object.keys(taken)).toEqual([PROTO]);
      expect(inheritsNothing(taken)).toBe(true);
      const claimed = await store.claim(id, T0);
      expect(inheritsNothing(claimed?.fields ?? {})).toBe(true);
      expect(Object.keys(claimed?.fields ?? {}).sort()).toEqual([
        "constructor",
        "hasOwnProperty",
        "prototype",
      ]);
    });

    test("values round-trip byte for byte (unicode, newlines, large values)", async () => {
      const id = generateId();
      const big = "x".repeat(200_000);
      const set = fields({
        text: 'héllo 👋\n\t"quoted" \u0000 end',
        big,
        nested: { a: [1, null] },
      });
      set["key with spaces/and:colons"] = "true";
      await store.write(id, write(set), "create", T0);
      expect(plain((await store.load(id, T0))?.fields ?? {})).toEqual(plain(set));
    });

    if (probes.userIndex === true) describeUserIndex(() => store, name, test);
  });
}

/** An index entry for session `id`, deadline one hour after T0. */
function indexEntry(id: string, handle: string, overrides: Partial<IndexEntry> = {}): IndexEntry {
  return {
    ref: refOf(id),
    handle,
    createdAt: T0,
    updatedAt: T0,
    deadline: T0 + 3_600_000,
    userAgent: "Agent/1",
    address: "192.0.2.1",
    ...overrides,
  };
}

function describeUserIndex(
  current: () => SessionStore,
  name: string,
  test: TestRunner["test"],
): void {
  const index = () => {
    const s = current();
    if (typeof s.indexPut !== "function" || typeof s.peek !== "function") {
      throw new Error(`${name} has no user index; leave out { userIndex: true }`);
    }
    return s as SessionStore & UserIndexStore;
  };
  const H1 = "AAAAAAAAAAAAAAAAAAAAAA";
  const H2 = "BBBBBBBBBBBBBBBBBBBBBB";
  const H3 = "CCCCCCCCCCCCCCCCCCCCCC";
  const byHandle = (entries: IndexEntry[]) =>
    [...entries].sort((a, b) => (a.handle < b.handle ? -1 : 1));

  test("user index: put and list; an entry past its deadline is gone", async () => {
    const s = index();
    // Fresh users: a store may share its tables with other tests (PostgreSQL).
    const [u1, u2] = [`user-${generateId()}`, `user-${generateId()}`];
    const [a, b] = [generateId(), generateId()];
    const ea = indexEntry(a, H1);
    const eb = indexEntry(b, H2, { deadline: T0 + 60_000, userAgent: null, address: null });
    expect(await s.indexPut(u1, ea, a, null, T0, 0)).toBeGreaterThan(0);
    expect(await s.indexPut(u1, eb, b, null, T0, 0)).toBeGreaterThan(0);
    expect(byHandle(await s.indexList(u1, T0))).toEqual([ea, eb]);
    expect(await s.indexList(u2, T0)).toEqual([]);
    expect(await s.indexList(u1, T0 + 60_000)).toEqual([ea]);
  });

  test("user index: put with replaces moves an entry, and refuses once it is gone", async () => {
    const s = index();
    // Fresh users: a store may share its tables with other tests (PostgreSQL).
    const [u1, u2] = [`user-${generateId()}`, `user-${generateId()}`];
    const [a, b, c] = [generateId(), generateId(), generateId()];
    await s.indexPut(u1, indexEntry(a, H1), a, null, T0, 0);
    const moved = indexEntry(b, H1, { updatedAt: T0 + 5 });
    expect(await s.indexPut(u1, moved, b, refOf(a), T0 + 5, 0)).toBeGreaterThan(0);
    expect(await s.indexList(u1, T0 + 5)).toEqual([moved]);
    expect(await s.indexPut(u1, indexEntry(c, H1), c, refOf(a), T0 + 6, 0)).toBe(0);
    expect(await s.indexList(u1, T0 + 6)).toEqual([moved]);
    // Another user's entry is never the one replaced.
    expect(await s.indexPut(u2, indexEntry(c, H1), c, refOf(b), T0 + 6, 0)).toBe(0);
    expect(await s.indexList(u2, T0 + 6)).toEqual([]);
  });

  test("user index: a put drops the entry with the same ref or handle and counts to limit + 1", async () => {
    const s = index();
    // Fresh users: a store may share its tables with other tests (PostgreSQL).
    const u1 = `user-${generateId()}`;
    const [a, b, c] = [generateId(), generateId(), generateId()];
    expect(await s.indexPut(u1, indexEntry(a, H1), a, null, T0, 5)).toBe(1);
    expect(await s.indexPut(u1, indexEntry(b, H2), b, null, T0, 5)).toBe(2);
    // Same handle, another session: replaces the entry of that handle.
    const c1 = indexEntry(c, H1, { userAgent: "Agent/2" });
    expect(await s.indexPut(u1, c1, c, null, T0, 5)).toBe(2);
    // Same session, another handle: replaces the entry of that session.
    const c3 = indexEntry(c, H3, { userAgent: "Agent/3" });
    expect(await s.indexPut(u1, c3, c, null, T0, 5)).toBe(2);
    expect(byHandle(await s.indexList(u1, T0))).toEqual([indexEntry(b, H2), c3]);
    // A count may stop at limit + 1, never below it.
    const d = generateId();
    const counted = await s.indexPut(u1, indexEntry(d, H1), d, null, T0, 1);
    expect(counted).toBeGreaterThan(1);
    expect(counted).toBeLessThanOrEqual(3);
    expect(await s.indexPut(u1, indexEntry(d, H1), d, null, T0, 0)).toBeGreaterThan(0);
    expect(await s.indexPut(u1, indexEntry(d, H1), d, refOf(d), T0 + 1, 10)).toBe(3);
    // Entries past their deadline are not counted.
    const late = indexEntry(a, H2, { deadline: T0 + 7_200_000 });
    expect(await s.indexPut(u1, late, a, null, T0 + 3_600_000, 10)).toBe(1);
  });

  test("user index: remove by refs, by handles, all but one; destroy deletes the records", async () => {
    const s = index();
    // Fresh users: a store may share its tables with other tests (PostgreSQL).
    const [u1, u2] = [`user-${generateId()}`, `user-${generateId()}`];
    const ids = [generateId(), generateId(), generateId()];
    const handles = [H1, H2, H3];
    for (let i = 0; i < 3; i++) {
      const id = ids[i] as string;
      await s.write(id, write(fields({ n: i })), "create", T0);
      await s.indexPut(u1, indexEntry(id, handles[i] as string), id, null, T0, 0);
    }
    const [a, b, c] = ids as [string, string, string];
    expect(await s.indexRemove(u2, { handles: [H1] }, T0, true)).toEqual([]);
    const first = await s.indexRemove(u1, { refs: [refOf(a)] }, T0, false);
    expect(first.map((e) => e.handle)).toEqual([H1]);
    expect(await s.load(a, T0)).not.toBeNull();
    const second = await s.indexRemove(u1, { handles: [H2, "nobody"] }, T0, true);
    expect(second.map((e) => e.ref)).toEqual([refOf(b)]);
    expect(await s.load(b, T0)).toBeNull();
    expect(await s.indexRemove(u1, { allExcept: H3 }, T0, true)).toEqual([]);
    const rest = await s.indexRemove(u1, { allExcept: null }, T0, true);
    expect(rest.map((e) => e.handle)).toEqual([H3]);
    expect(await s.load(c, T0)).toBeNull();
    expect(await s.indexList(u1, T0)).toEqual([]);
  });

  test("user index: peek reads deadline and metadata without renewing", async () => {
    const s = index();
    // Fresh users: a store may share its tables with other tests (PostgreSQL).
    const u1 = `user-${generateId()}`;
    const id = generateId();
    const m = meta({ idleMs: 60_000 });
    await s.write(id, write(fields({ a: 1 }), [], m), "create", T0);
    // Refs are resolved for the sessions the index holds.
    await s.indexPut(u1, indexEntry(id, H1), id, null, T0, 0);
    const [seen, missing] = await s.peek([refOf(id), refOf(generateId())], T0 + 30_000);
    expect(seen?.deadline).toBe(T0 + 60_000);
    expect(seen?.meta).toEqual(m);
    expect(missing).toBeNull();
    // The peek did not renew: the record dies at its first idle deadline.
    expect(await s.load(id, T0 + 60_000)).toBeNull();
    expect(await s.peek([refOf(id)], T0 + 60_000)).toEqual([null]);
  });
}
