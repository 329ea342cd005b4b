import { describe, expect, test } from "vitest";
import { defineConfig } from "../../src/core/config.js";
import { SessionEngine } from "../../src/core/engine.js";
import { StoreUnavailableError } from "../../src/core/errors.js";
import type { SessionStore } from "../../src/core/store.js";
import { MemoryStore } from "../../src/stores/memory.js";

const quiet = { warn() {}, error() {} };

/** A store that is not ready until told, like a Redis client still connecting. */
function slowStartStore() {
  const memory = new MemoryStore();
  let open: () => void = () => {};
  const ready = new Promise<void>((r) => {
    open = r;
  });
  const store: SessionStore = {
    load: (id, now) => memory.load(id, now),
    write: (id, w, mode, now) => memory.write(id, w, mode, now),
    destroy: (id) => memory.destroy(id),
    claim: (id, now) => memory.claim(id, now),
    take: (id, keys) => memory.take(id, keys),
    inProcess: false,
    acquireLock: (id, token, ttl) => memory.acquireLock(id, token, ttl),
    releaseLock: (id, token) => memory.releaseLock(id, token),
    ready: () => ready,
  };
  return { store, open: () => open() };
}

describe("store readiness", () => {
  test("operations wait for the first connection instead of failing", async () => {
    const { store, open } = slowStartStore();
    const engine = new SessionEngine(defineConfig({ operationTimeoutMs: 2000 }), store, {
      logger: quiet,
    });
    const op = engine.guarded.load("x".repeat(32), Date.now());
    setTimeout(open, 50);
    await expect(op).resolves.toBeNull();
  });

  test("a store that never becomes ready fails within operation_timeout_ms with 503", async () => {
    const { store } = slowStartStore();
    const engine = new SessionEngine(defineConfig({ operationTimeoutMs: 30 }), store, {
      logger: quiet,
    });
    await expect(engine.guarded.load("x".repeat(32), Date.now())).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
  });
});
