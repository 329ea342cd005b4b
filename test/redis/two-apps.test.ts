import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startAppProcess } from "../support/app-process.js";
import { REDIS_URL, requireSharedRedis, uniquePrefix } from "../support/redis.js";

/**
 * Two app processes sharing one Redis, as behind a load balancer: a session started through one is
 * read, changed and destroyed through the other. Each runs a Hono server on a loopback port.
 */

const SERVER = fileURLToPath(new URL("./fixtures/app-server.ts", import.meta.url));
const children: ChildProcess[] = [];
const bases: string[] = [];

const startApp = (prefix: string) =>
  startAppProcess(SERVER, { REDIS_URL, KEY_PREFIX: prefix }, children);

beforeAll(async () => {
  await requireSharedRedis();
  const prefix = uniquePrefix("two-apps");
  bases.push(...(await Promise.all([startApp(prefix), startApp(prefix)])));
  // Each process connects to Redis in the background; wait until both answer a session route.
  for (const base of bases) {
    const until = performance.now() + 10_000;
    while (
      (await fetch(`${base}/session`, { headers: { cookie: `session_id=${"A".repeat(32)}` } }))
        .status !== 200
    ) {
      if (performance.now() > until) throw new Error(`${base} never reached Redis`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}, 30_000);

afterAll(() => {
  for (const child of children) child.kill();
});

function cookieOf(response: Response): string {
  return (response.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
}

test("a session created in one process is read, changed and destroyed in the other", async () => {
  const [one, two] = bases as [string, string];
  const login = await fetch(`${one}/login/alice`, { method: "POST" });
  const cookie = cookieOf(login);
  expect(cookie).toMatch(/^session_id=.{32}$/);

  const read = (await (await fetch(`${two}/session`, { headers: { cookie } })).json()) as {
    pid: number;
    user: string;
  };
  expect(read.user).toBe("alice");
  expect(read.pid).not.toBe(((await login.json()) as { pid: number }).pid);

  await fetch(`${two}/visit`, { method: "POST", headers: { cookie } });
  await fetch(`${one}/visit`, { method: "POST", headers: { cookie } });
  expect(await (await fetch(`${one}/session`, { headers: { cookie } })).json()).toMatchObject({
    user: "alice",
    visits: 2,
  });

  const logout = await fetch(`${two}/logout`, { method: "POST", headers: { cookie } });
  expect(logout.headers.get("set-cookie")).toMatch(/Max-Age=0/);
  expect(await (await fetch(`${one}/session`, { headers: { cookie } })).json()).toMatchObject({
    user: null,
    visits: 0,
  });
});
