import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import busboy from "busboy";
import express from "express";
import multer from "multer";
import { afterEach, describe, expect, test } from "vitest";
import { session, sessionErrors } from "../../src/adapters/express.js";
import { CsrfToken } from "../../src/core/csrf.js";
import { createSessionEngine } from "../../src/setup.js";

/**
 * The CSRF check reads the form field without taking the body from the app's own parsers, wherever
 * they are registered: before the middleware, after it, on the route, or in the handler.
 */

const express4 = createRequire(import.meta.url)("express4") as typeof express;
type Setup = (app: express.Express) => void;

let server: Server | undefined;
afterEach(() => {
  server?.closeAllConnections();
  server?.close();
  server = undefined;
});

async function start(factory: typeof express, before: Setup, after: Setup) {
  const app = factory();
  before(app);
  app.use(session(createSessionEngine({ env: {}, secure: false })));
  app.get("/token", async (req, res) => {
    res.send((await CsrfToken.from(req.session)).token());
  });
  after(app);
  app.use(sessionErrors());
  server = createServer(app);
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const first = await fetch(`${base}/token`);
  const cookie = (first.headers.get("set-cookie") ?? "").split(";")[0] as string;
  const token = await first.text();
  const post = (path: string, body: BodyInit, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, { method: "POST", body, headers: { cookie, ...headers } });
  return { post, token };
}

const echoBody: express.RequestHandler = (req, res) => {
  res.json(req.body);
};

function form(token: string | null, extra: Record<string, string>, file?: Blob): FormData {
  const data = new FormData();
  if (token !== null) data.append("_csrf", token);
  for (const [k, v] of Object.entries(extra)) data.append(k, v);
  if (file) data.append("upload", file, "notes.txt");
  return data;
}

const urlencoded = (token: string) =>
  ({
    body: `_csrf=${encodeURIComponent(token)}&user%5Bname%5D=al%C3%AFce&tags=a&tags=b`,
    headers: { "content-type": "application/x-www-form-urlencoded" },
  }) as const;

describe.each([
  ["express 5", express],
  ["express 4", express4],
])("%s", (_name, factory) => {
  test("express.urlencoded() before the middleware: the field comes from req.body", async () => {
    const { post, token } = await start(
      factory,
      (app) => app.use(factory.urlencoded({ extended: true })),
      (app) => app.post("/echo", echoBody),
    );
    const { body, headers } = urlencoded(token);
    const res = await post("/echo", body, headers);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ _csrf: token, user: { name: "alïce" }, tags: ["a", "b"] });
  });

  test("express.urlencoded() after the middleware still parses the whole body", async () => {
    const { post, token } = await start(
      factory,
      () => {},
      (app) => {
        app.use(factory.urlencoded({ extended: true }));
        app.post("/echo", echoBody);
      },
    );
    const { body, headers } = urlencoded(token);
    const res = await post("/echo", body, headers);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ _csrf: token, user: { name: "alïce" }, tags: ["a", "b"] });
  });

  test("a missing field is refused before the route's parser and handler run", async () => {
    let ran = false;
    const { post } = await start(
      factory,
      () => {},
      (app) => {
        app.use(factory.urlencoded({ extended: false }));
        app.post("/echo", (_req, res) => {
          ran = true;
          res.send("ran");
        });
      },
    );
    const res = await post("/echo", "a=1", { "content-type": "application/x-www-form-urlencoded" });
    expect(res.status).toBe(403);
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(ran).toBe(false);
  });

  test("express.json() after the middleware, token in the header", async () => {
    const { post, token } = await start(
      factory,
      () => {},
      (app) => {
        app.use(factory.json());
        app.post("/echo", echoBody);
      },
    );
    const res = await post("/echo", JSON.stringify({ a: [1, 2] }), {
      "content-type": "application/json",
      "x-csrf-token": token,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ a: [1, 2] });
  });

  test("multer on the route receives every field and the whole file", async () => {
    const upload = multer({ storage: multer.memoryStorage() });
    const content = "x".repeat(200_000);
    const { post, token } = await start(
      factory,
      () => {},
      (app) =>
        app.post("/upload", upload.single("upload"), (req, res) => {
          res.json({
            fields: req.body,
            size: req.file?.size,
            same: req.file?.buffer.toString() === content,
          });
        }),
    );
    const res = await post("/upload", form(token, { title: "hello" }, new Blob([content])));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      fields: { _csrf: token, title: "hello" },
      size: 200_000,
      same: true,
    });
  });

  test("multer before the middleware: the field comes from req.body", async () => {
    const upload = multer({ storage: multer.memoryStorage() });
    const { post, token } = await start(
      factory,
      (app) => app.use(upload.any()),
      (app) => app.post("/upload", (req, res) => res.json(req.body)),
    );
    const res = await post("/upload", form(token, { title: "hello" }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ _csrf: token, title: "hello" });
  });

  test("busboy in the handler reads the body the check copied", async () => {
    const { post, token } = await start(
      factory,
      () => {},
      (app) =>
        app.post("/busboy", (req, res) => {
          const fields: Record<string, string> = {};
          const parser = busboy({ headers: req.headers });
          parser.on("field", (name, value) => {
            fields[name] = value;
          });
          parser.on("file", (_name, file) => file.resume());
          parser.on("close", () => res.json(fields));
          req.pipe(parser);
        }),
    );
    const res = await post("/busboy", form(token, { a: "1" }, new Blob(["file"])));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ _csrf: token, a: "1" });
  });

  test("a multipart body over the form limit: the field is refused, the header works", async () => {
    const upload = multer({ storage: multer.memoryStorage() });
    const big = new Blob(["y".repeat(1024 * 1024 + 10)]);
    const { post, token } = await start(
      factory,
      () => {},
      (app) =>
        app.post("/upload", upload.single("upload"), (req, res) => {
          res.json({ size: req.file?.size });
        }),
    );
    const refused = await post("/upload", form(token, {}, big));
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain("send the token in the X-CSRF-Token header");
    const ok = await post("/upload", form(null, {}, big), { "x-csrf-token": token });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ size: 1024 * 1024 + 10 });
  });
});
