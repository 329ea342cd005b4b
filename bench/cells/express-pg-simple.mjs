// Express's incumbent on PostgreSQL: express-session with connect-pg-simple, on a pool whose
// statements are counted, and csrf-sync for the form post (as in express-session.mjs).
import connectPgSimple from "connect-pg-simple";
import { csrfSync } from "csrf-sync";
import express from "express";
import session from "express-session";
import { postgresPool, serveCell } from "../lib/cell.mjs";

const pg = await postgresPool();
const PgStore = connectPgSimple(session);
// The table is created by the runner beforehand (connect-pg-simple's own table.sql), as its docs
// advise for production; the prune timer keeps its default (every 15 minutes).
const store = new PgStore({ pool: pg.counted, tableName: "session" });
const { csrfSynchronisedProtection, generateToken } = csrfSync({
  getTokenFromRequest: (req) => req.body?._csrf,
});

const app = express();
app.use(
  session({
    store,
    secret: "a benchmark secret of at least thirty-two characters",
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, sameSite: "lax" },
  }),
);
app.get("/login", (req, res) => {
  req.session.user = "alice";
  req.session.n = 0;
  res.send("ok");
});
app.get("/token", (req, res) => res.send(generateToken(req)));
app.get("/untouched", (_req, res) => res.send("ok"));
app.get("/read", (req, res) => res.send(req.session.user ?? "anon"));
app.get("/write", (req, res) => {
  req.session.n = (req.session.n ?? 0) + 1;
  res.send(String(req.session.n));
});
app.get("/visit", (req, res) => res.send(req.session.user ?? "anon"));
app.post(
  "/form",
  express.urlencoded({ extended: false }),
  csrfSynchronisedProtection,
  (req, res) => {
    res.send(req.body.title === "hello" ? "saved" : "bad form");
  },
);
app.post(
  "/form-session",
  express.urlencoded({ extended: false }),
  csrfSynchronisedProtection,
  (req, res) => {
    if (req.session.user !== "alice") return res.status(401).send("signed out");
    res.send(req.body.title === "hello" ? "saved" : "bad form");
  },
);
app.use((error, _req, res, _next) => res.status(error.status ?? 500).send(error.message));

await serveCell({
  listen: (port) => new Promise((resolve) => app.listen(port, "127.0.0.1", resolve)),
  entries: () => pg.rows('"session"'),
  statements: pg.statements,
  close: async () => {
    store.close();
    await pg.pool.end();
  },
});
