import { expect, test } from "vitest";
import type { IndexEntry } from "../../src/core/store.js";
import { INDEX_SCRIPT, RedisUserIndex } from "../../src/stores/redis-index.js";
import { uniquePrefix } from "../support/redis.js";
import { countingSend, type ScriptWork } from "../support/redis-work.js";
import { indexEntry, randomHandle, sharedRedisClient } from "./fixtures/index-entries.js";

/**
 * The Redis index's work per operation, counted with a shim around its script: a put, an id
 * change and a removal of named entries cost the same for a user with 10 entries as for one with
 * 3,000. (The earlier layout read and decoded every entry on each of them.)
 */

const prefix = uniquePrefix("users-scale");
const NOW = Date.now();

const redis = sharedRedisClient(prefix);
const handle = randomHandle;
const entry = (h?: string): IndexEntry =>
  indexEntry(NOW, {
    handle: h,
    deadline: NOW + 3_600_000 + Math.floor(Math.random() * 1000),
    address: "192.0.2.1",
  });

function indexes() {
  const plain = (_key: string, args: string[]) => redis().sendCommand(args);
  const counting = countingSend((args) => redis().sendCommand(args), INDEX_SCRIPT);
  const make = (send: (key: string, args: string[]) => Promise<unknown>) =>
    new RedisUserIndex(
      send,
      prefix,
      (ref) => `${prefix}{${ref}}`,
      () => null,
    );
  return { fast: make(plain), counted: make(counting.send), work: () => counting.last };
}

/** The work of a sign-in, an id change and removals on a user already holding `n` entries. */
async function workAt(n: number): Promise<Record<string, ScriptWork>> {
  const { fast, counted, work } = indexes();
  const user = `user-${n}-${handle()}`;
  for (let i = 0; i < n; i += 250) {
    const batch = Array.from({ length: Math.min(250, n - i) }, () => entry());
    await Promise.all(batch.map((e) => fast.put(user, e, null, NOW)));
  }
  const seen: Record<string, ScriptWork> = {};
  const signIn = entry();
  expect(await counted.put(user, signIn, null, NOW)).toBe(n + 1);
  seen.signIn = work();
  const moved = entry(signIn.handle);
  expect(await counted.put(user, moved, signIn.ref, NOW + 1)).toBe(n + 1);
  seen.idChange = work();
  expect((await counted.remove(user, { refs: [moved.ref] }, NOW + 2, false)).length).toBe(1);
  seen.removeRef = work();
  const other = entry();
  await fast.put(user, other, null, NOW);
  expect((await counted.remove(user, { handles: [other.handle] }, NOW + 3, false)).length).toBe(1);
  seen.removeHandle = work();
  expect(await counted.list(user, NOW + 4)).toHaveLength(n);
  seen.list = work();
  return seen;
}

test("a put, an id change and named removals do the same Redis work at 10 and 3,000 entries", async () => {
  const small = await workAt(10);
  const large = await workAt(3000);
  for (const op of ["signIn", "idChange", "removeRef", "removeHandle"]) {
    expect({ op, ...large[op] }).toEqual({ op, ...small[op] });
    // No command returning a range of entries: a handful of elements at most.
    expect(large[op]?.elements).toBeLessThan(10);
  }
  // Listing reads each entry: its deadline and ref, then its JSON, and no more.
  expect(large.list?.elements).toBeLessThanOrEqual(3 * 3000 + 10);
}, 60_000);
