import formbody from "@fastify/formbody";
import { CsrfToken } from "coatcheck";
import { coatcheck, getSession, sessionLock } from "coatcheck/fastify";
import Fastify from "fastify";

const app = Fastify();
await app.register(formbody);
await app.register(coatcheck, { secure: false });

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// `request.session` is the same object; getSession(request) also says so when the plugin is missing.
app.get("/", async (request, reply) => {
  const s = getSession(request);
  const visits = ((await s.get<number>("visits")) ?? 0) + 1;
  await s.insert("visits", visits);
  const name = (await s.get<string>("name")) ?? "stranger";
  const csrf = await CsrfToken.from(s);
  return reply.type("text/html").send(`<p>Hello, ${escapeHtml(name)}. Visits: ${visits}</p>
<form method="post" action="/name">${csrf.asHiddenField()}
  <input name="name"><button>Save</button>
</form>`);
});

app.post("/name", { onRequest: sessionLock() }, async (request, reply) => {
  const body = request.body as { name?: string };
  await getSession(request).insert("name", String(body.name ?? "").slice(0, 100));
  return reply.redirect("/", 303);
});

const port = Number(process.env.PORT ?? 3000);
await app.listen({ port, host: "127.0.0.1" });
console.log(`coatcheck Fastify example on http://127.0.0.1:${port}`);
