import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import express from "express";
import { afterEach, expect, test } from "vitest";
import { session } from "../../src/adapters/express.js";
import { createSessionEngine } from "../../src/setup.js";
import { MemoryStore } from "../../src/stores/memory.js";

/** The response hold with other copies of Express in the same process. */

const express4 = createRequire(import.meta.url)("express4") as typeof express;

let server: Server | undefined;
afterEach(() => {
  server?.closeAllConnections();
  server?.close();
  server = undefined;
});

async function start(handler: Parameters<typeof createServer>[1]): Promise<number> {
  server = createServer(handler);
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

const engine = () => createSessionEngine({ env: {}, secure: false, store: new MemoryStore() });

test("a session held in an Express 5 app and answered by an Express 4 app it calls is still saved", async () => {
  // Another copy of Express (another major here; a package bringing its own copy is the same):
  // entering the mounted app swaps the response's prototype to one under *its* express.response,
  // which never got the shared methods, so res.end goes straight to Node.
  const eng = engine();
  const app = express();
  app.use(session(eng));
  app.use(async (req, _res, next) => {
    await req.session.insert("user", "alice"); // held here, on Express 5's response prototype
    next();
  });
  const inner = express4();
  inner.get("/", (_req, res) => {
    res.send("inner");
  });
  // Called as a plain middleware (no Express "mount" event re-parents its response prototype).
  app.use("/inner", (req, res, next) => (inner as unknown as express.Express)(req, res, next));
  const port = await start(app);
  const got = await fetch(`http://127.0.0.1:${port}/inner/`, { signal: AbortSignal.timeout(3000) });
  expect(await got.text()).toBe("inner");
  expect(got.headers.get("set-cookie")).toMatch(/^session_id=/);
});
