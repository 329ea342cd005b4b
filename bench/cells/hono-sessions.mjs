// Hono's incumbent: hono-sessions with its MemoryStore (it has no Redis store and no CSRF).
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { MemoryStore, sessionMiddleware } from "hono-sessions";
import { serveCell } from "../lib/cell.mjs";

const store = new MemoryStore();
const app = new Hono();
app.use(
  sessionMiddleware({
    store,
    expireAfterSeconds: 86400,
    cookieOptions: { path: "/", httpOnly: true, sameSite: "Lax" },
  }),
);
app.get("/login", (c) => {
  const s = c.get("session");
  s.set("user", "alice");
  s.set("n", 0);
  return c.text("ok");
});
app.get("/untouched", (c) => c.text("ok"));
app.get("/read", (c) => c.text(c.get("session").get("user") ?? "anon"));
app.get("/write", (c) => {
  const s = c.get("session");
  const n = (s.get("n") ?? 0) + 1;
  s.set("n", n);
  return c.text(String(n));
});
app.get("/visit", (c) => c.text(c.get("session").get("user") ?? "anon"));

await serveCell({
  listen: (port) => new Promise((resolve) => serve({ fetch: app.fetch, port }, resolve)),
  entries: async () => store.data.size,
});
