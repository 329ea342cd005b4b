import type { SessionStore } from "../../src/core/store.js";
import { MemoryStore } from "../../src/stores/memory.js";

/** Every store the end-to-end sequences run against. */
export interface StoreCase {
  name: string;
  /** A fresh, empty store (its own key space). */
  make(): Promise<SessionStore>;
}

export const storeCases: StoreCase[] = [{ name: "memory", make: async () => new MemoryStore() }];
