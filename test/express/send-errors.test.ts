import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import express from "express";
import { afterEach, describe, expect, test } from "vitest";
import { session } from "../../src/adapters/express.js";
import { createSessionEngine } from "../../src/setup.js";
import { MemoryStore } from "../../src/stores/memory.js";

/**
 * While the session is saved, the response's head and body wait in the hold; they are let through
 * after the commit. A head Node refuses (a status code out of range, a status message with a line
 * break) throws there, outside the handler: the client must still get an answer (a plain 500 that
 * keeps the saved session's cookie), and nothing may become an unhandled rejection.
 */

const express4 = createRequire(import.meta.url)("express4") as typeof express;

const servers: Server[] = [];
const rejections: unknown[] = [];
const onUnhandled = (reason: unknown) => rejections.push(reason);
afterEach(() => {
  process.off("unhandledRejection", onUnhandled);
  rejections.length = 0;
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

async function start(app: express.Express): Promise<string> {
  const server = createServer(app);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

type Answer = (res: express.Response) => void;
/** Each case, its Express, its answer, and whether the commit saves (a status ≥ 500 saves nothing). */
const refusedHeads: Array<[string, typeof express, Answer, boolean]> = [
  ["Express 4, a status code out of range", express4, (res) => res.status(1000).send("x"), false],
  [
    "Express 5, a status message with a line break",
    express,
    (res) => res.writeHead(200, "ok\nbad").end("x"),
    true,
  ],
];

function appWith(plugin: boolean, make: typeof express, answer: Answer): express.Express {
  const app = make();
  if (plugin)
    app.use(session(createSessionEngine({ env: {}, secure: false, store: new MemoryStore() })));
  // Errors go to `next` by hand: Express 4 does not catch a rejected handler.
  app.get("/", (req, res, next) => {
    // The session changed, so the hold waits for the commit before the head goes out.
    const changed = plugin ? req.session.insert("visits", 1) : Promise.resolve();
    changed.then(() => answer(res)).catch(next);
  });
  return app;
}

describe("Express: a head Node refuses after the commit", () => {
  test.each(refusedHeads)(
    "%s: a 500, no unhandled rejection",
    async (_case, make, answer, saves) => {
      process.on("unhandledRejection", onUnhandled);
      const bare = await fetch(await start(appWith(false, make, answer)), {
        signal: AbortSignal.timeout(3000),
      });
      expect(bare.status).toBe(500);

      const held = await fetch(await start(appWith(true, make, answer)), {
        signal: AbortSignal.timeout(3000),
      });
      await new Promise((resolve) => setImmediate(resolve));
      expect(rejections).toEqual([]);
      expect(held.status).toBe(500);
      expect(held.headers.get("cache-control")).toBe("no-store");
      // A session saved before the head was refused keeps its cookie; a failed status saved nothing.
      if (saves) expect(held.headers.get("set-cookie")).toMatch(/^session_id=/);
      else expect(held.headers.get("set-cookie")).toBeNull();
      expect(await held.text()).toBe("Internal Server Error");
    },
  );
});
