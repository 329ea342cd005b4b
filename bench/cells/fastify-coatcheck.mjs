// Fastify 5 with coatcheck, on the memory store, Redis or PostgreSQL (BENCH_STORE).
import formbody from "@fastify/formbody";
import Fastify from "fastify";
import { serveCell } from "../lib/cell.mjs";
import { coatcheckStore, csrfTokenOf, fromDist, sessionOptions } from "../lib/coatcheck.mjs";

const { coatcheck } = await fromDist("adapters/fastify.js");
const { store, entries, statements, close } = await coatcheckStore();

const app = Fastify();
await app.register(formbody);
await app.register(coatcheck, sessionOptions(store));
app.get("/login", async (request) => {
  await request.session.insert("user", "alice");
  await request.session.insert("n", 0);
  return "ok";
});
app.get("/token", async (request) => csrfTokenOf(request.session));
app.get("/untouched", async () => "ok");
app.get("/read", async (request) => (await request.session.get("user")) ?? "anon");
app.get("/write", async (request) => {
  const n = ((await request.session.get("n")) ?? 0) + 1;
  await request.session.insert("n", n);
  return String(n);
});
app.get("/visit", async (request) => (await request.session.get("user")) ?? "anon");
app.post("/form", async (request) => (request.body.title === "hello" ? "saved" : "bad form"));
app.post("/form-session", async (request, reply) => {
  if ((await request.session.get("user")) !== "alice") return reply.code(401).send("signed out");
  return request.body.title === "hello" ? "saved" : "bad form";
});

await serveCell({
  listen: (port) => app.listen({ port, host: "127.0.0.1" }),
  entries,
  statements,
  close,
});
