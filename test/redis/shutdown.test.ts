import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { beforeAll, expect, test } from "vitest";
import { createSessionEngine } from "../../src/setup.js";
import { RedisStore } from "../../src/stores/redis.js";
import { nodeRedis, REDIS_URL, requireSharedRedis, uniquePrefix } from "../support/redis.js";

/**
 * Shutdown with `storage = "redis"` from `redis_url`: once the server and coatcheck are closed
 * (`engine.close()`, or the Fastify plugin's onClose), nothing keeps the process alive and it exits
 * by itself. Without `engine.close()` the Redis client coatcheck built holds it open.
 */
const APP = fileURLToPath(new URL("./fixtures/shutdown-app.ts", import.meta.url));

/** Wait for the child to exit, or for `limitMs` after it printed "closed"; kill it in that case. */
function run(
  framework: string,
  extra: Record<string, string>,
  limitMs: number,
): Promise<{ exited: boolean; code: number | null; out: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", APP], {
    env: {
      ...process.env,
      REDIS_URL,
      KEY_PREFIX: uniquePrefix("shutdown"),
      FRAMEWORK: framework,
      ...extra,
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on("data", (chunk) => {
      out += chunk.toString();
      if (out.includes("closed\n") && timer === undefined) {
        timer = setTimeout(() => {
          child.kill("SIGKILL");
          resolve({ exited: false, code: null, out });
        }, limitMs);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ exited: true, code, out });
    });
  });
}

beforeAll(requireSharedRedis);

test.each(["hono", "express", "fastify"])(
  "%s: the process exits by itself after the server and coatcheck are closed",
  async (framework) => {
    const result = await run(framework, {}, 10_000);
    expect(result.out).toBe("wrote\nclosed\n");
    expect(result).toMatchObject({ exited: true, code: 0 });
  },
  30_000,
);

test("without engine.close() the Redis client coatcheck built keeps the process alive", async () => {
  const result = await run("hono", { SKIP_CLOSE: "1" }, 2_000);
  expect(result.out).toBe("wrote\nclosed\n");
  expect(result.exited).toBe(false);
}, 30_000);

test("engine.close() leaves a client the app passed in open, and is idempotent", async () => {
  const client = await nodeRedis();
  try {
    const engine = createSessionEngine({
      env: {},
      store: new RedisStore(client, { keyPrefix: uniquePrefix("shutdown") }),
    });
    const first = engine.close();
    expect(engine.close()).toBe(first);
    await first;
    expect(client.isOpen).toBe(true);
    expect(await client.ping()).toBe("PONG");
  } finally {
    client.destroy();
  }
});
