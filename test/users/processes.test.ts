import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startAppProcess } from "../support/app-process.js";
import { nodeRedis, REDIS_URL, requireSharedRedis, uniquePrefix } from "../support/redis.js";
import type { Listed } from "./app.js";

/**
 * Three app processes on one Redis, as behind a load balancer: a session revoked through one is
 * refused by the other two on their very next request.
 */

const SERVER = fileURLToPath(new URL("./fixtures/users-server.ts", import.meta.url));
const children: ChildProcess[] = [];
const bases: string[] = [];
const prefix = uniquePrefix("users-3p");

const startApp = () => startAppProcess(SERVER, { REDIS_URL, KEY_PREFIX: prefix }, children);

beforeAll(async () => {
  await requireSharedRedis();
  bases.push(...(await Promise.all([startApp(), startApp(), startApp()])));
  for (const base of bases) {
    const until = performance.now() + 10_000;
    while ((await fetch(`${base}/me`)).status !== 200) {
      if (performance.now() > until) throw new Error(`${base} never reached Redis`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}, 30_000);

afterAll(async () => {
  for (const child of children) child.kill();
  const client = await nodeRedis();
  for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 200 })) {
    if (keys.length > 0) await client.del(keys);
  }
  await client.close();
});

const cookieOf = (r: Response) => (r.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
const me = async (base: string, cookie: string) =>
  ((await (await fetch(`${base}/me`, { headers: { cookie } })).json()) as { user: string | null })
    .user;

test("revoked through one process, the cookie is refused by the other two at once", {
  timeout: 30_000,
}, async () => {
  const [one, two, three] = bases as [string, string, string];
  const pids = await Promise.all(
    bases.map(async (b) => ((await (await fetch(`${b}/pid`)).json()) as { pid: number }).pid),
  );
  expect(new Set(pids).size).toBe(3);
  const laptop = cookieOf(await fetch(`${one}/login/max`, { method: "POST" }));
  const phone = cookieOf(await fetch(`${two}/login/max`, { method: "POST" }));
  const tablet = cookieOf(await fetch(`${three}/login/max`, { method: "POST" }));
  for (const base of bases) {
    for (const cookie of [laptop, phone, tablet]) expect(await me(base, cookie)).toBe("max");
  }
  const listed = (await (
    await fetch(`${three}/sessions`, { headers: { cookie: laptop } })
  ).json()) as Listed[];
  expect(listed).toHaveLength(3);
  const phoneHandle = (
    (await (await fetch(`${two}/sessions`, { headers: { cookie: phone } })).json()) as Listed[]
  ).find((s) => s.current)?.handle as string;

  // One device revoked through process one: refused by two and three on the next request.
  const revoke = await fetch(`${one}/revoke/${phoneHandle}`, {
    method: "POST",
    headers: { cookie: laptop },
  });
  expect(await revoke.json()).toEqual({ revoked: true });
  expect(await me(two, phone)).toBeNull();
  expect(await me(three, phone)).toBeNull();

  // Every other device, through process two: refused by one and three.
  const others = await fetch(`${two}/revoke-others`, {
    method: "POST",
    headers: { cookie: tablet },
  });
  expect(await others.json()).toEqual({ revoked: 1 });
  expect(await me(one, laptop)).toBeNull();
  expect(await me(three, laptop)).toBeNull();
  expect(await me(one, tablet)).toBe("max");
  expect(await me(three, tablet)).toBe("max");
});
