// Hono with no session layer: the baseline the session cells are divided by.
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { serveCell } from "../lib/cell.mjs";

const app = new Hono();
app.get("/untouched", (c) => c.text("ok"));
app.get("/read", (c) => c.text("alice"));
app.get("/visit", (c) => c.text("anon"));
app.post("/form", async (c) => {
  const body = await c.req.parseBody();
  return c.text(body.title === "hello" ? "saved" : "bad form");
});
// The same answer as a session cell's /form-session, with no session to read.
app.post("/form-session", async (c) => {
  const body = await c.req.parseBody();
  return c.text(body.title === "hello" ? "saved" : "bad form");
});

await serveCell({
  listen: (port) => new Promise((resolve) => serve({ fetch: app.fetch, port }, resolve)),
});
