import { expect, test } from "vitest";
import { describeMatrix } from "./matrix.js";
import type { Route } from "./scenario.js";

/** Every adapter's `getCsrfToken(request)` renders a token its own CSRF check accepts. */
const routes: Route[] = [
  { method: "GET", path: "/plain", handler: async () => ({ body: "no form here" }) },
  {
    method: "GET",
    path: "/form",
    handler: async ({ csrfToken }) => {
      const csrf = await csrfToken();
      return { body: JSON.stringify({ token: csrf.token(), field: csrf.asHiddenField() }) };
    },
  },
  { method: "POST", path: "/submit", handler: async () => ({ body: "accepted" }) },
];

describeMatrix("getCsrfToken", (t) => {
  test("the rendered token passes the check; a POST without it gets 403", async () => {
    const app = await t.mount({ csrf: { enabled: true } }, routes);
    const client = app.client();
    const rendered = JSON.parse((await client.get("/form")).text) as {
      token: string;
      field: string;
    };
    expect(client.cookie).toMatch(/^session_id=/);
    // Both renders are masked afresh, and both pass.
    const fromField = /^<input type="hidden" name="_csrf" value="([\w-]+)">$/.exec(rendered.field);
    expect(fromField?.[1]).not.toBe(rendered.token);
    const ok = await client.post("/submit", {
      headers: { "x-csrf-token": rendered.token },
    });
    expect([ok.status, ok.text]).toEqual([200, "accepted"]);
    const byField = await client.post("/submit", {
      headers: { "x-csrf-token": fromField?.[1] ?? "" },
    });
    expect(byField.status).toBe(200);
    expect((await client.post("/submit")).status).toBe(403);
  });

  test("each render is masked afresh, and a page that renders none writes nothing", async () => {
    const app = await t.mount({ csrf: { enabled: true } }, routes);
    const visitor = app.client();
    await visitor.get("/plain");
    expect(visitor.cookie).toBe("");
    expect(app.store.calls).toEqual([]);
    const client = app.client();
    const first = JSON.parse((await client.get("/form")).text).token;
    const second = JSON.parse((await client.get("/form")).text).token;
    expect(first).not.toBe(second);
    const res = await client.post("/submit", { headers: { "x-csrf-token": first } });
    expect(res.status).toBe(200);
  });
});
