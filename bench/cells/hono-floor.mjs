// Hono with the least a session layer does on a read (see bench/floor.mjs): one middleware on every
// request that keeps a per-request object in the context, and `Vary: Cookie` on the /read response.
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { serveCell } from "../lib/cell.mjs";

const app = new Hono();
app.use((c, next) => {
  c.set("session", { id: null });
  return next().then(() => {
    if (c.req.path === "/read") c.res.headers.append("vary", "Cookie");
  });
});
app.get("/untouched", (c) => c.text("ok"));
app.get("/read", (c) => c.text("alice"));

await serveCell({
  listen: (port) => new Promise((resolve) => serve({ fetch: app.fetch, port }, resolve)),
});
