/**
 * cloakroom as the cells use it: imported from the built package (`npm run build` → dist/), the
 * way an application would get it, so the figures are those of the code that ships.
 */
import { keyPrefix, redisClient, storeKind } from "./cell.mjs";

/** The store of a cloakroom cell, with its record count and its shutdown. */
export async function cloakroomStore() {
  if (storeKind === "redis") {
    const { RedisStore } = await import("../../dist/stores/redis.js");
    const client = await redisClient();
    return {
      store: new RedisStore(client, { keyPrefix }),
      entries: async () => null,
      close: () => client.close(),
    };
  }
  const { MemoryStore } = await import("../../dist/index.js");
  const store = new MemoryStore();
  return { store, entries: async () => store.size, close: async () => {} };
}

/** A CSRF token for `session`, as a form would carry it ("none" before CSRF was built). */
export async function csrfTokenOf(session) {
  const index = await import("../../dist/index.js");
  const csrf = index.CsrfToken ? index : await import("../../dist/core/csrf.js").catch(() => null);
  return csrf?.CsrfToken ? (await csrf.CsrfToken.from(session)).token() : "none";
}
