// Express 5 with no session layer: the baseline the session cells are divided by.
import express from "express";
import { serveCell } from "../lib/cell.mjs";

const app = express();
// The same routes before /untouched and /read as the session cells (never requested here): Express
// tries routes in order, so a measured route must be as far down the list as in the other cells.
app.get("/login", (_req, res) => res.send("ok"));
app.get("/token", (_req, res) => res.send("none"));
app.get("/untouched", (_req, res) => res.send("ok"));
app.get("/read", (_req, res) => res.send("alice"));
app.get("/write", (_req, res) => res.send("1"));
app.get("/visit", (_req, res) => res.send("anon"));
app.post("/form", express.urlencoded({ extended: false }), (req, res) => {
  res.send(req.body.title === "hello" ? "saved" : "bad form");
});
// The same answer as a session cell's /form-session, with no session to read.
app.post("/form-session", express.urlencoded({ extended: false }), (req, res) => {
  res.send(req.body.title === "hello" ? "saved" : "bad form");
});

await serveCell({
  listen: (port) => new Promise((resolve) => app.listen(port, "127.0.0.1", resolve)),
});
