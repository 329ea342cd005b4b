import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { afterEach, expect, test } from "vitest";
import { session } from "../../src/adapters/express.js";
import type { SessionWrite, WriteMode } from "../../src/core/store.js";
import { createSessionEngine } from "../../src/setup.js";
import { MemoryStore } from "../../src/stores/memory.js";

/**
 * What a store's `write` receives is its own: `SessionWrite.set` is a plain record a store may add
 * to, even for a commit that changed no key (only the lifetime).
 */

let server: Server | undefined;
afterEach(() => {
  server?.closeAllConnections();
  server?.close();
  server = undefined;
});

/** A store that stamps every write with a field of its own (an audit/version key, say). */
class StampingStore extends MemoryStore {
  override write(id: string, write: SessionWrite, mode: WriteMode, now: number) {
    write.set.stamp = JSON.stringify(now);
    return super.write(id, write, mode, now);
  }
}

test("a setExpiry-only GET to a store that adds to write.set is saved, not failed", async () => {
  const engine = createSessionEngine({ env: {}, secure: false, store: new StampingStore() });
  const app = express();
  app.use(session(engine));
  app.get("/login", async (req, res) => {
    await req.session.insert("user", "alice");
    res.send("in");
  });
  app.get("/remember", async (req, res) => {
    await req.session.setExpiry(86_400);
    res.send("kept");
  });
  server = createServer(app);
  await new Promise<void>((r) => server?.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const login = await fetch(`${base}/login`);
  expect(login.status).toBe(200);
  const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] as string;
  const kept = await fetch(`${base}/remember`, { headers: { cookie } });
  expect(kept.status).toBe(200);
  expect(await kept.text()).toBe("kept");
});
