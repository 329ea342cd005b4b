// Express's incumbent: express-session on its MemoryStore or connect-redis (BENCH_STORE), with
// csrf-sync (the synchronizer-token package built on express-session) for the form post.
import { RedisStore } from "connect-redis";
import { csrfSync } from "csrf-sync";
import express from "express";
import session from "express-session";
import { idleSecs, keyPrefix, redisClient, serveCell, storeKind } from "../lib/cell.mjs";

const client = storeKind === "redis" ? await redisClient() : null;
const store =
  client === null ? new session.MemoryStore() : new RedisStore({ client, prefix: keyPrefix });
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
    // An inactivity timeout, express-session's way: a sliding cookie maxAge, renewed on every
    // response (`rolling`); the store's TTL follows it through `touch` (connect-redis: EXPIRE).
    ...(idleSecs > 0 ? { rolling: true } : {}),
    cookie: {
      httpOnly: true,
      sameSite: "lax",
      ...(idleSecs > 0 ? { maxAge: idleSecs * 1000 } : {}),
    },
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
// csrf-sync rejects by throwing; answer 403 like every other cell.
app.use((error, _req, res, _next) => res.status(error.status ?? 500).send(error.message));

await serveCell({
  listen: (port) => new Promise((resolve) => app.listen(port, "127.0.0.1", resolve)),
  entries: async () => (client === null ? Object.keys(store.sessions).length : null),
  close: async () => client?.close(),
});
