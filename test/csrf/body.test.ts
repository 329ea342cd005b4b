import { Hono } from "hono";
import { describe, expect, test } from "vitest";
import { getSession, session } from "../../src/adapters/hono.js";
import { CsrfToken } from "../../src/core/csrf.js";
import {
  armDeadline,
  CsrfBodyError,
  DEFAULT_FORM_LIMITS,
  formFieldFromBytes,
  readLimited,
  webFormField,
} from "../../src/core/csrf-form.js";
import { csrfEngine, FORM, honoDriver, visit } from "./harness.js";

/** An app whose handlers read the body every way Hono offers, after the check read it. */
function echoApp(before?: (app: Hono) => void) {
  const { engine } = csrfEngine();
  const app = new Hono();
  before?.(app);
  app.use(session(engine));
  app.get("/token", async (c) => c.text((await CsrfToken.from(getSession(c))).token()));
  app.post("/parse", async (c) => c.json(await c.req.parseBody()));
  app.post("/parse-all", async (c) => c.json(await c.req.parseBody({ all: true })));
  app.post("/text", async (c) => c.text(await c.req.text()));
  app.post("/form-data", async (c) => c.json([...(await c.req.formData()).keys()]));
  app.post("/raw", async (c) => c.text(await c.req.raw.text()));
  app.post("/array-buffer", async (c) => c.text(String((await c.req.arrayBuffer()).byteLength)));
  app.post("/json", async (c) => c.json(await c.req.json()));
  app.post("/file", async (c) => {
    const body = await c.req.parseBody();
    const file = body.upload as File;
    return c.text(`${file.name}:${await file.text()}`);
  });
  return honoDriver(app);
}

function multipart(token: string): { type: string; body: string } {
  const b = "----coatcheckEcho";
  const body =
    `--${b}\r\nContent-Disposition: form-data; name="_csrf"\r\n\r\n${token}\r\n` +
    `--${b}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n` +
    `--${b}\r\nContent-Disposition: form-data; name="upload"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nfile body\r\n` +
    `--${b}--\r\n`;
  return { type: `multipart/form-data; boundary=${b}`, body };
}

describe("the handler still gets the body the check read", () => {
  const urlencoded = (token: string) => `note=hello&tag=a&tag=b&_csrf=${token}`;

  test.each([
    ["/parse", (t: string) => ({ note: "hello", tag: "b", _csrf: t })],
    ["/parse-all", (t: string) => ({ note: "hello", tag: ["a", "b"], _csrf: t })],
    ["/text", (t: string) => urlencoded(t)],
    ["/raw", (t: string) => urlencoded(t)],
    ["/form-data", () => ["note", "tag", "tag", "_csrf"]],
    ["/array-buffer", (t: string) => String(urlencoded(t).length)],
  ])("urlencoded: %s", async (path, expected) => {
    const driver = echoApp();
    const { cookie, token } = await visit(driver);
    const res = await driver.send({
      method: "POST",
      path,
      headers: [
        ["cookie", cookie],
        ["content-type", FORM],
      ],
      body: urlencoded(token),
    });
    expect(res.status).toBe(200);
    const want = expected(token);
    expect(typeof want === "string" ? res.text : JSON.parse(res.text)).toEqual(want);
  });

  test("multipart: fields and the uploaded file", async () => {
    const driver = echoApp();
    const { cookie, token } = await visit(driver);
    const m = multipart(token);
    const send = (path: string) =>
      driver.send({
        method: "POST",
        path,
        headers: [
          ["cookie", cookie],
          ["content-type", m.type],
        ],
        body: m.body,
      });
    const file = await send("/file");
    expect(file.status).toBe(200);
    expect(file.text).toBe("a.txt:file body");
    expect((await send("/raw")).text).toBe(m.body);
    expect(JSON.parse((await send("/form-data")).text)).toEqual(["_csrf", "note", "upload"]);
  });

  test("a JSON body with the token in the header is untouched", async () => {
    const driver = echoApp();
    const { cookie, token } = await visit(driver);
    const res = await driver.send({
      method: "POST",
      path: "/json",
      headers: [
        ["cookie", cookie],
        ["x-csrf-token", token],
        ["content-type", "application/json"],
      ],
      body: JSON.stringify({ a: [1, 2] }),
    });
    expect(JSON.parse(res.text)).toEqual({ a: [1, 2] });
  });

  test("a body already read by earlier middleware through c.req is still checked", async () => {
    const driver = echoApp((app) =>
      app.use(async (c, next) => {
        if (c.req.method === "POST") await c.req.parseBody();
        await next();
      }),
    );
    const { cookie, token } = await visit(driver);
    const send = (body: string) =>
      driver.send({
        method: "POST",
        path: "/parse",
        headers: [
          ["cookie", cookie],
          ["content-type", FORM],
        ],
        body,
      });
    expect((await send(`_csrf=${token}`)).status).toBe(200);
    expect((await send("_csrf=nope")).status).toBe(403);
  });

  test("a body consumed behind Hono's back is a rejection, not a crash", async () => {
    const driver = echoApp((app) =>
      app.use(async (c, next) => {
        if (c.req.method === "POST") await c.req.raw.text();
        await next();
      }),
    );
    const { cookie, token } = await visit(driver);
    const res = await driver.send({
      method: "POST",
      path: "/parse",
      headers: [
        ["cookie", cookie],
        ["content-type", FORM],
        ["hx-request", "true"],
      ],
      body: `_csrf=${token}`,
    });
    expect(res.status).toBe(403);
    expect(res.headers.get("hx-trigger")).toContain("body_unreadable");
  });
});

describe("body limits", () => {
  const big = "x".repeat(DEFAULT_FORM_LIMITS.maxBytes + 1);

  test("a declared Content-Length over 1 MiB is refused without reading", async () => {
    const driver = echoApp();
    const { cookie } = await visit(driver);
    const untouchable = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.error(new Error("the check must not read this body"));
      },
    });
    const res = await driver.send({
      method: "POST",
      path: "/parse",
      headers: [
        ["cookie", cookie],
        ["content-type", FORM],
        ["content-length", String(DEFAULT_FORM_LIMITS.maxBytes + 1)],
        ["hx-request", "true"],
      ],
      body: untouchable,
    });
    expect(res.status).toBe(403);
    expect(res.headers.get("hx-trigger")).toContain("body_too_large");
  });

  test("a streamed (chunked) form over 1 MiB is refused once it passes the cap", async () => {
    const driver = echoApp();
    const { cookie, token } = await visit(driver);
    const encoder = new TextEncoder();
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        // Endless: only the cap can end this request.
        sent += 64 * 1024;
        controller.enqueue(
          encoder.encode(sent === 65536 ? `_csrf=${token}&pad=` : "y".repeat(65536)),
        );
      },
    });
    const res = await driver.send({
      method: "POST",
      path: "/parse",
      headers: [
        ["cookie", cookie],
        ["content-type", FORM],
        ["hx-request", "true"],
      ],
      body,
    });
    expect(res.status).toBe(403);
    expect(res.headers.get("hx-trigger")).toContain("body_too_large");
  });

  test("a large upload with the token in the header is not read by the check", async () => {
    const driver = echoApp();
    const { cookie, token } = await visit(driver);
    const res = await driver.send({
      method: "POST",
      path: "/array-buffer",
      headers: [
        ["cookie", cookie],
        ["content-type", FORM],
        ["x-csrf-token", token],
      ],
      body: `pad=${big}`,
    });
    expect(res.status).toBe(200);
    expect(res.text).toBe(String(big.length + 4));
  });

  test("a body that never finishes is given up after timeoutMs", async () => {
    const stalled = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("_csrf=abc"));
      },
    });
    const error = await readLimited(stalled, { maxBytes: 1024, timeoutMs: 20 }).catch((e) => e);
    expect(error).toBeInstanceOf(CsrfBodyError);
    expect((error as CsrfBodyError).reason).toBe("body_timeout");
  });

  test("the shared deadline timer fires each read's deadline, in order, and never a cancelled one", async () => {
    const fired: string[] = [];
    const done = new Promise<void>((resolve) => {
      const mark = (name: string) => () => {
        fired.push(name);
        if (name === "long") resolve();
      };
      armDeadline(60, mark("long"));
      const cancel = armDeadline(10, mark("cancelled"));
      armDeadline(30, mark("short"));
      cancel();
    });
    await done;
    expect(fired).toEqual(["short", "long"]);
  });

  test("a stream that fails is body_unreadable", async () => {
    const failing = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.error(new Error("socket reset"));
      },
    });
    const error = await readLimited(failing).catch((e) => e);
    expect((error as CsrfBodyError).reason).toBe("body_unreadable");
  });

  test("webFormField reads once, however many fields are asked for", async () => {
    let opened = 0;
    const field = webFormField(new Headers({ "content-type": FORM }), () => {
      opened++;
      return new Response("a=1&b=2").body;
    });
    expect(await field("a")).toBe("1");
    expect(await field("b")).toBe("2");
    expect(await field("c")).toBeUndefined();
    expect(opened).toBe(1);
  });

  test("non-form bodies are never opened", async () => {
    let opened = 0;
    const field = webFormField(new Headers({ "content-type": "text/plain" }), () => {
      opened++;
      return null;
    });
    expect(await field("_csrf")).toBeUndefined();
    expect(opened).toBe(0);
    expect(await formFieldFromBytes(new TextEncoder().encode("_csrf=x"), undefined, "_csrf")).toBe(
      undefined,
    );
  });
});
