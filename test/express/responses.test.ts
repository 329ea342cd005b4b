import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import express from "express";
import { afterEach, expect, test } from "vitest";
import { getSession, session, sessionErrors } from "../../src/adapters/express.js";
import { MissingMiddlewareError } from "../../src/core/errors.js";
import { createSessionEngine } from "../../src/setup.js";

/** Express-only response paths: every way of writing a response gets its cookie first. */

let server: Server | undefined;
afterEach(() => {
  server?.closeAllConnections();
  server?.close();
  server = undefined;
});

async function start(mount: (app: express.Express) => void, withSession = true) {
  const app = express();
  if (withSession) app.use(session(createSessionEngine({ env: {}, secure: false })));
  mount(app);
  app.use(sessionErrors());
  server = createServer(app);
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return (path: string, init?: RequestInit) => fetch(`${base}${path}`, init);
}

const insert: express.RequestHandler = async (req, _res, next) => {
  await req.session.insert("seen", true);
  next();
};

test("writeHead with its own headers: the cookie is added and no-store wins", async () => {
  const get = await start((app) =>
    app.get("/", insert, (_req, res) => {
      res.writeHead(200, "Fine", { "cache-control": "public, max-age=600", vary: "Accept" });
      res.end("hi");
    }),
  );
  const res = await get("/");
  expect(res.status).toBe(200);
  expect(res.statusText).toBe("Fine");
  expect(res.headers.get("set-cookie")).toMatch(/^session_id=/);
  expect(res.headers.get("cache-control")).toBe("no-store");
  expect(res.headers.get("vary")).toBe("Accept, Cookie");
  expect(await res.text()).toBe("hi");
});

test("writeHead with a raw header array", async () => {
  const get = await start((app) =>
    app.get("/", insert, (_req, res) => {
      res.writeHead(201, ["x-one", "1", "set-cookie", "theme=dark"]);
      res.end();
    }),
  );
  const res = await get("/");
  expect(res.status).toBe(201);
  expect(res.headers.get("x-one")).toBe("1");
  const cookies = res.headers.getSetCookie();
  expect(cookies).toHaveLength(2);
  expect(cookies[0]).toBe("theme=dark");
  expect(cookies[1]).toMatch(/^session_id=/);
});

test("a large piped stream arrives whole, with the cookie, respecting backpressure", async () => {
  const chunk = "z".repeat(64 * 1024);
  const get = await start((app) =>
    app.get("/", insert, (_req, res) => {
      res.type("text/plain");
      Readable.from(Array.from({ length: 64 }, () => chunk)).pipe(res);
    }),
  );
  const res = await get("/");
  expect(res.headers.get("set-cookie")).toMatch(/^session_id=/);
  expect((await res.text()).length).toBe(64 * 64 * 1024);
});

test("res.flushHeaders() and an early res.end() wait for the save too", async () => {
  const get = await start((app) => {
    app.get("/flush", insert, (_req, res) => {
      res.flushHeaders();
      res.end("late body");
    });
    app.get("/empty", insert, (_req, res) => {
      res.status(204).end();
    });
  });
  const flushed = await get("/flush");
  expect(flushed.headers.get("set-cookie")).toMatch(/^session_id=/);
  expect(await flushed.text()).toBe("late body");
  const empty = await get("/empty");
  expect(empty.status).toBe(204);
  expect(empty.headers.get("set-cookie")).toMatch(/^session_id=/);
});

test("res.json, res.sendStatus and res.redirect", async () => {
  const get = await start((app) => {
    app.get("/json", insert, (_req, res) => {
      res.json({ ok: true });
    });
    app.get("/status", insert, (_req, res) => {
      res.sendStatus(202);
    });
    app.get("/redirect", insert, (_req, res) => {
      res.redirect("/elsewhere");
    });
  });
  for (const path of ["/json", "/status", "/redirect"]) {
    const res = await get(path, { redirect: "manual" });
    expect(res.headers.get("set-cookie"), path).toMatch(/^session_id=/);
  }
});

test("getSession on a route without the middleware says which middleware to add", async () => {
  let caught: unknown;
  const get = await start((app) => {
    app.get("/", (req, res) => {
      try {
        getSession(req);
      } catch (error) {
        caught = error;
      }
      res.send("done");
    });
  }, false);
  await get("/");
  expect(caught).toBeInstanceOf(MissingMiddlewareError);
  expect((caught as Error).message).toContain('app.use(session()) from "coatcheck/express"');
});

test("responses held at the same time keep their own state", async () => {
  let releaseSlow: () => void = () => {};
  const slowWritten = new Promise<void>((resolve) => {
    releaseSlow = resolve;
  });
  const get = await start((app) => {
    app.get("/slow", insert, async (_req, res) => {
      res.write("a");
      await slowWritten;
      res.end("b");
    });
    app.get("/fast", insert, (_req, res) => {
      res.status(201).send("fast");
      // This response is held now; the other one's state must not leak into it.
      expect(res.headersSent).toBe(true);
      expect(() => res.setHeader("x-late", "1")).toThrow(/after they are sent/);
    });
  });
  const slow = get("/slow");
  const fast = await get("/fast");
  expect(fast.status).toBe(201);
  expect(await fast.text()).toBe("fast");
  expect(fast.headers.get("x-late")).toBeNull();
  releaseSlow();
  const slowRes = await slow;
  expect(slowRes.headers.get("set-cookie")).toMatch(/^session_id=/);
  expect(await slowRes.text()).toBe("ab");
});

test("a wrapper set on the response before the session is used stays in the chain", async () => {
  const seen: string[] = [];
  const app = express();
  // What compression does: its own `write`/`end` on the response, calling the ones it replaced.
  app.use((_req, res, next) => {
    const end = res.end as (...args: unknown[]) => express.Response;
    res.end = function (this: express.Response, ...args: unknown[]) {
      seen.push(`end:${String(args[0])}`);
      return end.apply(this, args);
    } as typeof res.end;
    next();
  });
  app.use(session(createSessionEngine({ env: {}, secure: false })));
  app.get("/", insert, (_req, res) => {
    res.send("body");
    seen.push(`headersSent:${res.headersSent}`);
  });
  server = createServer(app);
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  expect(res.headers.get("set-cookie")).toMatch(/^session_id=/);
  expect(await res.text()).toBe("body");
  expect(seen).toEqual(["headersSent:true", "end:body"]);
});

test("a session used before a mounted sub-app: the sub-app's response is still held and saved", async () => {
  const sub = express();
  sub.get("/page", (_req, res) => {
    res.send("from the sub-app");
  });
  const get = await start((app) => {
    // Express gives the response the sub-app's prototype inside it, and its own back after.
    app.use(insert);
    app.use("/sub", sub);
  });
  const res = await get("/sub/page");
  expect(await res.text()).toBe("from the sub-app");
  expect(res.headers.get("set-cookie")).toMatch(/^session_id=/);
});

// The shared hold methods find a response's hold through `res.req`; a response whose `req` is not
// the request the middleware saw is held through methods of its own instead, with the same result.
test("a response whose res.req was replaced is still held and saved", async () => {
  const get = await start((app) => {
    app.use((req, res, next) => {
      // The same request, seen through a proxy that hides coatcheck's symbols.
      const hidden = (key: string | symbol) =>
        typeof key === "symbol" && key.description?.startsWith("coatcheck") === true;
      res.req = new Proxy(req, {
        get: (target, key) => (hidden(key) ? undefined : Reflect.get(target, key, target)),
      });
      next();
    });
    app.get("/", insert, (_req, res) => {
      expect(Object.hasOwn(res, "end")).toBe(true); // held through methods of its own
      expect(res.headersSent).toBe(false);
      res.send("ok");
      expect(res.headersSent).toBe(true);
    });
    app.get("/seen", async (req, res) => res.send(String(await req.session.get("seen"))));
  });
  const res = await get("/");
  expect(res.status).toBe(200);
  expect(await res.text()).toBe("ok");
  const cookie = String(res.headers.get("set-cookie")).split(";")[0] ?? "";
  expect(cookie).toMatch(/^session_id=/);
  expect(await (await get("/seen", { headers: { cookie } })).text()).toBe("true");
});
