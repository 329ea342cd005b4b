import { expect, test } from "vitest";
import { FlashMessage, FlashMessages } from "../../src/core/flash.js";
import { describeMatrix } from "../conformance/adapters/matrix.js";
import type { Route } from "../conformance/adapters/scenario.js";

/**
 * One session, many parallel requests, on every adapter and store: hundreds of requests in flight
 * at once against the same cookie. Updates to different keys must all land, a destroy must never be
 * undone by a save that was already in flight, and every flash message is shown exactly once.
 */

const PARALLEL = 200;

const json = (value: unknown) => ({
  body: JSON.stringify(value),
  headers: { "content-type": "application/json" },
});

const routes: Route[] = [
  {
    method: "POST",
    path: "/set/:key",
    handler: async ({ session, params }) => {
      await session.insert(params.key as string, params.key);
      return { body: "set" };
    },
  },
  {
    method: "GET",
    path: "/keys",
    handler: async ({ session }) => json((await session.keys()).sort()),
  },
  {
    method: "POST",
    path: "/destroy",
    handler: async ({ session }) => {
      await session.destroy();
      return { body: "destroyed" };
    },
  },
  {
    method: "POST",
    path: "/flash/:from/:count",
    handler: async ({ session, params }) => {
      const from = Number(params.from);
      for (let i = 0; i < Number(params.count); i++)
        await FlashMessages.push(session, FlashMessage.info(`m${from + i}`));
      return { body: "pushed" };
    },
  },
  {
    method: "GET",
    path: "/flash",
    handler: async ({ session }) =>
      json((await FlashMessages.of(session).messages()).map((m) => m.message)),
  },
];

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

describeMatrix("one session, parallel requests", (t) => {
  test(`${PARALLEL} parallel writes of different keys: no update is lost`, async () => {
    const app = await t.mount({}, routes);
    const client = app.client();
    await client.post("/set/seed");
    const cookie = client.cookie;
    const replies = await Promise.all(
      range(PARALLEL).map((i) => app.driver.request("POST", `/set/k${i}`, { headers: { cookie } })),
    );
    expect(replies.filter((r) => r.status !== 200)).toEqual([]);
    // Parallel updates of a stored session never hand out a new cookie.
    expect(replies.filter((r) => r.headers.get("set-cookie") !== null)).toEqual([]);
    const keys = JSON.parse((await client.get("/keys")).text) as string[];
    const lost = range(PARALLEL).filter((i) => !keys.includes(`k${i}`));
    expect(lost).toEqual([]);
    expect(keys).toHaveLength(PARALLEL + 1);
  });

  test("a destroy racing 100 saves: the destroyed session never comes back", async () => {
    const app = await t.mount({}, routes);
    const client = app.client();
    await client.post("/set/seed");
    const cookie = client.cookie;
    const id = cookie.split("=")[1] as string;
    const replies = await Promise.all(
      range(101).map((i) =>
        i === 50
          ? app.driver.request("POST", "/destroy", { headers: { cookie } })
          : app.driver.request("POST", `/set/k${i}`, { headers: { cookie } }),
      ),
    );
    expect(replies.filter((r) => r.status !== 200)).toEqual([]);
    expect(await app.engine.store.load(id, app.engine.now())).toBeNull();
    expect((await client.get("/keys")).text).toBe("[]");
    // A save that lost the race was told so: its cookie is cleared, or it started a new session.
    for (const r of replies) {
      const set = r.headers.get("set-cookie");
      if (set !== null) expect(set.startsWith(`${cookie};`)).toBe(false);
    }
  });

  test("parallel flash consumers and producers: each message is shown exactly once", async () => {
    // 100 pending messages at the peak: above the default max_flash_messages.
    const app = await t.mount({ maxFlashMessages: 200 }, routes);
    const client = app.client();
    await client.post("/set/user");
    await client.post("/flash/0/50");
    const cookie = client.cookie;
    const replies = await Promise.all(
      range(50).map((i) =>
        i % 2 === 0
          ? app.driver.request("POST", `/flash/${50 + i}/2`, { headers: { cookie } })
          : app.driver.request("GET", "/flash", { headers: { cookie } }),
      ),
    );
    expect(replies.filter((r) => r.status !== 200)).toEqual([]);
    const shown = replies
      .filter((r) => r.text.startsWith("["))
      .flatMap((r) => JSON.parse(r.text) as string[]);
    shown.push(...(JSON.parse((await client.get("/flash")).text) as string[]));
    const expected = range(50)
      .map((i) => `m${i}`)
      .concat(range(25).flatMap((j) => [`m${50 + 2 * j}`, `m${51 + 2 * j}`]));
    expect(shown.sort()).toEqual(expected.sort());
  });

  test("a session holding only flash messages: parallel consumers and producers lose none", async () => {
    const app = await t.mount({}, routes);
    const client = app.client();
    await client.post("/flash/0/10");
    const cookie = client.cookie;
    const replies = await Promise.all(
      range(40).map((i) =>
        i % 2 === 0
          ? app.driver.request("POST", `/flash/${10 + i}/1`, { headers: { cookie } })
          : app.driver.request("GET", "/flash", { headers: { cookie } }),
      ),
    );
    expect(replies.filter((r) => r.status !== 200)).toEqual([]);
    const shown = replies
      .filter((r) => r.text.startsWith("["))
      .flatMap((r) => JSON.parse(r.text) as string[]);
    shown.push(...(JSON.parse((await client.get("/flash")).text) as string[]));
    const expected = range(10)
      .map((i) => `m${i}`)
      .concat(range(20).map((j) => `m${10 + 2 * j}`));
    expect(shown.sort()).toEqual(expected.sort());
  });
});
