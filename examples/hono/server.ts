import { serve } from "@hono/node-server";
import { getSession, session } from "cloakroom/hono";
import { Hono } from "hono";

const app = new Hono();
app.use(session({ secure: false }));

app.get("/", async (c) => {
  const s = getSession(c);
  const visits = ((await s.get<number>("visits")) ?? 0) + 1;
  await s.insert("visits", visits);
  return c.html(`<p>You have visited this page ${visits} time(s).</p>`);
});

const port = Number(process.env.PORT ?? 3000);
serve({ fetch: app.fetch, port }, () =>
  console.log(`cloakroom example on http://localhost:${port}`),
);
