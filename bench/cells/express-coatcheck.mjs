// Express 5 with coatcheck, on the memory store, Redis or PostgreSQL (BENCH_STORE).
import express from "express";
import { serveCell } from "../lib/cell.mjs";
import { coatcheckStore, csrfTokenOf, fromDist, sessionOptions } from "../lib/coatcheck.mjs";

const { session, sessionErrors } = await fromDist("adapters/express.js");
const { store, entries, statements, close } = await coatcheckStore();

const app = express();
app.use(session(sessionOptions(store)));
app.get("/login", async (req, res) => {
  await req.session.insert("user", "alice");
  await req.session.insert("n", 0);
  res.send("ok");
});
app.get("/token", async (req, res) => res.send(await csrfTokenOf(req.session)));
app.get("/untouched", (_req, res) => res.send("ok"));
app.get("/read", async (req, res) => res.send((await req.session.get("user")) ?? "anon"));
app.get("/write", async (req, res) => {
  const n = ((await req.session.get("n")) ?? 0) + 1;
  await req.session.insert("n", n);
  res.send(String(n));
});
app.get("/visit", async (req, res) => res.send((await req.session.get("user")) ?? "anon"));
app.post("/form", express.urlencoded({ extended: false }), (req, res) => {
  res.send(req.body.title === "hello" ? "saved" : "bad form");
});
app.post("/form-session", express.urlencoded({ extended: false }), async (req, res) => {
  if ((await req.session.get("user")) !== "alice") return res.status(401).send("signed out");
  res.send(req.body.title === "hello" ? "saved" : "bad form");
});
app.use(sessionErrors());

await serveCell({
  listen: (port) => new Promise((resolve) => app.listen(port, "127.0.0.1", resolve)),
  entries,
  statements,
  close,
});
