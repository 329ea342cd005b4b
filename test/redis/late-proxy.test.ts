import { createServer, type Server, Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { StoreUnavailableError } from "../../src/core/errors.js";
import { RedisStore } from "../../src/stores/redis.js";
import { engineHarness } from "../support/engine-harness.js";
import { nodeRedis, REDIS_URL, requireSharedRedis, uniquePrefix } from "../support/redis.js";

/**
 * Late replies over a real connection: a TCP proxy between the client and the shared Redis holds
 * Redis's replies back while `holding` is on. Redis has run each command when it replies, so a held
 * reply is exactly an operation whose outcome the engine cannot know in time.
 */
class ReplyHoldingProxy {
  holding = false;
  readonly #server: Server;
  readonly #queues = new Set<{ client: Socket; chunks: Buffer[] }>();

  constructor(upstreamPort: number, upstreamHost: string) {
    this.#server = createServer((client) => {
      const upstream = new Socket();
      const queue = { client, chunks: [] as Buffer[] };
      this.#queues.add(queue);
      upstream.connect(upstreamPort, upstreamHost);
      client.on("data", (chunk) => upstream.write(chunk));
      upstream.on("data", (chunk) => {
        if (this.holding || queue.chunks.length > 0) queue.chunks.push(chunk);
        else client.write(chunk);
      });
      const close = () => {
        this.#queues.delete(queue);
        client.destroy();
        upstream.destroy();
      };
      client.on("close", close);
      upstream.on("close", close);
      client.on("error", close);
      upstream.on("error", close);
    });
  }

  listen(): Promise<number> {
    return new Promise((resolve) => {
      this.#server.listen(0, "127.0.0.1", () =>
        resolve((this.#server.address() as { port: number }).port),
      );
    });
  }

  /** Stop holding and deliver every held reply, in order. */
  release(): void {
    this.holding = false;
    for (const queue of this.#queues) {
      for (const chunk of queue.chunks.splice(0)) queue.client.write(chunk);
    }
  }

  close(): Promise<void> {
    for (const queue of this.#queues) queue.client.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

let proxy: ReplyHoldingProxy;
let client: Awaited<ReturnType<typeof nodeRedis>>;

beforeAll(async () => {
  await requireSharedRedis();
  const url = new URL(REDIS_URL);
  proxy = new ReplyHoldingProxy(Number(url.port || 6379), url.hostname);
  const port = await proxy.listen();
  client = await nodeRedis(`redis://127.0.0.1:${port}`);
});

afterAll(async () => {
  proxy?.release();
  await client?.close().catch(() => {});
  await proxy?.close();
});

/** Wait until the held replies have reached the engine and what it does with them has run. */
async function settle(h: ReturnType<typeof engineHarness>, id: string): Promise<void> {
  // A round trip on the same connection: it is answered after every reply held before it, and the
  // engine's follow-up commands were queued before it too.
  for (let i = 0; i < 3; i++) {
    await h.engine.store.load(id, h.clock.now());
    await new Promise((r) => setImmediate(r));
  }
}

describe("late Redis replies through a TCP proxy", () => {
  test("cycleId whose create reply is held: 503, the old cookie keeps the session, no orphan", async () => {
    const keyPrefix = uniquePrefix("late-proxy");
    const store = new RedisStore(client, { keyPrefix });
    const h = engineHarness(store, { operationTimeoutMs: 250 });
    const id = await h.seed({ user: "alice" });
    await h.contents(id); // loaded once, so the cycle below starts with the create
    const cycle = h.request(id, async (s) => {
      await s.load();
      proxy.holding = true;
      await s.cycleId();
    });
    await expect(cycle).rejects.toBeInstanceOf(StoreUnavailableError);
    proxy.release();
    await settle(h, id);
    // The create ran; when its reply came, the record nobody will ever get a cookie for was deleted.
    expect(await client.keys(`${keyPrefix}*`)).toEqual([store.keyOf(id)]);
    expect(await h.contents(id)).toEqual({ user: "alice" });
    const retry = await h.request(id, (s) => s.cycleId());
    expect(await h.contents(retry.cookieId as string)).toEqual({ user: "alice" });
    expect(await h.contents(id)).toEqual({});
  });

  test("a lock whose acquire reply is held is released with the engine's token", async () => {
    const store = new RedisStore(client, { keyPrefix: uniquePrefix("late-proxy-lock") });
    const h = engineHarness(store, { operationTimeoutMs: 250, lockTimeoutMs: 300 });
    const id = await h.seed({ n: 0 });
    const locked = h.request(id, async (s) => {
      proxy.holding = true;
      await s.lock();
      await s.load();
    });
    await expect(locked).rejects.toBeInstanceOf(StoreUnavailableError);
    proxy.release();
    await settle(h, id);
    const next = await h.request(id, async (s) => {
      await s.lock();
      await s.insert("n", ((await s.get<number>("n")) ?? 0) + 1);
    });
    expect(next.result.action).toBe("update");
    expect(await h.contents(id)).toEqual({ n: 1 });
  });
});
