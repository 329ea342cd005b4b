import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import multipart from "@fastify/multipart";
import Fastify, { type FastifyInstance } from "fastify";
import { afterEach, describe, expect, test } from "vitest";
import { coatcheck, getCsrfToken, getSession } from "../../src/adapters/fastify.js";
import { MissingMiddlewareError } from "../../src/core/errors.js";
import { createSessionEngine } from "../../src/setup.js";
import { MemoryStore } from "../../src/stores/memory.js";
import { cookieFrom, h2Request } from "../support/h2.js";

/** Fastify through `inject`, a real HTTP/1.1 socket and `http2: true`. */

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

const engine = () =>
  createSessionEngine({ env: {}, secure: false, store: new MemoryStore(), logger: console });

async function tokenOf(app: FastifyInstance) {
  const first = await app.inject({ method: "GET", url: "/token" });
  return { cookie: cookieFrom(first.headers["set-cookie"]), token: first.body };
}

describe("Fastify: the CSRF check runs before any body parser", () => {
  test("a forged multipart upload never reaches @fastify/multipart's onFile", async () => {
    const files: string[] = [];
    const app = Fastify();
    apps.push(app);
    await app.register(coatcheck, { engine: engine() });
    await app.register(multipart, {
      attachFieldsToBody: true,
      onFile: async (part) => {
        files.push(part.filename);
        await part.toBuffer();
      },
    });
    app.get("/token", async (request) => (await getCsrfToken(request)).token());
    app.post("/upload", async (request) => Object.keys(request.body as object));
    await app.ready();
    const { cookie, token } = await tokenOf(app);
    const upload = (csrf: string) => {
      const data = new FormData();
      data.append("_csrf", csrf);
      data.append("file", new Blob(["contents"]), "notes.txt");
      const request = new Request("http://x/", { method: "POST", body: data });
      return request.arrayBuffer().then((body) =>
        app.inject({
          method: "POST",
          url: "/upload",
          headers: { cookie, "content-type": request.headers.get("content-type") as string },
          payload: Buffer.from(body),
        }),
      );
    };
    const forged = await upload("forged-token");
    expect(forged.statusCode).toBe(403);
    expect(files).toEqual([]);
    const genuine = await upload(token);
    expect(genuine.statusCode).toBe(200);
    expect(files).toEqual(["notes.txt"]);
  });

  test("a forged request whose body never completes is answered 403 at once", async () => {
    const app = Fastify();
    apps.push(app);
    await app.register(coatcheck, { engine: engine() });
    app.post("/save", async () => "saved");
    await app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = app.server.address() as AddressInfo;
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.write(
          "POST /save HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n" +
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n_csrf=",
        );
      });
      let text = "";
      socket.on("data", (chunk) => {
        text += chunk.toString();
        if (text.includes("\r\n\r\n")) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on("error", reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 403/);
  });
});

describe("Fastify with http2: true", () => {
  test("the origin check reads :authority: a browser's same-origin POST passes", async () => {
    const app = Fastify({ http2: true });
    apps.push(app as unknown as FastifyInstance);
    await app.register(coatcheck, { engine: engine() });
    app.get("/token", async (request) => (await getCsrfToken(request)).token());
    app.post("/save", async (request) => {
      await getSession(request).insert("saved", true);
      return "saved";
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
    const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const first = await h2Request(origin, { method: "GET", path: "/token" });
    const post = (from: string) =>
      h2Request(origin, {
        method: "POST",
        path: "/save",
        headers: {
          cookie: cookieFrom(first.headers["set-cookie"]),
          origin: from,
          "x-csrf-token": first.text,
        },
      });
    const same = await post(origin);
    expect(same.text).toBe("saved");
    expect(same.status).toBe(200);
    expect((await post("http://evil.example")).status).toBe(403);
  });
});

describe("Fastify: request.session where the plugin's hook has not run", () => {
  test("throws MissingMiddlewareError, not a TypeError", async () => {
    const app = Fastify();
    apps.push(app);
    let seen: unknown;
    // An app hook registered before the plugin runs before the session is opened.
    app.addHook("onRequest", async (request) => {
      try {
        void request.session;
      } catch (error) {
        seen = error;
      }
    });
    await app.register(coatcheck, { engine: engine() });
    app.get("/", async (request) => String(await request.session.isEmpty()));
    const res = await app.inject({ method: "GET", url: "/" });
    expect(res.body).toBe("true");
    expect(seen).toBeInstanceOf(MissingMiddlewareError);
  });
});

describe("Fastify: request.session outside the plugin's scope", () => {
  test("throws MissingMiddlewareError there; another scope's own session decorators still work", async () => {
    const app = Fastify();
    apps.push(app);
    let outside: unknown;
    app.get("/outside", async (request) => {
      try {
        void request.session;
      } catch (error) {
        outside = error;
      }
      return "ok";
    });
    await app.register(async (scope) => {
      await scope.register(coatcheck, { engine: engine() });
      scope.get("/inside", async (request) => String(await request.session.isEmpty()));
    });
    // Another session plugin's decorators, in scopes of their own: a per-request value, a getter.
    await app.register(async (scope) => {
      (scope.decorateRequest as (name: string, value: unknown) => void)("session", null);
      scope.addHook("onRequest", async (request) => {
        (request as unknown as { session: unknown }).session = { user: "legacy" };
      });
      scope.get("/value", async (request) => (request.session as unknown as { user: string }).user);
    });
    await app.register(async (scope) => {
      (scope.decorateRequest as (name: string, value: unknown) => void)("session", {
        getter: () => ({ user: "getter" }),
      });
      scope.get(
        "/getter",
        async (request) => (request.session as unknown as { user: string }).user,
      );
    });
    expect((await app.inject({ method: "GET", url: "/outside" })).body).toBe("ok");
    expect(outside).toBeInstanceOf(MissingMiddlewareError);
    expect((await app.inject({ method: "GET", url: "/inside" })).body).toBe("true");
    expect((await app.inject({ method: "GET", url: "/value" })).body).toBe("legacy");
    expect((await app.inject({ method: "GET", url: "/getter" })).body).toBe("getter");
  });
});
