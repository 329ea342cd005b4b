// Fastify 5 with no session layer: the baseline the session cells are divided by.
import formbody from "@fastify/formbody";
import Fastify from "fastify";
import { serveCell } from "../lib/cell.mjs";

const app = Fastify();
await app.register(formbody);
app.get("/untouched", async () => "ok");
app.get("/read", async () => "alice");
app.get("/visit", async () => "anon");
app.post("/form", async (request) => (request.body.title === "hello" ? "saved" : "bad form"));
// The same answer as a session cell's /form-session, with no session to read.
app.post("/form-session", async (request) =>
  request.body.title === "hello" ? "saved" : "bad form",
);

await serveCell({ listen: (port) => app.listen({ port, host: "127.0.0.1" }) });
