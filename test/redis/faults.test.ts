import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { SessionConfig } from "../../src/core/config.js";
import { ConfigError } from "../../src/core/errors.js";
import { createSessionEngine } from "../../src/setup.js";
import { RedisStore } from "../../src/stores/redis.js";
import { redisStoreFromConfig } from "../../src/stores/redis-url.js";
import { Jar, sessionApp } from "../support/hono-app.js";
import { type RedisServer, startRedisServer } from "../support/redis.js";

/**
 * Redis failing under a running app. Every test starts its own redis-server on a free port, and
 * goes through `storage = "redis"` (the client coatcheck builds from `redis_url`) unless it says
 * otherwise.
 */

const OPERATION_TIMEOUT_MS = 300;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeAll(() => {
  process.on("unhandledRejection", onUnhandled);
});
afterAll(() => {
  process.off("unhandledRejection", onUnhandled);
  expect(unhandled).toEqual([]);
});

function recorder() {
  const errors: string[] = [];
  const warnings: string[] = [];
  return {
    errors,
    warnings,
    logger: {
      error: (_f: unknown, m: string) => errors.push(m),
      warn: (_f: unknown, m: string) => warnings.push(m),
    },
  };
}

function appFor(redisUrl: string, log = recorder()) {
  const engine = createSessionEngine({
    env: {},
    secure: false,
    csrf: { enabled: false },
    storage: "redis",
    redisUrl,
    keyPrefix: "faults:",
    operationTimeoutMs: OPERATION_TIMEOUT_MS,
    logger: log.logger,
  });
  return { app: sessionApp(engine), engine, log };
}

type App = ReturnType<typeof sessionApp>;

/** Poll until `check` holds; the reconnect back-off is at most about 2 s. */
async function eventually(check: () => Promise<boolean>, limitMs = 10_000): Promise<void> {
  const until = performance.now() + limitMs;
  while (!(await check())) {
    if (performance.now() > until) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function expect503(response: Response | Promise<Response>): Promise<void> {
  const r = await response;
  expect(r.status).toBe(503);
  expect(r.headers.get("retry-after")).toBe("1");
  expect(((await r.json()) as { error: string }).error).toBe("session_store_unavailable");
}

async function works(app: App, jar: Jar): Promise<boolean> {
  const r = await app.request("/set/probe/1", { method: "POST", headers: jar.headers() });
  jar.take(r);
  return r.status === 200;
}

describe("Redis faults", () => {
  const servers: RedisServer[] = [];
  const server = async (options?: Parameters<typeof startRedisServer>[0]) => {
    const s = await startRedisServer(options);
    servers.push(s);
    return s;
  };
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.dispose()));
  });

  test("refused connections: 503 at once, untouched routes unaffected, recovery by itself", async () => {
    const redis = await server({ start: false });
    const { app, engine, log } = appFor(redis.url);
    try {
      expect((await app.request("/untouched")).status).toBe(200);
      await expect503(app.request("/set/a/1", { method: "POST" }));
      await expect503(
        app.request("/get/a", { headers: { cookie: `session_id=${"A".repeat(32)}` } }),
      );
      await eventually(async () => log.errors.some((e) => e.includes("Redis connection failed")));
      expect(log.errors.filter((e) => e.includes("Redis connection failed"))).toHaveLength(1);

      await redis.start();
      const jar = new Jar();
      await eventually(() => works(app, jar));
      expect(await (await app.request("/get/probe", { headers: jar.headers() })).json()).toBe("1");
      expect(log.warnings).toContain("Redis connection restored");
    } finally {
      await engine.store.close?.();
    }
  });

  test("Redis stopped mid-run: 503 while down, service resumes when it is back", async () => {
    const redis = await server();
    const { app, engine } = appFor(redis.url);
    try {
      const jar = new Jar();
      await eventually(() => works(app, jar));
      await redis.kill();
      await expect503(app.request("/get/probe", { headers: jar.headers() }));
      await expect503(app.request("/set/a/1", { method: "POST", headers: jar.headers() }));
      await redis.start();
      await eventually(() => works(app, new Jar()));
    } finally {
      await engine.store.close?.();
    }
  });

  test("a paused Redis process (SIGSTOP): 503 after the operation timeout, no hang", async () => {
    const redis = await server();
    const { app, engine } = appFor(redis.url);
    try {
      const jar = new Jar();
      await eventually(() => works(app, jar));
      redis.pause();
      const started = performance.now();
      await expect503(app.request("/get/probe", { headers: jar.headers() }));
      await expect503(app.request("/set/a/1", { method: "POST", headers: jar.headers() }));
      // A generous bound: what matters is that the requests end at all.
      expect(performance.now() - started).toBeLessThan(OPERATION_TIMEOUT_MS * 10);
      redis.resume();
      await eventually(async () => {
        const r = await app.request("/get/probe", { headers: jar.headers() });
        return r.status === 200 && (await r.json()) === "1";
      });
    } finally {
      redis.resume();
      await engine.store.close?.();
    }
  });

  test("CLIENT PAUSE: 503 while paused, fine after", async () => {
    const redis = await server();
    const { app, engine } = appFor(redis.url);
    try {
      const jar = new Jar();
      await eventually(() => works(app, jar));
      // CLIENT UNPAUSE would itself wait out the pause, so the pause is short and ends by itself.
      await redis.cli("CLIENT", "PAUSE", "1500", "ALL");
      await expect503(app.request("/get/probe", { headers: jar.headers() }));
      await eventually(
        async () => (await app.request("/get/probe", { headers: jar.headers() })).status === 200,
      );
    } finally {
      await engine.store.close?.();
    }
  });

  test("READONLY (the server became a replica): 503 with the cause logged; fine after promotion", async () => {
    const primary = await server();
    const redis = await server();
    const { app, engine, log } = appFor(redis.url);
    try {
      await eventually(() => works(app, new Jar()));
      await redis.cli("REPLICAOF", "127.0.0.1", String(primary.port));
      await expect503(app.request("/set/a/1", { method: "POST" }));
      expect(log.errors.some((e) => e.includes("READONLY"))).toBe(true);
      await redis.cli("REPLICAOF", "NO", "ONE");
      await eventually(() => works(app, new Jar()));
    } finally {
      await engine.store.close?.();
    }
  });

  test("scripts flushed from the server (restart, failover): reloaded without an error", async () => {
    const redis = await server();
    const { app, engine } = appFor(redis.url);
    try {
      const jar = new Jar();
      await eventually(() => works(app, jar));
      await redis.cli("SCRIPT", "FLUSH");
      expect(await works(app, jar)).toBe(true);
      expect(await (await app.request("/get/probe", { headers: jar.headers() })).json()).toBe("1");
    } finally {
      await engine.store.close?.();
    }
  });

  test("redis_url with user, password and database", async () => {
    const redis = await server({ args: ["--requirepass", "s3cret"] });
    const { app, engine } = appFor(`redis://default:s3cret@127.0.0.1:${redis.port}/2`);
    try {
      const jar = new Jar();
      await eventually(() => works(app, jar));
      const key = (engine.store as RedisStore).keyOf(jar.cookie.split("=")[1] as string);
      expect(await redis.cli("-a", "s3cret", "--no-auth-warning", "-n", "2", "EXISTS", key)).toBe(
        "1",
      );
      expect(await redis.cli("-a", "s3cret", "--no-auth-warning", "-n", "0", "EXISTS", key)).toBe(
        "0",
      );
    } finally {
      await engine.store.close?.();
    }
  });

  test("a wrong password: 503 and a logged cause, never a hang", async () => {
    const redis = await server({ args: ["--requirepass", "s3cret"] });
    const { app, engine, log } = appFor(`redis://default:wrong@127.0.0.1:${redis.port}`);
    try {
      await expect503(app.request("/set/a/1", { method: "POST" }));
      await eventually(async () => log.errors.some((e) => /WRONGPASS|invalid/i.test(e)));
    } finally {
      await engine.store.close?.();
    }
  });
});

describe("Redis faults without a server", () => {
  test("LOADING (a server still loading its dataset): 503, logged", async () => {
    // A scripted client: a real LOADING window is too short and too slow to produce on demand.
    const loading = {
      sendCommand: async () => {
        throw new Error("LOADING Redis is loading the dataset in memory");
      },
    };
    const log = recorder();
    const app = sessionApp(
      createSessionEngine({
        env: {},
        secure: false,
        csrf: { enabled: false },
        store: new RedisStore(loading),
        logger: log.logger,
      }),
    );
    await expect503(app.request("/set/a/1", { method: "POST" }));
    expect(log.errors.some((e) => e.includes("LOADING"))).toBe(true);
  });

  test("storage = redis without the redis package: start-up fails naming the package", () => {
    const config = { redisUrl: "redis://127.0.0.1:1", keyPrefix: "x:", operationTimeoutMs: 1000 };
    const missing = () => {
      throw Object.assign(new Error("Cannot find module 'redis'"), { code: "MODULE_NOT_FOUND" });
    };
    const build = () => redisStoreFromConfig(config as SessionConfig, recorder().logger, missing);
    expect(build).toThrow(ConfigError);
    expect(build).toThrow(/npm install redis/);
  });

  test("storage = redis builds its engine synchronously; the first requests fail fast", async () => {
    const { app, engine } = appFor("redis://127.0.0.1:1");
    try {
      await expect503(app.request("/set/a/1", { method: "POST" }));
    } finally {
      await engine.store.close?.();
    }
  });
});
