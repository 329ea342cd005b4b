import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import express from "express";
import { afterEach, describe, expect, test } from "vitest";
import { getSession, session } from "../../src/adapters/express.js";
import { MissingMiddlewareError, SessionCommittedError } from "../../src/core/errors.js";
import { createSessionEngine } from "../../src/setup.js";
import { MemoryStore } from "../../src/stores/memory.js";

/** Express on a loopback port: what the response reports while coatcheck holds its output. */

let server: Server | undefined;
afterEach(() => {
  server?.closeAllConnections();
  server?.close();
  server = undefined;
});

async function start(app: express.Express): Promise<number> {
  server = createServer(app);
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

/** Every byte the server sends for one request, until it closes the connection. */
function rawExchange(port: number, path: string): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    const socket = connect(port, "127.0.0.1", () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    });
    socket.on("data", (chunk) => {
      text += chunk.toString();
    });
    socket.on("close", () => resolve(text));
    socket.on("error", () => resolve(text));
  });
}

// Loaded untyped: its types would redeclare `req.session` for the whole project.
const expressSession = createRequire(import.meta.url)("express-session") as (options: {
  secret: string;
  resave: boolean;
  saveUninitialized: boolean;
}) => express.RequestHandler;

const engine = () => createSessionEngine({ env: {}, secure: false, store: new MemoryStore() });

describe("Express: headersSent while coatcheck holds the output", () => {
  test("a handler that streams then throws meets the headersSent idiom: one response, no 500", async () => {
    const seen: boolean[] = [];
    const app = express();
    app.use(session(engine()));
    app.get("/stream", async (req, res) => {
      await req.session.insert("user", "alice");
      res.write("partial ");
      seen.push(res.headersSent);
      throw new Error("failed mid-stream");
    });
    app.use(((error, _req, res, next) => {
      if (res.headersSent) {
        next(error);
        return;
      }
      res.status(500).send("Internal Server Error");
    }) as express.ErrorRequestHandler);
    const port = await start(app);
    const raw = await rawExchange(port, "/stream");
    expect(seen).toEqual([true]);
    expect(raw.match(/HTTP\/1\.1 \d{3}/g)).toEqual(["HTTP/1.1 200"]);
    expect(raw).not.toContain("Internal Server Error");
    expect(raw.match(/set-cookie/gi)?.length ?? 0).toBeLessThanOrEqual(1);
  });

  test("setting a header after output started throws as it does without coatcheck", async () => {
    let error: unknown;
    const app = express();
    app.use(session(engine()));
    app.get("/late", (_req, res) => {
      res.write("a");
      try {
        res.setHeader("x-late", "1");
      } catch (e) {
        error = e;
      }
      res.end("b");
    });
    const port = await start(app);
    const res = await fetch(`http://127.0.0.1:${port}/late`);
    expect(await res.text()).toBe("ab");
    expect(res.headers.get("x-late")).toBeNull();
    expect((error as { code?: string }).code).toBe("ERR_HTTP_HEADERS_SENT");
  });
});

describe("Express: req.session where the middleware does not run", () => {
  test("throws MissingMiddlewareError, like getSession, not a TypeError", async () => {
    const errors: unknown[] = [];
    const app = express();
    app.get("/outside", async (req, res) => {
      try {
        await req.session.get("user");
      } catch (e) {
        errors.push(e);
      }
      try {
        getSession(req);
      } catch (e) {
        errors.push(e);
      }
      res.send("ok");
    });
    app.use("/inside", session(engine()));
    app.get("/inside/page", async (req, res) => {
      res.send(String(await req.session.isEmpty()));
    });
    const port = await start(app);
    expect(await (await fetch(`http://127.0.0.1:${port}/outside`)).text()).toBe("ok");
    expect(await (await fetch(`http://127.0.0.1:${port}/inside/page`)).text()).toBe("true");
    expect(errors).toHaveLength(2);
    for (const e of errors) expect(e).toBeInstanceOf(MissingMiddlewareError);
  });
});

describe("Express: a route that never uses the session", () => {
  test("its response is not held or given methods; a route that uses it is held and saved", async () => {
    const seen: Record<string, unknown> = {};
    const own = (res: object) =>
      ["writeHead", "write", "end", "headersSent"].filter((name) => Object.hasOwn(res, name));
    const app = express();
    app.use(session(engine()));
    app.get("/plain", (_req, res) => {
      res.send("ok");
      // Not held: the response went out at once, and nothing was added to it.
      seen.plain = { ended: res.writableEnded, own: own(res) };
    });
    app.get("/login", async (req, res) => {
      await req.session.insert("user", "alice");
      res.send("in");
      // Held until the session is saved: sent as far as the app can tell, not ended yet.
      seen.login = { ended: res.writableEnded, sent: res.headersSent, own: own(res) };
    });
    const port = await start(app);
    const plain = await fetch(`http://127.0.0.1:${port}/plain`);
    expect(await plain.text()).toBe("ok");
    expect(plain.headers.get("set-cookie")).toBeNull();
    expect(plain.headers.get("vary")).toBeNull();
    const login = await fetch(`http://127.0.0.1:${port}/login`);
    expect(await login.text()).toBe("in");
    expect(login.headers.get("set-cookie")).toMatch(/^session_id=/);
    expect(login.headers.get("cache-control")).toBe("no-store");
    expect(seen).toEqual({
      plain: { ended: true, own: [] },
      login: { ended: false, sent: true, own: [] },
    });
  });

  test("an app of the same process without the middleware is answered as without coatcheck", async () => {
    const held = express();
    held.use(session(engine()));
    held.get("/", async (req, res) => {
      await req.session.insert("user", "alice");
      res.send("held");
    });
    const heldPort = await start(held);
    expect(await (await fetch(`http://127.0.0.1:${heldPort}/`)).text()).toBe("held");
    // The shared methods are on Node's response prototype now; another app passes through them.
    const seen: boolean[] = [];
    const other = express();
    other.get("/", (_req, res) => {
      seen.push(res.headersSent);
      res.setHeader("x-other", "1");
      res.write("a");
      seen.push(res.headersSent);
      res.end("b");
      seen.push(res.writableEnded);
    });
    const otherPort = await start(other);
    const got = await fetch(`http://127.0.0.1:${otherPort}/`);
    expect(await got.text()).toBe("ab");
    expect(got.headers.get("x-other")).toBe("1");
    expect(got.headers.get("vary")).toBeNull();
    expect(seen).toEqual([false, true, true]);
  });

  test("first used after the response left: changes throw instead of being lost silently", async () => {
    let late: unknown;
    const app = express();
    app.use(session(engine()));
    app.get("/late", (req, res) => {
      res.send("sent");
      req.session.insert("user", "alice").then(
        () => {
          late = "saved";
        },
        (error: unknown) => {
          late = error;
        },
      );
    });
    const port = await start(app);
    const res = await fetch(`http://127.0.0.1:${port}/late`);
    expect(await res.text()).toBe("sent");
    expect(res.headers.get("set-cookie")).toBeNull();
    await expect.poll(() => late).toBeInstanceOf(SessionCommittedError);
  });
});

describe("Express: express-session in the same process", () => {
  test("a sub-app and a router using express-session keep working beside coatcheck", async () => {
    const legacy = express();
    legacy.use(expressSession({ secret: "s", resave: false, saveUninitialized: false }));
    legacy.get("/count", (req, res) => {
      const s = req.session as unknown as { n?: number };
      s.n = (s.n ?? 0) + 1;
      res.send(String(s.n));
    });
    const router = express.Router();
    router.use(expressSession({ secret: "s", resave: false, saveUninitialized: false }));
    router.get("/count", (req, res) => {
      const s = req.session as unknown as { n?: number };
      s.n = (s.n ?? 0) + 1;
      res.send(String(s.n));
    });
    const app = express();
    app.use("/legacy", legacy);
    app.use("/old", router);
    app.use("/new", session(engine()));
    app.get("/new/page", async (req, res) => res.send(String(await req.session.isEmpty())));
    const port = await start(app);
    for (const base of ["legacy", "old"]) {
      const first = await fetch(`http://127.0.0.1:${port}/${base}/count`);
      expect(await first.text()).toBe("1");
      const cookie = (first.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
      expect(cookie).toMatch(/^connect\.sid=/);
      const second = await fetch(`http://127.0.0.1:${port}/${base}/count`, { headers: { cookie } });
      expect(await second.text()).toBe("2");
    }
    expect(await (await fetch(`http://127.0.0.1:${port}/new/page`)).text()).toBe("true");
  });
});
