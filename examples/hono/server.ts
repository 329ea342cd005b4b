import { serve } from "@hono/node-server";
import { CsrfToken } from "coatcheck";
import { getSession, session, sessionLock } from "coatcheck/hono";
import { Hono } from "hono";

const app = new Hono();
app.use(session({ secure: false }));

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

app.get("/", async (c) => {
  const s = getSession(c);
  const visits = ((await s.get<number>("visits")) ?? 0) + 1;
  await s.insert("visits", visits);
  const name = (await s.get<string>("name")) ?? "stranger";
  const csrf = await CsrfToken.from(s);
  return c.html(`<p>Hello, ${escapeHtml(name)}. Visits: ${visits}</p>
<form method="post" action="/name">${csrf.asHiddenField()}
  <input name="name"><button>Save</button>
</form>`);
});

app.post("/name", sessionLock(), async (c) => {
  const form = await c.req.parseBody();
  await getSession(c).insert("name", String(form.name ?? "").slice(0, 100));
  return c.redirect("/", 303);
});

const port = Number(process.env.PORT ?? 3000);
serve({ fetch: app.fetch, port, hostname: "127.0.0.1" }, () =>
  console.log(`coatcheck Hono example on http://127.0.0.1:${port}`),
);
