import { Hono } from "hono";
import { expect, test } from "vitest";
import { getSession, session } from "../../src/adapters/hono.js";

test("smoke", async () => {
  const app = new Hono();
  app.use(session({ env: {}, secure: false }));
  app.get("/inc", async (c) => {
    const s = getSession(c);
    const n = ((await s.get<number>("n")) ?? 0) + 1;
    await s.insert("n", n);
    return c.text(String(n));
  });
  const r1 = await app.request("/inc");
  const cookie = r1.headers.get("set-cookie")?.split(";")[0] ?? "";
  expect(await r1.text()).toBe("1");
  const r2 = await app.request("/inc", { headers: { cookie } });
  expect(await r2.text()).toBe("2");
  expect(r2.headers.get("set-cookie")).toBeNull();
});
