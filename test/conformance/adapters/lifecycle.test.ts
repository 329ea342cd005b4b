import { expect, test } from "vitest";
import { describeMatrix } from "./matrix.js";

describeMatrix("decision table", (t) => {
  test("a route that never touches the session: no store call, no cookie", async () => {
    const app = await t.mount();
    const res = await app.client().get("/untouched");
    expect(res.status).toBe(200);
    expect(res.text).toBe("ok");
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(app.store.calls).toEqual([]);
  });

  test("a new session that stays empty is never stored", async () => {
    const app = await t.mount();
    const res = await app.client().get("/get/user");
    expect(res.text).toBe("null");
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(app.store.calls).toEqual([]);
  });

  test("new session with data: created, cookie set, not cacheable", async () => {
    const app = await t.mount();
    const res = await app.client().post("/set/user/alice");
    expect(res.status).toBe(200);
    const set = res.headers.get("set-cookie") ?? "";
    expect(set).toMatch(
      /^session_id=[A-Za-z0-9_-]{32}; Path=\/; Max-Age=86400; HttpOnly; SameSite=Lax$/,
    );
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("vary")).toBe("Cookie");
    expect(app.store.calls).toEqual(["write:create"]);
  });

  test("stored session read: one load, no write, no cookie", async () => {
    const app = await t.mount();
    const client = app.client();
    await client.post("/set/user/alice");
    app.store.reset();
    const res = await client.get("/get/user");
    expect(res.text).toBe('"alice"');
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(app.store.calls).toEqual(["load"]);
  });

  test("stored session changed: updated in place, same cookie", async () => {
    const app = await t.mount();
    const client = app.client();
    await client.post("/set/user/alice");
    const before = client.cookie;
    app.store.reset();
    const res = await client.post("/set/theme/dark");
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(app.store.calls).toEqual(["load", "write:update"]);
    expect(client.cookie).toBe(before);
    expect((await client.get("/get/theme")).text).toBe('"dark"');
    expect((await client.get("/get/user")).text).toBe('"alice"');
  });

  test("cycleId: new id, same data, the old id is dead", async () => {
    const app = await t.mount();
    const client = app.client();
    await client.post("/set/user/alice");
    const old = client.cookie;
    const res = await client.post("/cycle");
    expect(res.headers.get("set-cookie")).toMatch(/^session_id=/);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(client.cookie).not.toBe(old);
    expect((await client.get("/get/user")).text).toBe('"alice"');
    const stale = await app.driver.request("GET", "/get/user", { headers: { cookie: old } });
    expect(stale.text).toBe("null");
  });

  test("destroy: record deleted, cookie cleared", async () => {
    const app = await t.mount();
    const client = app.client();
    await client.post("/set/user/alice");
    const old = client.cookie;
    const res = await client.post("/destroy");
    expect(res.headers.get("set-cookie")).toMatch(/^session_id=; .*Max-Age=0/);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("vary")).toBe("Cookie");
    const stale = await app.driver.request("GET", "/get/user", { headers: { cookie: old } });
    expect(stale.text).toBe("null");
  });

  test("destroy then write: a new session replaces the old one", async () => {
    const app = await t.mount();
    const client = app.client();
    await client.post("/set/user/alice");
    const old = client.cookie;
    await client.post("/destroy-then-set");
    expect(client.cookie).not.toBe(old);
    expect((await client.get("/get/fresh")).text).toBe("true");
    expect((await client.get("/get/user")).text).toBe("null");
    const stale = await app.driver.request("GET", "/get/fresh", { headers: { cookie: old } });
    expect(stale.text).toBe("null");
  });

  test("removing the last key deletes the session and clears the cookie", async () => {
    const app = await t.mount();
    const client = app.client();
    await client.post("/set/user/alice");
    app.store.reset();
    const res = await client.post("/remove/user");
    expect(res.headers.get("set-cookie")).toMatch(/Max-Age=0/);
    expect(app.store.calls).toEqual(["load", "destroy"]);
  });

  test("remember-me: the cookie's Max-Age follows setExpiry", async () => {
    const app = await t.mount();
    const res = await app.client().post("/remember/1209600");
    expect(res.headers.get("set-cookie")).toMatch(/Max-Age=1209600/);
  });

  test("an existing Vary header keeps its value and gains Cookie", async () => {
    const app = await t.mount();
    const res = await app.client().get("/vary");
    expect(res.headers.get("vary")).toBe("Accept-Encoding, Cookie");
  });

  for (const [route, status] of [
    ["/fail/user", 500],
    ["/unavailable/user", 503],
    ["/throw/user", 500],
  ] as const) {
    test(`a ${status} response (${route}) saves nothing`, async () => {
      const app = await t.mount();
      const client = app.client();
      const fresh = await client.post(route);
      expect(fresh.status).toBe(status);
      expect(fresh.headers.get("set-cookie")).toBeNull();
      expect(app.store.calls).toEqual([]);
      await client.post("/set/user/alice");
      app.store.reset();
      const res = await client.post(route);
      expect(res.status).toBe(status);
      expect(res.headers.get("set-cookie")).toBeNull();
      expect(app.store.calls).toEqual(["load"]);
      expect((await client.get("/get/user")).text).toBe('"alice"');
    });
  }

  test("a redirect carries the cookie, and the write finished before its headers left", async () => {
    const app = await t.mount();
    app.store.writeDelayMs = 30;
    const client = app.client();
    const res = await client.post("/redirect", {
      onHeaders: () => app.store.events.push("headers"),
    });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toMatch(/\/next$/);
    expect(res.headers.get("set-cookie")).toMatch(/^session_id=/);
    expect(app.store.events).toEqual(["write done", "headers"]);
    expect((await client.get("/get/flash")).text).toBe('"hello"');
  });

  test("a streamed response gets its cookie, and the write finished before the first byte", async () => {
    const app = await t.mount();
    app.store.writeDelayMs = 30;
    const client = app.client();
    const res = await client.get("/stream", {
      onHeaders: () => app.store.events.push("headers"),
    });
    expect(res.text).toBe("one,two,three");
    expect(res.headers.get("set-cookie")).toMatch(/^session_id=/);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(app.store.events).toEqual(["write done", "headers"]);
    expect((await client.get("/get/streamed")).text).toBe("true");
  });
});
