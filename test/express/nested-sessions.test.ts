import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { afterEach, expect, test } from "vitest";
import { session } from "../../src/adapters/express.js";
import { createSessionEngine } from "../../src/setup.js";

let server: Server | undefined;
afterEach(() => {
  server?.closeAllConnections();
  server?.close();
  server = undefined;
});

async function serve(app: express.Express) {
  server = createServer(app);
  await new Promise<void>((r) => server?.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

// Two session() middlewares on one request (app-wide and again in a mounted router or sub-app),
// each used once: the two response holds nest, and the response is sent once both have committed.
test("a session used under two session() middlewares still answers", async () => {
  const engine = createSessionEngine({ env: {}, secure: false });
  const app = express();
  app.use(session(engine));
  app.use(async (req, _res, next) => {
    await req.session.insert("a", 1); // first middleware's exchange: hold #1
    next();
  });
  const sub = express.Router();
  sub.use(session(engine));
  sub.get("/x", async (req, res) => {
    await req.session.insert("b", 2); // second middleware's exchange: hold #2
    res.send("ok");
  });
  app.use(sub);
  const errors: unknown[] = [];
  app.use(
    (err: unknown, _req: express.Request, res: express.Response, _n: express.NextFunction) => {
      errors.push(err);
      res.status(500).end();
    },
  );
  const base = await serve(app);
  const got = await fetch(`${base}/x`, { signal: AbortSignal.timeout(3000) }).then(
    async (r) => `${r.status} ${await r.text()}`,
    (e: unknown) => `fetch failed: ${String(e)}`,
  );
  expect(got).toBe("200 ok");
});

// The second session() takes over the request's record after the first has held the response: the
// first hold must stay in force (it lives in that record), so its write is saved before the answer.
test("a session used before a second session() that is never used is still saved", async () => {
  const engine = createSessionEngine({ env: {}, secure: false });
  const app = express();
  app.use(session(engine));
  app.use(async (req, _res, next) => {
    await req.session.insert("a", 1); // first middleware's exchange holds the response
    next();
  });
  const sub = express.Router();
  sub.use(session(engine)); // attached, never used
  sub.get("/x", (_req, res) => {
    res.set("x-sent-after", String(res.headersSent));
    res.send("ok");
  });
  app.use(sub);
  app.get("/read", async (req, res) => res.send(String(await req.session.get("a"))));
  const base = await serve(app);
  const first = await fetch(`${base}/x`);
  expect(first.status).toBe(200);
  expect(await first.text()).toBe("ok");
  const cookie = first.headers.get("set-cookie");
  expect(cookie).toMatch(/^session_id=/);
  expect(first.headers.get("vary")).toBe("Cookie");
  const again = await fetch(`${base}/read`, {
    headers: { cookie: String(cookie).split(";")[0] ?? "" },
  });
  expect(await again.text()).toBe("1");
});
