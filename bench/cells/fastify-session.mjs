// Fastify's incumbent: @fastify/session (+ @fastify/cookie) on its memory store or on
// connect-redis (BENCH_STORE), with @fastify/csrf-protection in session mode for the form post.
import fastifyCookie from "@fastify/cookie";
import csrfProtection from "@fastify/csrf-protection";
import formbody from "@fastify/formbody";
import fastifySession from "@fastify/session";
import { RedisStore } from "connect-redis";
import Fastify from "fastify";
import { idleSecs, keyPrefix, redisClient, serveCell, storeKind } from "../lib/cell.mjs";

const client = storeKind === "redis" ? await redisClient() : null;
const store =
  client === null
    ? new fastifySession.MemoryStore()
    : new RedisStore({ client, prefix: keyPrefix });

const app = Fastify();
await app.register(formbody);
await app.register(fastifyCookie);
await app.register(fastifySession, {
  store,
  secret: "a benchmark secret of at least thirty-two characters",
  saveUninitialized: false,
  // An inactivity timeout, @fastify/session's way: a cookie maxAge, renewed on every response
  // (`rolling`, its default, which also saves the session on every request).
  cookie: {
    secure: false,
    httpOnly: true,
    sameSite: "lax",
    ...(idleSecs > 0 ? { maxAge: idleSecs * 1000 } : {}),
  },
});
await app.register(csrfProtection, {
  sessionPlugin: "@fastify/session",
  getToken: (request) => request.body?._csrf,
});
app.get("/login", async (request) => {
  request.session.set("user", "alice");
  request.session.set("n", 0);
  return "ok";
});
app.get("/token", async (_request, reply) => reply.generateCsrf());
app.get("/untouched", async () => "ok");
app.get("/read", async (request) => request.session.get("user") ?? "anon");
app.get("/write", async (request) => {
  const n = (request.session.get("n") ?? 0) + 1;
  request.session.set("n", n);
  return String(n);
});
app.get("/visit", async (request) => request.session.get("user") ?? "anon");
app.post("/form", { preHandler: app.csrfProtection }, async (request) =>
  request.body.title === "hello" ? "saved" : "bad form",
);
app.post("/form-session", { preHandler: app.csrfProtection }, async (request, reply) => {
  if (request.session.get("user") !== "alice") return reply.code(401).send("signed out");
  return request.body.title === "hello" ? "saved" : "bad form";
});

await serveCell({
  listen: (port) => app.listen({ port, host: "127.0.0.1" }),
  entries: async () => (client === null ? store.store.size : null),
  close: async () => client?.close(),
});
