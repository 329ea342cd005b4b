import { CsrfToken } from "coatcheck";
import { getSession, session, sessionErrors, sessionLock } from "coatcheck/express";
import express from "express";

const app = express();
app.use(session({ secure: false }));
app.use(express.urlencoded({ extended: false }));

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// `req.session` is the same object; getSession(req) also says so when the middleware is missing.
app.get("/", async (req, res) => {
  const s = getSession(req);
  const visits = ((await s.get<number>("visits")) ?? 0) + 1;
  await s.insert("visits", visits);
  const name = (await s.get<string>("name")) ?? "stranger";
  const csrf = await CsrfToken.from(s);
  res.send(`<p>Hello, ${escapeHtml(name)}. Visits: ${visits}</p>
<form method="post" action="/name">${csrf.asHiddenField()}
  <input name="name"><button>Save</button>
</form>`);
});

app.post("/name", sessionLock(), async (req, res) => {
  await getSession(req).insert("name", String(req.body.name ?? "").slice(0, 100));
  res.redirect(303, "/");
});

app.use(sessionErrors());

const port = Number(process.env.PORT ?? 3000);
app.listen(port, "127.0.0.1", () =>
  console.log(`coatcheck Express example on http://127.0.0.1:${port}`),
);
