import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createH2Server } from "node:http2";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { afterEach, describe, expect, test, vi } from "vitest";
import { getCsrfToken, getSession, session } from "../../src/adapters/hono.js";
import { createSessionEngine } from "../../src/setup.js";
import { MemoryStore } from "../../src/stores/memory.js";
import { cookieFrom, h2Request } from "../support/h2.js";

/** Hono through its real request paths: `app.request`, @hono/node-server over HTTP/1.1 and h2. */

const FORM = "application/x-www-form-urlencoded";
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  vi.restoreAllMocks();
});

function listen(server: Server | ReturnType<typeof createH2Server>): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
    closers.push(
      () =>
        new Promise((done) => {
          (server as Server).closeAllConnections?.();
          server.close(() => done());
        }),
    );
  });
}

class FailingWrites extends MemoryStore {
  failing = false;
  override async write(...args: Parameters<MemoryStore["write"]>) {
    if (this.failing) throw new Error("store down");
    return super.write(...args);
  }
}

function engine(csrf = false, store = new MemoryStore()) {
  return createSessionEngine({
    env: {},
    secure: false,
    csrf: { enabled: csrf },
    store,
    logger: { warn: () => {}, error: () => {} },
  });
}

describe("Hono: a proxied (immutable) response", () => {
  test("keeps the session cookie beside the upstream's, and no-store and Vary: Cookie win", async () => {
    const upstream = createHttpServer((_req, res) => {
      res.setHeader("cache-control", "public, max-age=600");
      res.setHeader("vary", "Accept-Encoding");
      res.setHeader("set-cookie", "upstream=1; Path=/");
      res.end("from upstream");
    });
    const port = await listen(upstream);
    const app = new Hono();
    app.use(session(engine()));
    app.get("/proxy", async (c) => {
      await getSession(c).insert("user", "alice");
      return fetch(`http://127.0.0.1:${port}/`);
    });
    const res = await app.request("/proxy");
    expect(await res.text()).toBe("from upstream");
    const cookies = res.headers.getSetCookie();
    expect(cookies.some((c) => c.startsWith("upstream=1"))).toBe(true);
    expect(cookies.some((c) => c.startsWith("session_id="))).toBe(true);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("vary")).toBe("Accept-Encoding, Cookie");
  });
});

describe("Hono: a 503 at commit", () => {
  test("carries none of the app's headers and frames its own body over a keep-alive socket", async () => {
    const store = new FailingWrites();
    const app = new Hono();
    app.use(session(engine(false, store)));
    app.get("/page", async (c) => {
      await getSession(c).insert("user", "alice");
      c.header("etag", '"abc"');
      c.header("cache-control", "public, max-age=60");
      c.header("set-cookie", "theme=dark");
      return c.text("hello world");
    });
    const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
    closers.push(() => new Promise((done) => server.close(() => done())));
    await new Promise((resolve) => server.once("listening", resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    store.failing = true;
    const failed = await fetch(`${base}/page`);
    const body = await failed.text();
    expect(failed.status).toBe(503);
    expect(failed.headers.get("etag")).toBeNull();
    expect(failed.headers.get("set-cookie")).toBeNull();
    expect(failed.headers.get("cache-control")).toBe("no-store");
    const length = failed.headers.get("content-length");
    if (length !== null) expect(Number(length)).toBe(Buffer.byteLength(body));
    store.failing = false;
    // The next response on the same keep-alive connection parses.
    const next = await fetch(`${base}/page`);
    expect(next.status).toBe(200);
    expect(await next.text()).toBe("hello world");
  });
});

describe("Hono: the form field, whoever read the body first", () => {
  async function app(before: "formData" | "parseBody" | "none") {
    const a = new Hono();
    if (before !== "none") {
      a.use(async (c, next) => {
        if (c.req.method === "POST") await c.req[before]();
        await next();
      });
    }
    a.use(session(engine(true)));
    a.get("/token", async (c) => c.text((await getCsrfToken(c)).token()));
    a.post("/form", async (c) => c.json(await c.req.parseBody()));
    a.post("/raw", async (c) => c.text(await c.req.raw.text()));
    const first = await a.request("/token");
    const cookie = cookieFrom(first.headers.get("set-cookie") ?? "");
    return { a, cookie, token: await first.text() };
  }

  for (const before of ["formData", "parseBody", "none"] as const) {
    test(`urlencoded and multipart tokens are found (body read before: ${before})`, async () => {
      const { a, cookie, token } = await app(before);
      const urlencoded = await a.request("/form", {
        method: "POST",
        headers: { cookie, "content-type": FORM },
        body: `_csrf=${encodeURIComponent(token)}&title=hi`,
      });
      expect(urlencoded.status).toBe(200);
      expect(await urlencoded.json()).toMatchObject({ title: "hi" });
      const data = new FormData();
      data.append("_csrf", token);
      data.append("title", "multi");
      const multipart = await a.request("/form", {
        method: "POST",
        headers: { cookie },
        body: data,
      });
      expect(multipart.status).toBe(200);
      expect(await multipart.json()).toMatchObject({ title: "multi" });
    });
  }

  test("reading the field clones no Request, and c.req.raw still reads the body", async () => {
    const { a, cookie, token } = await app("none");
    const clone = vi.spyOn(Request.prototype, "clone");
    const body = `_csrf=${encodeURIComponent(token)}&title=raw`;
    const res = await a.request("/raw", {
      method: "POST",
      headers: { cookie, "content-type": FORM },
      body,
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(body);
    expect(clone).not.toHaveBeenCalled();
  });
});

describe("Hono over HTTP/2 (@hono/node-server with http2.createServer)", () => {
  test("the origin check reads :authority: a same-origin POST passes, a foreign one is refused", async () => {
    const app = new Hono();
    app.use(session(engine(true)));
    app.get("/token", async (c) => c.text((await getCsrfToken(c)).token()));
    app.post("/save", async (c) => {
      await getSession(c).insert("saved", true);
      return c.text("saved");
    });
    const server = serve({
      fetch: app.fetch,
      port: 0,
      hostname: "127.0.0.1",
      createServer: createH2Server,
    });
    closers.push(() => new Promise((done) => server.close(() => done())));
    await new Promise((resolve) => server.once("listening", resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const first = await h2Request(origin, { method: "GET", path: "/token" });
    const cookie = cookieFrom(first.headers["set-cookie"]);
    const post = (from: string) =>
      h2Request(origin, {
        method: "POST",
        path: "/save",
        headers: {
          cookie,
          origin: from,
          "x-csrf-token": first.text,
          "sec-fetch-site": "same-origin",
        },
      });
    const same = await post(origin);
    expect(same.text).toBe("saved");
    expect(same.status).toBe(200);
    expect(same.text).toBe("saved");
    expect((await post("http://evil.example")).status).toBe(403);
  });
});
