import { describe, expect, test } from "vitest";
import { newMeta } from "../../src/core/expiry.js";
import type { SessionWrite } from "../../src/core/store.js";
import { MemoryStore } from "../../src/stores/memory.js";

const T0 = Date.UTC(2026, 0, 1);
const policy = { expirySecs: 60, inactivityTimeoutSecs: 0 };
const write = (now: number, value = "1", expirySecs = 60): SessionWrite => ({
  set: { v: JSON.stringify(value) },
  del: [],
  meta: newMeta({ ...policy, expirySecs }, now),
});
const id = (n: number) => `id${String(n).padStart(30, "0")}`;

describe("memory store limits", () => {
  test("expired records are reclaimed as the store is used, without a full scan", async () => {
    const store = new MemoryStore();
    for (let i = 0; i < 1000; i++) await store.write(id(i), write(T0), "create", T0);
    expect(store.size).toBe(1000);
    // Each call reclaims a bounded number of due records; steady traffic drains them all.
    const later = T0 + 61_000;
    for (let i = 0; i < 200; i++) await store.load(id(5000 + i), later);
    expect(store.size).toBe(0);
  });

  test("a renewed (idle) record is not reclaimed at its old deadline", async () => {
    const store = new MemoryStore();
    const idle = (now: number): SessionWrite => ({
      set: { v: "1" },
      del: [],
      meta: newMeta({ expirySecs: 0, inactivityTimeoutSecs: 10 }, now),
    });
    await store.write(id(1), idle(T0), "create", T0);
    expect(await store.load(id(1), T0 + 9_000)).not.toBeNull();
    for (let i = 0; i < 20; i++) await store.load(id(99), T0 + 12_000);
    expect(store.size).toBe(1);
    expect(await store.load(id(1), T0 + 18_000)).not.toBeNull();
    expect(await store.load(id(1), T0 + 28_001)).toBeNull();
  });

  test("the cap evicts the record closest to its deadline", async () => {
    const store = new MemoryStore({ maxSessions: 3 });
    await store.write(id(1), write(T0, "a", 300), "create", T0);
    await store.write(id(2), write(T0, "b", 100), "create", T0); // expires first
    await store.write(id(3), write(T0, "c", 200), "create", T0);
    await store.write(id(4), write(T0, "d", 400), "create", T0);
    expect(store.size).toBe(3);
    expect(await store.load(id(2), T0)).toBeNull();
    for (const n of [1, 3, 4]) expect(await store.load(id(n), T0)).not.toBeNull();
  });

  test("the heap does not grow without bound when records are destroyed", async () => {
    const store = new MemoryStore();
    for (let i = 0; i < 20_000; i++) {
      await store.write(id(i), write(T0), "create", T0);
      await store.destroy(id(i));
    }
    const { records, scheduled } = store.stats();
    expect(records).toBe(0);
    expect(scheduled).toBeLessThanOrEqual(1025);
  });

  test("values are copied in and out", async () => {
    const store = new MemoryStore();
    const set = { v: '"x"' };
    await store.write(id(1), { set, del: [], meta: newMeta(policy, T0) }, "create", T0);
    set.v = '"mutated"';
    const loaded = await store.load(id(1), T0);
    expect(loaded?.fields.v).toBe('"x"');
  });
});
