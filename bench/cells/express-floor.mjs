// Express with the least a session layer does on a read (see bench/floor.mjs): one middleware on
// every request that keeps a per-request object on the request, and `Vary: Cookie` on /read.
import express from "express";
import { serveCell } from "../lib/cell.mjs";

const app = express();
app.use((req, res, next) => {
  req.floor = { id: null };
  if (req.path === "/read") res.append("Vary", "Cookie");
  next();
});
// The bare cell's route order (Express walks routes in order).
app.get("/login", (_req, res) => res.send("ok"));
app.get("/token", (_req, res) => res.send("none"));
app.get("/untouched", (_req, res) => res.send("ok"));
app.get("/read", (_req, res) => res.send("alice"));

await serveCell({
  listen: (port) => new Promise((resolve) => app.listen(port, "127.0.0.1", resolve)),
});
