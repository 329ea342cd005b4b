import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import formbody from "@fastify/formbody";
import multipart from "@fastify/multipart";
import express from "express";
import Fastify from "fastify";
import * as expressAdapter from "../../src/adapters/express.js";
import * as fastifyAdapter from "../../src/adapters/fastify.js";
import type { SessionEngine } from "../../src/core/engine.js";
import type { Driver, Probe, Routes } from "./harness.js";

const PATHS = ["/submit", "/api/hook", "/apix"] as const;

/**
 * Express on a loopback port, requests with fetch. `parseFirst` mounts `express.urlencoded()`
 * before the session middleware, so the check reads the parsed `req.body`; without it the check
 * reads the raw body and puts it back.
 */
export async function expressDriver(
  engine: SessionEngine,
  r: Routes,
  options: { parseFirst: boolean },
): Promise<Driver> {
  const app = express();
  if (options.parseFirst) app.use(express.urlencoded({ extended: true }));
  app.use(expressAdapter.session(engine));
  app.get("/token", async (req, res) => {
    res.send(await r.token(req.session));
  });
  app.get("/page", async (_req, res) => {
    res.send(await r.page());
  });
  for (const path of PATHS)
    app.all(path, async (req, res) => {
      res.send(await r.submit(req.session, path));
    });
  app.post("/login", async (req, res) => {
    res.send(await r.login(req.session));
  });
  app.post("/logout", async (req, res) => {
    res.send(await r.logout(req.session));
  });
  app.use(expressAdapter.sessionErrors());
  const server = createServer({ maxHeaderSize: 256 * 1024 }, app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    ownOrigin: `https://127.0.0.1:${port}`,
    async send(probe: Probe) {
      const headers = new Headers();
      for (const [name, value] of probe.headers ?? []) headers.append(name, value);
      const res = await fetch(`http://127.0.0.1:${port}${probe.path}`, {
        method: probe.method,
        headers,
        redirect: "manual",
        ...(probe.body !== undefined ? { body: probe.body, duplex: "half" } : {}),
      } as RequestInit);
      return { status: res.status, headers: res.headers, text: await res.text() };
    },
    close() {
      return new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}

/** Fastify with `@fastify/formbody` and `@fastify/multipart` (fields on the body), via inject. */
export async function fastifyDriver(engine: SessionEngine, r: Routes): Promise<Driver> {
  const app = Fastify();
  await app.register(formbody);
  await app.register(multipart, { attachFieldsToBody: true });
  await app.register(fastifyAdapter.coatcheck, { engine });
  // Bodies of any other type reach the check unparsed, as they would reach an app that reads them.
  app.addContentTypeParser("*", { parseAs: "string" }, (_req, body, done) => done(null, body));
  app.get("/token", async (request) => r.token(request.session));
  app.get("/page", async () => r.page());
  const methods = ["DELETE", "GET", "HEAD", "PATCH", "POST", "PUT", "OPTIONS"] as const;
  for (const path of PATHS)
    app.route({ method: [...methods], url: path, handler: (req) => r.submit(req.session, path) });
  app.post("/login", async (request) => r.login(request.session));
  app.post("/logout", async (request) => r.logout(request.session));
  await app.ready();
  return {
    ownOrigin: "https://localhost:80",
    async send(probe: Probe) {
      const headers: Record<string, string | string[]> = {};
      for (const [name, value] of probe.headers ?? []) {
        const key = name.toLowerCase();
        const prior = headers[key];
        headers[key] = prior === undefined ? value : [...[prior].flat(), value];
      }
      const body = probe.body;
      const payload =
        body === undefined || typeof body === "string"
          ? body
          : Buffer.from(await new Response(body as BodyInit).arrayBuffer());
      const res = await app.inject({
        method: probe.method as "POST",
        url: probe.path,
        headers,
        ...(payload !== undefined ? { payload } : {}),
      });
      const out = new Headers();
      for (const [name, value] of Object.entries(res.headers)) {
        if (value === undefined) continue;
        for (const one of Array.isArray(value) ? value : [value]) out.append(name, String(one));
      }
      return { status: res.statusCode, headers: out, text: res.body };
    },
    close: () => app.close(),
  };
}
