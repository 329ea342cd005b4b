// Hono with coatcheck, on the memory store, Redis or PostgreSQL (BENCH_STORE).
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { serveCell } from "../lib/cell.mjs";
import { coatcheckStore, csrfTokenOf, fromDist, sessionOptions } from "../lib/coatcheck.mjs";

const { getSession, session } = await fromDist("adapters/hono.js");
const { store, entries, statements, close } = await coatcheckStore();

const app = new Hono();
app.use(session(sessionOptions(store)));
app.get("/login", async (c) => {
  const s = getSession(c);
  await s.insert("user", "alice");
  await s.insert("n", 0);
  return c.text("ok");
});
app.get("/token", async (c) => c.text(await csrfTokenOf(getSession(c))));
app.get("/untouched", (c) => c.text("ok"));
app.get("/read", async (c) => c.text((await getSession(c).get("user")) ?? "anon"));
app.get("/write", async (c) => {
  const s = getSession(c);
  const n = ((await s.get("n")) ?? 0) + 1;
  await s.insert("n", n);
  return c.text(String(n));
});
app.get("/visit", async (c) => c.text((await getSession(c).get("user")) ?? "anon"));
app.post("/form", async (c) => {
  const body = await c.req.parseBody();
  return c.text(body.title === "hello" ? "saved" : "bad form");
});
app.post("/form-session", async (c) => {
  if ((await getSession(c).get("user")) !== "alice") return c.text("signed out", 401);
  const body = await c.req.parseBody();
  return c.text(body.title === "hello" ? "saved" : "bad form");
});

await serveCell({
  listen: (port) => new Promise((resolve) => serve({ fetch: app.fetch, port }, resolve)),
  entries,
  statements,
  close,
});
