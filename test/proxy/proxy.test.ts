import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import { connect as h2Connect } from "node:http2";
import { createServer as createHttpsServer, request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import { afterEach, beforeAll, describe, expect, test } from "vitest";
import * as expressAdapter from "../../src/adapters/express.js";
import * as fastifyAdapter from "../../src/adapters/fastify.js";
import * as honoAdapter from "../../src/adapters/hono.js";
import type { SessionOptions } from "../../src/core/config.js";
import type { SessionEngine } from "../../src/core/engine.js";
import { createSessionEngine } from "../../src/setup.js";
import { MemoryStore } from "../../src/stores/memory.js";

/**
 * Behind a proxy, through each framework's real request path: forwarded headers count only from
 * trusted peers, `secure = "auto"` follows how the client came, `public_origin` replaces Host.
 */

const engine = (options: SessionOptions) =>
  createSessionEngine({ env: {}, store: new MemoryStore(), logger: console, ...options });

/** What a proxy in front of the app at `internal:3000` adds for a client of https://app.example. */
const FORWARDED = {
  host: "internal:3000",
  "x-forwarded-proto": "https",
  "x-forwarded-host": "app.example",
};

interface Answer {
  status: number;
  setCookie: string | undefined;
  body: string;
}

const closers: Array<() => void> = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/** One request over a real socket, with any Host header. */
function send(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  tls = false,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = (tls ? httpsRequest : httpRequest)(
      { host: "127.0.0.1", port, method, path, headers, rejectUnauthorized: false },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("end", () => {
          const set = res.headers["set-cookie"];
          resolve({ status: res.statusCode ?? 0, setCookie: set?.[0], body });
        });
      },
    );
    req.on("error", reject);
    req.end();
  });
}

type Send = (method: string, path: string, headers: Record<string, string>) => Promise<Answer>;

function honoApp(e: SessionEngine): Hono {
  const app = new Hono();
  app.use(honoAdapter.session(e));
  app.get("/token", async (c) => c.text((await honoAdapter.getCsrfToken(c)).token()));
  app.post("/submit", (c) => c.text("accepted"));
  return app;
}

/** Hono without a socket: `app.request` (no peer, not encrypted). */
function honoRequest(e: SessionEngine): Send {
  const app = honoApp(e);
  return async (method, path, headers) => {
    const res = await app.request(`http://localhost${path}`, { method, headers });
    return {
      status: res.status,
      setCookie: res.headers.get("set-cookie") ?? undefined,
      body: await res.text(),
    };
  };
}

/** Hono on @hono/node-server, on a loopback port. */
async function honoServer(e: SessionEngine): Promise<Send> {
  const app = honoApp(e);
  const port = await new Promise<number>((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info) =>
      resolve(info.port),
    );
    closers.push(() => server.close());
  });
  return (method, path, headers) => send(port, method, path, headers);
}

function expressApp(e: SessionEngine): express.Express {
  const app = express();
  app.use(expressAdapter.session(e));
  app.get("/token", async (req, res) => {
    res.send((await expressAdapter.getCsrfToken(req)).token());
  });
  app.post("/submit", (_req, res) => {
    res.send("accepted");
  });
  return app;
}

async function listen(server: Server | ReturnType<typeof createHttpsServer>): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

/** Express on a loopback port. */
async function expressServer(e: SessionEngine): Promise<Send> {
  const port = await listen(createServer(expressApp(e)));
  return (method, path, headers) => send(port, method, path, headers);
}

/** Fastify through `inject`, from `remoteAddress`. */
async function fastifyInject(e: SessionEngine, remoteAddress = "127.0.0.1"): Promise<Send> {
  const app = Fastify();
  await app.register(fastifyAdapter.coatcheck, { engine: e });
  app.get("/token", async (request) => (await fastifyAdapter.getCsrfToken(request)).token());
  app.post("/submit", async () => "accepted");
  await app.ready();
  closers.push(() => void app.close());
  return async (method, url, headers) => {
    const res = await app.inject({ method: method as "GET", url, headers, remoteAddress });
    const set = res.headers["set-cookie"];
    return {
      status: res.statusCode,
      setCookie: Array.isArray(set) ? set[0] : set,
      body: res.body,
    };
  };
}

/** A session and its token, fetched with `headers`. */
async function tokenOf(http: Send, headers: Record<string, string>) {
  const first = await http("GET", "/token", { ...headers, accept: "text/plain" });
  expect(first.status).toBe(200);
  return {
    setCookie: first.setCookie ?? "",
    cookie: (first.setCookie ?? "").split(";")[0] as string,
    token: first.body,
  };
}

async function post(http: Send, headers: Record<string, string>, fresh = headers) {
  const { cookie, token } = await tokenOf(http, fresh);
  return http("POST", "/submit", {
    ...headers,
    cookie,
    "x-csrf-token": token,
    accept: "application/json",
  });
}

const secureAttr = (setCookie: string) => /;\s*Secure/i.test(setCookie);

const builds: Array<[string, (options: SessionOptions) => Promise<Send>, SessionOptions]> = [
  [
    "Hono app.request, trust_proxy = true",
    async (o) => honoRequest(engine(o)),
    { trustProxy: true },
  ],
  [
    "Hono on node-server, trust_proxy = loopback",
    (o) => honoServer(engine(o)),
    { trustProxy: ["loopback"] },
  ],
  [
    "Express on a loopback port, trust_proxy = 127.0.0.1",
    (o) => expressServer(engine(o)),
    { trustProxy: ["127.0.0.1"] },
  ],
  [
    "Fastify inject from 10.0.0.7, trust_proxy = private",
    (o) => fastifyInject(engine(o), "10.0.0.7"),
    { trustProxy: ["private"] },
  ],
];

const untrusted: Array<[string, (options: SessionOptions) => Promise<Send>, SessionOptions]> = [
  [
    "Hono app.request (no peer), trust_proxy = private",
    async (o) => honoRequest(engine(o)),
    { trustProxy: ["private"] },
  ],
  [
    "Hono on node-server, trust_proxy = 10.0.0.0/8",
    (o) => honoServer(engine(o)),
    { trustProxy: ["10.0.0.0/8"] },
  ],
  ["Express on a loopback port, trust_proxy off", (o) => expressServer(engine(o)), {}],
  [
    "Fastify inject from 203.0.113.9, trust_proxy = private",
    (o) => fastifyInject(engine(o), "203.0.113.9"),
    { trustProxy: ["private"] },
  ],
];

describe.each(builds)("%s", (_name, build, trust) => {
  test('behind the trusted proxy: the public https origin passes and secure = "auto" sets Secure', async () => {
    const http = await build({ ...trust, secure: "auto" });
    const { setCookie } = await tokenOf(http, FORWARDED);
    expect(secureAttr(setCookie)).toBe(true);
    const res = await post(http, { ...FORWARDED, origin: "https://app.example" });
    expect(res.body).toBe("accepted");
    expect(res.status).toBe(200);
  });

  test("the Host-derived origin is refused once the proxy says the client used another", async () => {
    const http = await build({ ...trust, secure: "auto" });
    const res = await post(http, { ...FORWARDED, origin: "http://internal:3000" });
    expect(res.status).toBe(403);
    const { message } = JSON.parse(res.body) as { message: string };
    expect(message).toContain('Origin "http://internal:3000"');
    expect(message).toContain("expected https://app.example");
  });

  test("Forwarded (RFC 7239) works the same", async () => {
    const http = await build({ ...trust, secure: "auto" });
    const headers = {
      host: "internal:3000",
      forwarded: 'for=198.51.100.4;proto=https;host="app.example"',
    };
    const { setCookie } = await tokenOf(http, headers);
    expect(secureAttr(setCookie)).toBe(true);
    expect((await post(http, { ...headers, origin: "https://app.example" })).status).toBe(200);
  });
});

describe.each(untrusted)("%s", (_name, build, trust) => {
  test("forwarded headers are ignored: origin mismatch, and no Secure on plain http with auto", async () => {
    const http = await build({ ...trust, secure: "auto" });
    const { setCookie } = await tokenOf(http, FORWARDED);
    expect(setCookie).toMatch(/^session_id=/);
    expect(secureAttr(setCookie)).toBe(false);
    const res = await post(http, { ...FORWARDED, origin: "https://app.example" });
    expect(res.status).toBe(403);
    const { message } = JSON.parse(res.body) as { message: string };
    expect(message).toBe(
      'Origin "https://app.example" is neither this site nor a trusted origin; expected https://internal:3000 or http://internal:3000',
    );
  });

  test("the message names the received origin and never quotes the token or the session id", async () => {
    const http = await build({ ...trust, secure: "auto" });
    const { cookie, token } = await tokenOf(http, {});
    const res = await http("POST", "/submit", {
      host: "internal:3000",
      cookie,
      "x-csrf-token": token,
      origin: `https://evil.example`,
      accept: "application/json",
    });
    expect(res.status).toBe(403);
    expect(res.body).not.toContain(token);
    expect(res.body).not.toContain(cookie.split("=")[1]);
    expect(res.body).toContain("evil.example");
  });

  test("public_origin is what the check expects, whatever Host says", async () => {
    const http = await build({ ...trust, secure: true, publicOrigin: "https://app.example" });
    const headers = { host: "internal:3000" };
    expect((await post(http, { ...headers, origin: "https://app.example" })).status).toBe(200);
    const own = await post(http, { ...headers, origin: "https://internal:3000" });
    expect(own.status).toBe(403);
    expect(JSON.parse(own.body).message).toContain("expected https://app.example");
  });
});

describe("secure = true and false are unchanged by the connection", () => {
  test.each([
    [true, true],
    [false, false],
  ])("secure = %s → Secure %s (Hono app.request)", async (secure, expected) => {
    const http = honoRequest(engine({ secure, trustProxy: true }));
    const { setCookie } = await tokenOf(http, secure ? {} : FORWARDED);
    expect(secureAttr(setCookie)).toBe(expected);
  });
});

describe('secure = "auto" on a TLS socket', () => {
  let tls: { key: Buffer; cert: Buffer };
  beforeAll(() => {
    const dir = mkdtempSync(join(tmpdir(), "coatcheck-tls-"));
    execFileSync(
      "openssl",
      [
        ...[
          "req",
          "-x509",
          "-newkey",
          "rsa:2048",
          "-nodes",
          "-days",
          "1",
          "-subj",
          "/CN=localhost",
        ],
        ...["-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")],
      ],
      { stdio: "ignore" },
    );
    tls = { key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) };
  });

  test("Express over HTTPS: Secure set, https origin expected, no proxy needed", async () => {
    const app = expressApp(engine({ secure: "auto" }));
    const port = await listen(createHttpsServer(tls, app));
    const http: Send = (method, path, headers) => send(port, method, path, headers, true);
    const { setCookie } = await tokenOf(http, { host: `localhost:${port}` });
    expect(secureAttr(setCookie)).toBe(true);
    const host = { host: `localhost:${port}` };
    expect((await post(http, { ...host, origin: `https://localhost:${port}` })).status).toBe(200);
    // Over TLS the plain-http origin of the same host is not this site.
    const plain = await post(http, { ...host, origin: `http://localhost:${port}` });
    expect(plain.status).toBe(403);
    expect(JSON.parse(plain.body).message).toContain(`expected https://localhost:${port}`);
  });

  test("Fastify over HTTP/2 with TLS: Secure set from the h2 socket", async () => {
    const app = Fastify({ http2: true, https: tls });
    await app.register(fastifyAdapter.coatcheck, { engine: engine({ secure: "auto" }) });
    app.get("/token", async (request) => (await fastifyAdapter.getCsrfToken(request)).token());
    await app.listen({ port: 0, host: "127.0.0.1" });
    closers.push(() => void app.close());
    const { port } = app.server.address() as AddressInfo;
    const session = h2Connect(`https://localhost:${port}`, { rejectUnauthorized: false });
    closers.push(() => session.close());
    const setCookie = await new Promise<string>((resolve, reject) => {
      const stream = session.request({ ":method": "GET", ":path": "/token" });
      stream.on("response", (h) => resolve(String(h["set-cookie"] ?? "")));
      stream.on("error", reject);
      stream.resume();
    });
    expect(setCookie).toMatch(/^session_id=/);
    expect(secureAttr(setCookie)).toBe(true);
  });
});

describe("Referer is the last witness when Origin and Sec-Fetch-Site are both missing", () => {
  const http = () => honoRequest(engine({ secure: false }));

  test.each([
    ["a foreign Referer", "https://evil.example/page?token=abc"],
    ["a malformed Referer", "not a url"],
    ["a Referer that is no web page", "javascript:alert(1)"],
  ])("%s is refused (referer_mismatch)", async (_name, referer) => {
    const res = await post(http(), { referer, accept: "application/json" });
    expect(res.status).toBe(403);
    const body = JSON.parse(res.body) as { message: string; reason?: string };
    expect(res.body).toContain("referer_mismatch");
    expect(body.message).toContain("expected https://localhost or http://localhost");
    // Only the Referer's origin is quoted, never its path or query.
    expect(body.message).not.toContain("token=abc");
  });

  test("the site's own page and a trusted origin pass", async () => {
    expect((await post(http(), { referer: "http://localhost/form" })).status).toBe(200);
    const trusted = honoRequest(
      engine({ secure: false, csrf: { trustedOrigins: ["https://partner.example"] } }),
    );
    expect((await post(trusted, { referer: "https://partner.example/x" })).status).toBe(200);
  });

  test("a missing Referer alone is not refused: the token decides", async () => {
    expect((await post(http(), {})).status).toBe(200);
    const forged = await http()("POST", "/submit", { accept: "application/json" });
    expect(forged.status).toBe(403);
    expect(forged.body).not.toContain("referer_mismatch");
  });

  test("with Sec-Fetch-Site present, Referer is not consulted", async () => {
    const res = await post(http(), {
      "sec-fetch-site": "same-origin",
      referer: "https://evil.example/",
    });
    expect(res.status).toBe(200);
  });
});
