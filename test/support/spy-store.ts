import { MemoryStore } from "../../src/stores/memory.js";

/** A MemoryStore that records every call, to prove which requests reach the store. */
export class SpyStore extends MemoryStore {
  readonly calls: string[] = [];

  constructor() {
    super();
    for (const name of [
      "load",
      "write",
      "destroy",
      "claim",
      "take",
      "acquireLock",
      "releaseLock",
    ] as const) {
      const original = (this as MemoryStore)[name].bind(this) as (
        ...args: unknown[]
      ) => Promise<unknown>;
      Object.defineProperty(this, name, {
        value: (...args: unknown[]) => {
          this.calls.push(name === "write" ? `write:${String(args[2])}` : name);
          return original(...args);
        },
      });
    }
  }

  reset(): void {
    this.calls.length = 0;
  }
}
