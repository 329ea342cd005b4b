import { afterAll } from "vitest";
import type { SessionStore } from "../../src/core/store.js";
import { MemoryStore } from "../../src/stores/memory.js";
import { RedisStore } from "../../src/stores/redis.js";
import { nodeRedis, requireSharedRedis, uniquePrefix } from "../support/redis.js";

/** Every store the end-to-end sequences run against. */
export interface StoreCase {
  name: string;
  /** A fresh, empty store (its own key space). */
  make(): Promise<SessionStore>;
}

let client: Awaited<ReturnType<typeof nodeRedis>> | null = null;
const prefixes: string[] = [];

// One connection per test file, to the shared Redis; a missing Redis fails the suite. The keys
// this file wrote go with it, so the shared server keeps nothing of the run.
afterAll(async () => {
  const open = client;
  client = null;
  if (open === null) return;
  for (const prefix of prefixes) {
    for await (const keys of open.scanIterator({ MATCH: `${prefix}*`, COUNT: 200 })) {
      if (keys.length > 0) await open.del(keys);
    }
  }
  await open.close();
});

export const storeCases: StoreCase[] = [
  { name: "memory", make: async () => new MemoryStore() },
  {
    name: "redis",
    make: async () => {
      if (client === null) {
        await requireSharedRedis();
        client = await nodeRedis();
      }
      const keyPrefix = uniquePrefix("auth-flash");
      prefixes.push(keyPrefix);
      return new RedisStore(client, { keyPrefix });
    },
  },
];
