import { expect, test } from "vitest";
import type { SessionMeta } from "../core/expiry.js";
import { generateId } from "../core/id.js";
import { MemoryStore } from "./memory.js";

const T0 = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;

/** Idle timeout of 10 minutes inside a lifetime of a day: the shape of a signed-in session. */
const idle = (now: number): SessionMeta => ({
  createdAt: now,
  absoluteAt: now + 1440 * MINUTE,
  idleMs: 10 * MINUTE,
});

async function create(store: MemoryStore, now: number): Promise<string> {
  const id = generateId();
  expect(await store.write(id, { set: { v: "1" }, del: [], meta: idle(now) }, "create", now)).toBe(
    true,
  );
  return id;
}

test("at the cap the record closest to its real deadline goes, not the one renewed by use", async () => {
  const store = new MemoryStore({ maxSessions: 3 });
  const active = await create(store, T0);
  const idleOne = await create(store, T0 + 1);
  const idleTwo = await create(store, T0 + 2);
  // The active user comes back: renewed to T0 + 19 min, while the others end at T0 + 10 min.
  expect(await store.load(active, T0 + 9 * MINUTE)).not.toBeNull();
  await create(store, T0 + 9 * MINUTE + 1);
  expect(store.size).toBe(3);
  expect(await store.load(active, T0 + 9 * MINUTE + 2)).not.toBeNull();
  expect(await store.load(idleOne, T0 + 9 * MINUTE + 2)).toBeNull();
  expect(await store.load(idleTwo, T0 + 9 * MINUTE + 2)).not.toBeNull();
});

test("a flood of new sessions at the cap evicts idle visitors before the active users", async () => {
  const store = new MemoryStore({ maxSessions: 100 });
  const users: string[] = [];
  for (let i = 0; i < 20; i++) users.push(await create(store, T0));
  let now = T0;
  for (let round = 0; round < 15; round++) {
    // Every two minutes the signed-in users are active (more than a tenth of their 10-minute idle
    // timeout, so each visit renews), and a burst of new visitors arrives.
    now += 2 * MINUTE;
    for (const user of users) expect(await store.load(user, now)).not.toBeNull();
    for (let i = 0; i < 50; i++) await create(store, now);
    expect(store.size).toBeLessThanOrEqual(100);
  }
  for (const user of users) expect(await store.load(user, now)).not.toBeNull();
});

test("a shortened lifetime is evicted and reclaimed by its new deadline", async () => {
  const store = new MemoryStore({ maxSessions: 2 });
  const long = await create(store, T0);
  const shortened = await create(store, T0);
  const meta = { createdAt: T0, absoluteAt: T0 + MINUTE, idleMs: 0 };
  expect(await store.write(shortened, { set: {}, del: [], meta }, "update", T0)).toBe(true);
  await create(store, T0 + 1);
  expect(await store.load(shortened, T0 + 2)).toBeNull();
  expect(await store.load(long, T0 + 2)).not.toBeNull();
});

test("times from a fractional clock come back exactly, and expire on time", async () => {
  const store = new MemoryStore();
  const id = generateId();
  const now = T0 + 0.1;
  const meta = { createdAt: now, absoluteAt: now + 86_400_000.7, idleMs: 0, maxAgeSecs: 86_400 };
  expect(await store.write(id, { set: { v: "1" }, del: [], meta }, "create", now)).toBe(true);
  expect((await store.load(id, now + 1))?.meta).toEqual(meta);
  expect(await store.load(id, meta.absoluteAt - 0.01)).not.toBeNull();
  expect(await store.load(id, meta.absoluteAt)).toBeNull();
});

test("a new lifetime moves the record's base time without moving its deadline", async () => {
  const store = new MemoryStore();
  const id = await create(store, T0);
  // A lifetime written at T0 + 5 min with a later createdAt (as a cycled session may carry).
  const meta = { createdAt: T0 + 5 * MINUTE, absoluteAt: T0 + 60 * MINUTE, idleMs: 10 * MINUTE };
  expect(await store.write(id, { set: {}, del: [], meta }, "update", T0 + 5 * MINUTE)).toBe(true);
  expect((await store.load(id, T0 + 6 * MINUTE))?.meta).toEqual(meta);
  expect(await store.load(id, T0 + 15 * MINUTE - 1)).not.toBeNull();
  expect(await store.load(id, T0 + 60 * MINUTE)).toBeNull();
});
