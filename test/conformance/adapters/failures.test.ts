import { expect, test } from "vitest";
import { describeMatrix } from "./matrix.js";

describeMatrix("store failures", (t) => {
  test("the store fails at the end-of-request save: 503 with Retry-After, no cookie", async () => {
    const app = await t.mount();
    app.store.failing.add("write");
    const res = await app.client().post("/set/user/alice");
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(JSON.parse(res.text)).toMatchObject({ error: "session_store_unavailable" });
    expect(app.logs.join("\n")).toContain("injected write failure");
  });

  test("a streamed response whose save fails becomes a 503 before any byte leaves", async () => {
    const app = await t.mount();
    app.store.failing.add("write");
    const res = await app.client().get("/stream");
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(res.text).not.toContain("one,");
  });

  test("the store fails while the handler reads: 503 with Retry-After", async () => {
    const app = await t.mount();
    const client = app.client();
    await client.post("/set/user/alice");
    app.store.failing.add("load");
    const res = await client.get("/get/user");
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(res.headers.get("set-cookie")).toBeNull();
  });

  test("it recovers by itself when the store is back", async () => {
    const app = await t.mount();
    const client = app.client();
    await client.post("/set/user/alice");
    app.store.failing.add("load");
    expect((await client.get("/get/user")).status).toBe(503);
    app.store.failing.clear();
    expect((await client.get("/get/user")).text).toBe('"alice"');
  });
});

describeMatrix("per-session lock", (t) => {
  test("parallel read-modify-write requests under sessionLock() all count", async () => {
    const app = await t.mount();
    const client = app.client();
    await client.post("/set/user/alice");
    const replies = await Promise.all(Array.from({ length: 5 }, () => client.post("/cart/add")));
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(replies.map((r) => r.text).sort()).toEqual(["1", "2", "3", "4", "5"]);
    expect((await client.get("/get/cart")).text).toBe("5");
  });

  test("a lock that cannot be taken in time answers 503 with Retry-After", async () => {
    const app = await t.mount({ lockTimeoutMs: 20 });
    const client = app.client();
    await client.post("/set/user/alice");
    const id = client.cookie.split("=")[1] as string;
    const token = "held-by-someone-else";
    expect(await app.store.acquireLock(id, token, 60_000)).toBe(true);
    const res = await client.post("/cart/add");
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    await app.store.releaseLock(id, token);
    expect((await client.post("/cart/add")).text).toBe("1");
  });
});
