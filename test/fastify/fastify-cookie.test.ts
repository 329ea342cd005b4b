import fastifyCookie from "@fastify/cookie";
import Fastify from "fastify";
import { afterEach, expect, test } from "vitest";
import { coatcheck } from "../../src/adapters/fastify.js";
import { createSessionEngine } from "../../src/setup.js";

/** Apps that already use @fastify/cookie keep it: coatcheck reads its own cookie and leaves theirs. */
const app = Fastify();
afterEach(async () => {
  await app.close();
});

test("coatcheck coexists with @fastify/cookie registered before it", async () => {
  await app.register(fastifyCookie);
  await app.register(coatcheck, { engine: createSessionEngine({ env: {}, secure: false }) });
  app.get("/visit", async (request, reply) => {
    const n = ((await request.session.get<number>("n")) ?? 0) + 1;
    await request.session.insert("n", n);
    reply.setCookie("theme", "dark", { path: "/" });
    return { n, theme: request.cookies.theme ?? null };
  });
  await app.ready();

  const first = await app.inject({ method: "GET", url: "/visit" });
  const cookies = ([] as string[]).concat(first.headers["set-cookie"] ?? []);
  expect(cookies.some((c) => c.startsWith("theme=dark"))).toBe(true);
  const session = cookies.find((c) => c.startsWith("session_id="));
  expect(session).toMatch(/HttpOnly/);
  expect(first.json()).toEqual({ n: 1, theme: null });

  const cookie = `${(session as string).split(";")[0]}; theme=dark`;
  const second = await app.inject({ method: "GET", url: "/visit", headers: { cookie } });
  expect(second.json()).toEqual({ n: 2, theme: "dark" });
});
