import formbody from "@fastify/formbody";
import multipart from "@fastify/multipart";
import Fastify, { type FastifyInstance } from "fastify";
import { afterEach, describe, expect, test } from "vitest";
import { coatcheck, getSession, sessionLock } from "../../src/adapters/fastify.js";
import { CsrfToken } from "../../src/core/csrf.js";
import type { SessionEngine } from "../../src/core/engine.js";
import { createSessionEngine } from "../../src/setup.js";

/** Fastify-only behaviour: body plugins, encapsulation, hijacked replies. */

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const engineFor = (options = {}) => createSessionEngine({ env: {}, secure: false, ...options });

async function withToken(instance: FastifyInstance) {
  instance.get("/token", async (request) => (await CsrfToken.from(request.session)).token());
  await instance.ready();
  const first = await instance.inject({ method: "GET", url: "/token" });
  const cookie = String(first.headers["set-cookie"]).split(";")[0] as string;
  return { cookie, token: first.body };
}

function multipartBody(fields: Record<string, string>, file?: string) {
  const boundary = "----coatchecktest";
  let body = "";
  for (const [name, value] of Object.entries(fields))
    body += `--${boundary}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  if (file !== undefined)
    body += `--${boundary}\r\ncontent-disposition: form-data; name="upload"; filename="a.txt"\r\ncontent-type: text/plain\r\n\r\n${file}\r\n`;
  body += `--${boundary}--\r\n`;
  return { payload: body, contentType: `multipart/form-data; boundary=${boundary}` };
}

describe("CSRF field with Fastify's body plugins", () => {
  test("@fastify/formbody: the field comes from request.body, the body stays intact", async () => {
    app = Fastify();
    await app.register(formbody);
    await app.register(coatcheck, { engine: engineFor() });
    app.post("/echo", async (request) => request.body);
    const { cookie, token } = await withToken(app);
    const res = await app.inject({
      method: "POST",
      url: "/echo",
      headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
      payload: `_csrf=${encodeURIComponent(token)}&a=1`,
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ _csrf: token, a: "1" });
    const refused = await app.inject({
      method: "POST",
      url: "/echo",
      headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
      payload: "a=1",
    });
    expect(refused.statusCode).toBe(403);
    expect(refused.headers["set-cookie"]).toBeUndefined();
  });

  test("@fastify/multipart with attachFieldsToBody", async () => {
    app = Fastify();
    await app.register(multipart, { attachFieldsToBody: "keyValues" });
    await app.register(coatcheck, { engine: engineFor() });
    app.post("/upload", async (request) => {
      const body = request.body as Record<string, unknown>;
      return { title: body.title, file: String(body.upload) };
    });
    const { cookie, token } = await withToken(app);
    const { payload, contentType } = multipartBody({ _csrf: token, title: "hi" }, "content");
    const res = await app.inject({
      method: "POST",
      url: "/upload",
      headers: { cookie, "content-type": contentType },
      payload,
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ title: "hi", file: "content" });
  });

  test("@fastify/multipart streamed with request.parts(): the handler reads every part", async () => {
    app = Fastify();
    await app.register(multipart);
    await app.register(coatcheck, { engine: engineFor() });
    app.post("/upload", async (request) => {
      const seen: string[] = [];
      for await (const part of request.parts()) {
        if (part.type === "file") seen.push(`${part.fieldname}=${(await part.toBuffer()).length}`);
        else seen.push(`${part.fieldname}=${String(part.value).length}`);
      }
      return seen;
    });
    const { cookie, token } = await withToken(app);
    const { payload, contentType } = multipartBody({ _csrf: token, note: "n" }, "f".repeat(50_000));
    const res = await app.inject({
      method: "POST",
      url: "/upload",
      headers: { cookie, "content-type": contentType },
      payload,
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual([`_csrf=${token.length}`, "note=1", "upload=50000"]);
  });
});

describe("encapsulation", () => {
  test("registered in a child scope: sessions there, a clear error outside", async () => {
    app = Fastify();
    const engine: SessionEngine = engineFor({ csrf: { enabled: false } });
    await app.register(async (child) => {
      await child.register(coatcheck, { engine });
      child.post("/inside", async (request) => {
        await request.session.insert("n", 1);
        return "inside";
      });
    });
    app.get("/outside", async (request) => {
      try {
        getSession(request);
        return "no error";
      } catch (error) {
        return (error as Error).message;
      }
    });
    await app.ready();
    const inside = await app.inject({ method: "POST", url: "/inside" });
    expect(inside.headers["set-cookie"]).toMatch(/^session_id=/);
    const outside = await app.inject({ method: "GET", url: "/outside" });
    expect(outside.body).toContain('await app.register(coatcheck) from "coatcheck/fastify"');
    expect(outside.headers["set-cookie"]).toBeUndefined();
  });

  test("registered twice on one route (a parent scope and a child): refused at startup", async () => {
    app = Fastify();
    await app.register(coatcheck, { engine: engineFor() });
    app.register(async (child) => {
      await child.register(coatcheck, { engine: engineFor({ cookieName: "admin" }) });
      child.get("/admin", async () => "admin");
    });
    await expect(app.ready()).rejects.toThrow(/already registered on this scope or a parent/);
    await app.close().catch(() => {});
    app = Fastify();
    await app.register(coatcheck, { engine: engineFor() });
    await expect(app.register(coatcheck, { engine: engineFor() }).ready()).rejects.toThrow(
      /already registered/,
    );
  });

  test("sibling scopes each have their own registration, engine and cookie", async () => {
    app = Fastify();
    for (const name of ["shop", "admin"]) {
      app.register(async (scope) => {
        await scope.register(coatcheck, { engine: engineFor({ cookieName: name }) });
        scope.get(`/${name}`, async (request) => {
          await request.session.insert("n", name);
          return name;
        });
        scope.get(`/${name}/read`, async (request) => (await request.session.get("n")) ?? "none");
      });
    }
    await app.ready();
    for (const name of ["shop", "admin"]) {
      const first = await app.inject({ method: "GET", url: `/${name}` });
      const cookie = String(first.headers["set-cookie"]).split(";")[0] as string;
      expect(cookie.startsWith(`${name}=`)).toBe(true);
      const read = await app.inject({ method: "GET", url: `/${name}/read`, headers: { cookie } });
      expect(read.body).toBe(name);
    }
  });

  test("unknown options are configuration errors at registration", async () => {
    app = Fastify();
    await expect(
      app.register(coatcheck, { env: {}, cookieNmae: "x" } as never).ready(),
    ).rejects.toThrow(/cookieNmae/);
  });
});

test("a hijacked reply saves nothing and releases the lock", async () => {
  app = Fastify();
  await app.register(coatcheck, { engine: engineFor({ csrf: { enabled: false } }) });
  app.post("/set", async (request) => {
    await request.session.insert("n", 1);
    return "set";
  });
  app.post("/raw", { onRequest: sessionLock() }, async (request, reply) => {
    await request.session.insert("n", 2);
    reply.hijack();
    reply.raw.end("raw");
  });
  app.get("/n", { onRequest: sessionLock() }, async (request) =>
    String(await request.session.get("n")),
  );
  await app.ready();
  const set = await app.inject({ method: "POST", url: "/set" });
  const cookie = String(set.headers["set-cookie"]).split(";")[0] as string;
  const raw = await app.inject({ method: "POST", url: "/raw", headers: { cookie } });
  expect(raw.body).toBe("raw");
  const after = await app.inject({ method: "GET", url: "/n", headers: { cookie } });
  expect(after.statusCode).toBe(200);
  expect(after.body).toBe("1");
});
