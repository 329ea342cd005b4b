import { afterEach, describe } from "vitest";
import type { SessionEngine } from "../../../src/core/engine.js";
import type { PipelineOptions } from "../../../src/core/pipeline.js";
import type { LockStore, RecordStore, SessionWrite, WriteMode } from "../../../src/core/store.js";
import { type CoatcheckOptions, createSessionEngine } from "../../../src/setup.js";
import { MemoryStore } from "../../../src/stores/memory.js";
import { RedisStore } from "../../../src/stores/redis.js";
import { nodeRedis, requireSharedRedis, uniquePrefix } from "../../support/redis.js";
import { type Adapter, adapters, type Driver } from "./drivers.js";
import { type Reply, type RequestInit, type Route, standardRoutes } from "./scenario.js";

/**
 * The adapter × store matrix. `describeMatrix(name, body)` runs `body` once per adapter and store;
 * rows written once hold for every framework. To add a store, push a {@link StoreKind}; to add rows
 * (typed sessions, auth, flash, CSRF), call `describeMatrix` from a new `*.test.ts` file here.
 */

export interface StoreKind {
  name: string;
  /** A fresh store for one test; `dispose` runs after it. */
  create(): Promise<{ store: RecordStore & LockStore; dispose(): Promise<void> }>;
}

export const memory: StoreKind = {
  name: "memory",
  async create() {
    return { store: new MemoryStore(), dispose: async () => {} };
  },
};

/**
 * The shared Redis (REDIS_URL, default redis://127.0.0.1:6379) over node-redis, one key prefix per
 * test. A missing Redis fails these rows: they never skip.
 */
export const redis: StoreKind = {
  name: "redis",
  async create() {
    await requireSharedRedis();
    const client = await nodeRedis();
    return {
      store: new RedisStore(client, { keyPrefix: uniquePrefix("adapters") }),
      dispose: () => client.close(),
    };
  },
};

export const storeKinds: StoreKind[] = [memory, redis];

type Operation = "load" | "write" | "destroy" | "claim" | "take" | "acquireLock" | "releaseLock";

/**
 * Wraps the store under test: records every call (to prove which requests reach the store), can
 * make operations fail (outage rows), and can slow writes down (ordering rows: the write must have
 * finished before the response's headers are seen, however long it takes).
 */
export class ProbeStore implements RecordStore, LockStore {
  readonly calls: string[] = [];
  /** Ordered log shared with the request helpers: `write done`, `headers`. */
  readonly events: string[] = [];
  readonly failing = new Set<Operation>();
  writeDelayMs = 0;
  readonly inProcess: boolean;
  readonly #inner: RecordStore & LockStore;

  constructor(inner: RecordStore & LockStore) {
    this.#inner = inner;
    this.inProcess = inner.inProcess;
  }

  reset(): void {
    this.calls.length = 0;
    this.events.length = 0;
  }

  async #run<T>(op: Operation, label: string, action: () => Promise<T>): Promise<T> {
    this.calls.push(label);
    if (this.failing.has(op)) throw new Error(`injected ${op} failure`);
    return action();
  }

  load(id: string, now: number) {
    return this.#run("load", "load", () => this.#inner.load(id, now));
  }
  write(id: string, write: SessionWrite, mode: WriteMode, now: number) {
    return this.#run("write", `write:${mode}`, async () => {
      if (this.writeDelayMs > 0) await new Promise((r) => setTimeout(r, this.writeDelayMs));
      const ok = await this.#inner.write(id, write, mode, now);
      this.events.push("write done");
      return ok;
    });
  }
  destroy(id: string) {
    return this.#run("destroy", "destroy", () => this.#inner.destroy(id));
  }
  claim(id: string, now: number) {
    return this.#run("claim", "claim", () => this.#inner.claim(id, now));
  }
  take(id: string, keys: readonly string[]) {
    return this.#run("take", "take", () => this.#inner.take(id, keys));
  }
  acquireLock(id: string, token: string, ttlMs: number) {
    return this.#run("acquireLock", "acquireLock", () => this.#inner.acquireLock(id, token, ttlMs));
  }
  releaseLock(id: string, token: string) {
    return this.#run("releaseLock", "releaseLock", () => this.#inner.releaseLock(id, token));
  }
}

/** A browser of one: keeps the session cookie between requests. */
export class Client {
  cookie = "";
  readonly #driver: Driver;

  constructor(driver: Driver) {
    this.#driver = driver;
  }

  async request(method: string, path: string, init: RequestInit = {}): Promise<Reply> {
    const headers = { ...(this.cookie ? { cookie: this.cookie } : {}), ...init.headers };
    const reply = await this.#driver.request(method, path, { ...init, headers });
    const set = reply.headers.get("set-cookie");
    if (set) this.cookie = /Max-Age=0/.test(set) ? "" : (set.split(";")[0] ?? "");
    return reply;
  }

  get(path: string, init?: RequestInit) {
    return this.request("GET", path, init);
  }
  post(path: string, init?: RequestInit) {
    return this.request("POST", path, init);
  }
}

export interface MountedApp {
  driver: Driver;
  store: ProbeStore;
  engine: SessionEngine;
  /** What the engine logged, one line per call: problems it recovered from must be logged. */
  logs: string[];
  /** A new client with an empty cookie jar. */
  client(): Client;
}

export interface MatrixContext {
  adapter: Adapter["name"];
  store: string;
  /**
   * Build an engine over a fresh probed store (CSRF off unless `options.csrf` says otherwise,
   * `secure: false`, no environment) and mount `routes` (default: {@link standardRoutes}).
   */
  mount(
    options?: CoatcheckOptions,
    routes?: readonly Route[],
    responses?: PipelineOptions,
  ): Promise<MountedApp>;
}

export function describeMatrix(name: string, body: (t: MatrixContext) => void): void {
  for (const adapter of adapters) {
    for (const kind of storeKinds) {
      describe(`${name} [${adapter.name} × ${kind.name}]`, () => {
        const cleanups: Array<() => Promise<void>> = [];
        afterEach(async () => {
          for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
        });
        body({
          adapter: adapter.name,
          store: kind.name,
          async mount(options = {}, routes = standardRoutes, responses = {}) {
            const { store: inner, dispose } = await kind.create();
            cleanups.push(dispose);
            const store = new ProbeStore(inner);
            const logs: string[] = [];
            const log = (fields: Record<string, unknown>, message: string) => {
              logs.push([message, ...Object.values(fields).map(String)].join(" "));
            };
            const engine = createSessionEngine({
              env: {},
              secure: false,
              logger: { warn: log, error: log },
              ...options,
              csrf: { enabled: false, ...options.csrf },
              store,
            });
            const driver = await adapter.mount(engine, routes, responses);
            cleanups.push(() => driver.close());
            return { driver, store, engine, logs, client: () => new Client(driver) };
          },
        });
      });
    }
  }
}
