// Fastify with the least a session layer does on a read (see bench/floor.mjs): an onRequest hook
// that keeps a per-request object on the request, and an onSend hook adding `Vary: Cookie` on /read.
import formbody from "@fastify/formbody";
import Fastify from "fastify";
import { serveCell } from "../lib/cell.mjs";

const app = Fastify();
await app.register(formbody);
app.addHook("onRequest", (request, _reply, done) => {
  request.floor = { id: null };
  done();
});
app.addHook("onSend", (request, reply, payload, done) => {
  if (request.url === "/read") reply.header("vary", "Cookie");
  done(null, payload);
});
app.get("/untouched", async () => "ok");
app.get("/read", async () => "alice");

await serveCell({ listen: (port) => app.listen({ port, host: "127.0.0.1" }) });
