import { createRequire } from "node:module";
import Fastify from "fastify";
import fastifyPlugin from "fastify-plugin";
import { expect, test, vi } from "vitest";
import { coatcheck, getCsrfToken } from "../../src/adapters/fastify.js";

/**
 * The plugin accepts fastify-plugin 5 (the other Fastify tests) and 6 (here: the dev dependency
 * `fastify-plugin6`, an npm alias, replaces it for this file), which current @fastify plugins use.
 */
vi.mock("fastify-plugin", async () => await import("fastify-plugin6"));

test("the plugin is wrapped by fastify-plugin 6 in this file", async () => {
  const six = await import("fastify-plugin6");
  expect(fastifyPlugin).toBe(six.default);
  const version = createRequire(import.meta.url)("fastify-plugin6/package.json").version;
  expect(version).toMatch(/^6\./);
});

test("with fastify-plugin 6: sessions, the CSRF check and shutdown work", async () => {
  const app = Fastify();
  // Without fastify-plugin's wrapping the hooks would stay inside the plugin's own scope, and the
  // app's routes below would have no session.
  await app.register(coatcheck, { env: {}, secure: false });
  app.get("/form", async (request) => (await getCsrfToken(request)).token());
  app.post("/count", async (request) => {
    const n = ((await request.session.get<number>("n")) ?? 0) + 1;
    await request.session.insert("n", n);
    return { n };
  });
  await app.ready();

  const form = await app.inject({ method: "GET", url: "/form" });
  const cookie = String(form.headers["set-cookie"]).split(";")[0] ?? "";
  expect(cookie).toMatch(/^session_id=/);
  const post = (headers: Record<string, string>) =>
    app.inject({ method: "POST", url: "/count", headers: { cookie, ...headers } });
  expect((await post({})).statusCode).toBe(403);
  const ok = await post({ "x-csrf-token": form.body });
  expect([ok.statusCode, ok.json()]).toEqual([200, { n: 1 }]);
  expect((await post({ "x-csrf-token": form.body })).json()).toEqual({ n: 2 });
  await app.close();
});
