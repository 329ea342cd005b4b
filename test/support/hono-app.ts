import { Hono } from "hono";
import { getSession, session } from "../../src/adapters/hono.js";
import type { SessionEngine } from "../../src/core/engine.js";

/** Cookie jar of one: keeps the session cookie between requests like a browser would. */
export class Jar {
  cookie = "";
  take(res: Response): string | null {
    const set = res.headers.get("set-cookie");
    if (set) {
      const pair = set.split(";")[0] ?? "";
      this.cookie = /Max-Age=0/.test(set) ? "" : pair;
    }
    return set;
  }
  headers(): Record<string, string> {
    return this.cookie ? { cookie: this.cookie } : {};
  }
}

/** A small app exercising every session operation, for decision-table and expiry tests. */
export function sessionApp(engine: SessionEngine) {
  const app = new Hono();
  app.use(session(engine));
  app.get("/untouched", (c) => c.text("ok"));
  app.get("/get/:key", async (c) => c.json((await getSession(c).get(c.req.param("key"))) ?? null));
  app.post("/set/:key/:value", async (c) => {
    await getSession(c).insert(c.req.param("key"), c.req.param("value"));
    return c.text("set");
  });
  app.post("/remove/:key", async (c) => {
    await getSession(c).remove(c.req.param("key"));
    return c.text("removed");
  });
  app.post("/cycle", async (c) => {
    await getSession(c).cycleId();
    return c.text("cycled");
  });
  app.post("/destroy", async (c) => {
    await getSession(c).destroy();
    return c.text("destroyed");
  });
  app.post("/destroy-then-set", async (c) => {
    const s = getSession(c);
    await s.destroy();
    await s.insert("fresh", true);
    return c.text("replaced");
  });
  app.post("/remember/:secs", async (c) => {
    const s = getSession(c);
    await s.insert("user", "alice");
    await s.setExpiry(Number(c.req.param("secs")));
    return c.text("remembered");
  });
  app.post("/fail/:key", async (c) => {
    await getSession(c).insert(c.req.param("key"), "never");
    return c.text("boom", 500);
  });
  app.post("/throw/:key", async (c) => {
    await getSession(c).insert(c.req.param("key"), "never");
    throw new Error("handler bug");
  });
  app.get("/redirect", async (c) => {
    await getSession(c).insert("flash", "hello");
    return Response.redirect("http://localhost/next", 303);
  });
  return app;
}
