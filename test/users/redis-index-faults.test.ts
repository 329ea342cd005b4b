import { randomBytes } from "node:crypto";
import { expect, test } from "vitest";
import type { IndexEntry } from "../../src/core/store.js";
import { refOf } from "../../src/core/user-index.js";
import { RedisUserIndex } from "../../src/stores/redis-index.js";
import { uniquePrefix } from "../support/redis.js";
import { indexEntry, sharedRedisClient } from "./fixtures/index-entries.js";
import { RedisUserIndex as OldRedisUserIndex } from "./fixtures/old-redis-index.js";

/**
 * The three-key Redis index against keys left by earlier versions or written behind its back.
 * (An instance still on the one-key layout cannot share users with an upgraded one: see the
 * README, "Limit per user".)
 */

const prefix = uniquePrefix("index-faults");
const NOW = Date.now();

const redis = sharedRedisClient(prefix);
const entry = (): IndexEntry => indexEntry(NOW);

const send = (_key: string, args: string[]) => redis().sendCommand(args);
const recordKey = (ref: string) => `${prefix}{${ref}}`;
const index = () => new RedisUserIndex(send, prefix, recordKey, () => null);
const oldIndex = () => new OldRedisUserIndex(send, prefix, recordKey, () => null);

async function ttls(keys: string[]): Promise<number[]> {
  return Promise.all(keys.map((k) => redis().pTTL(k)));
}

/** An earlier-layout index of `entries` (as 0.1 wrote it, TTL set). */
async function oldLayout(user: string, entries: IndexEntry[]) {
  for (const e of entries) expect(await oldIndex().put(user, e, null, NOW)).toBe(true);
  expect(await redis().pTTL(oldIndex().keyOf(user))).toBeGreaterThan(0);
}

test("a listing that moves an earlier-layout index over leaves every new key with a TTL", async () => {
  const user = `u-${randomBytes(6).toString("hex")}`;
  await oldLayout(user, [entry(), entry()]);
  expect(await index().list(user, NOW)).toHaveLength(2);
  const [d, e, h] = index().keysOf(user);
  for (const ttl of await ttls([d, e, h])) expect(ttl).toBeGreaterThan(0);
});

test("a put whose `replaces` is gone, on an earlier-layout index, leaves every key with a TTL", async () => {
  const user = `u-${randomBytes(6).toString("hex")}`;
  await oldLayout(user, [entry()]);
  expect(await index().put(user, entry(), refOf("no-such-session"), NOW)).toBe(0);
  const [d, e, h] = index().keysOf(user);
  for (const ttl of await ttls([d, e, h])) expect(ttl).toBeGreaterThan(0);
});

test("a deadline score Redis cannot turn into a TTL does not wedge the user's index", async () => {
  const user = `u-${randomBytes(6).toString("hex")}`;
  const good = entry();
  expect(await index().put(user, good, null, NOW)).toBe(1);
  const [d] = index().keysOf(user);
  // Written behind the store's back (or by a buggy writer): a score of +inf.
  await redis().zAdd(d, { score: Number.POSITIVE_INFINITY, value: good.ref });
  // PEXPIRE cannot take "inf": every operation on this user, sign-in included, must still work.
  await expect(index().put(user, entry(), null, NOW)).resolves.toBeGreaterThan(0);
});

test("revoking a handle whose entry JSON is corrupt still destroys the session record it is under", async () => {
  // The ref is the :d member and the :e field: the record it names is known even when the JSON
  // is not ours, and it must not outlive its entry (it could no longer be listed or revoked).
  const user = `u-${randomBytes(6).toString("hex")}`;
  const victim = entry();
  expect(await index().put(user, victim, null, NOW)).toBe(1);
  const [, e] = index().keysOf(user);
  await redis().hSet(e, victim.ref, JSON.stringify({ i: "not-the-ref", h: victim.handle }));
  await redis().set(recordKey(victim.ref), "a live session record");
  await index().remove(user, { handles: [victim.handle] }, NOW, true);
  expect(await index().list(user, NOW)).toEqual([]);
  expect(await redis().exists(recordKey(victim.ref))).toBe(0);
});

test("'all but this one' with a corrupt entry still destroys that entry's record", async () => {
  const user = `u-${randomBytes(6).toString("hex")}`;
  const [mine, other] = [entry(), entry()];
  for (const x of [mine, other]) await index().put(user, x, null, NOW);
  const [, e] = index().keysOf(user);
  await redis().hSet(e, other.ref, "{corrupt");
  await redis().set(recordKey(other.ref), "a live session record");
  await index().remove(user, { allExcept: mine.handle }, NOW, true);
  expect((await index().list(user, NOW)).map((x) => x.ref)).toEqual([mine.ref]);
  expect(await redis().exists(recordKey(other.ref))).toBe(0);
});

test("a listing drops an entry scored +inf, and its record, and the keys keep a finite TTL", async () => {
  const user = `u-${randomBytes(6).toString("hex")}`;
  const [good, odd] = [entry(), entry()];
  for (const x of [good, odd]) expect(await index().put(user, x, null, NOW)).toBeGreaterThan(0);
  const [d, e, h] = index().keysOf(user);
  await redis().zAdd(d, { score: Number.POSITIVE_INFINITY, value: odd.ref });
  await redis().set(recordKey(odd.ref), "a live session record");
  expect((await index().list(user, NOW)).map((x) => x.ref)).toEqual([good.ref]);
  expect(await redis().exists(recordKey(odd.ref))).toBe(0);
  expect((await index().list(user, NOW)).map((x) => x.ref)).toEqual([good.ref]);
  for (const ttl of await ttls([d, e, h])) {
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(3_600_000 + 1000);
  }
});

test("a listing drops corrupt entries and entry-less refs, and destroys their records", async () => {
  const user = `u-${randomBytes(6).toString("hex")}`;
  const [good, corrupt, missing] = [entry(), entry(), entry()];
  for (const x of [good, corrupt, missing]) await index().put(user, x, null, NOW);
  const [, e] = index().keysOf(user);
  await redis().hSet(e, corrupt.ref, "[1,2");
  await redis().hDel(e, missing.ref);
  for (const x of [good, corrupt, missing])
    await redis().set(recordKey(x.ref), "a live session record");
  expect((await index().list(user, NOW)).map((x) => x.ref)).toEqual([good.ref]);
  expect(await redis().exists(recordKey(corrupt.ref))).toBe(0);
  expect(await redis().exists(recordKey(missing.ref))).toBe(0);
  expect(await redis().exists(recordKey(good.ref))).toBe(1);
  expect((await index().list(user, NOW)).map((x) => x.ref)).toEqual([good.ref]);
});
