import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import formbody from "@fastify/formbody";
import multipart from "@fastify/multipart";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import * as expressAdapter from "../../src/adapters/express.js";
import * as fastifyAdapter from "../../src/adapters/fastify.js";
import * as honoAdapter from "../../src/adapters/hono.js";
import { CsrfToken } from "../../src/core/csrf.js";
import type { Session } from "../../src/core/session.js";
import { createSessionEngine } from "../../src/setup.js";
import { SpyStore } from "../support/spy-store.js";

/**
 * The three frameworks with CSRF on and the same two routes, as a real app would have them: the
 * app's own body parsers are installed (Express `urlencoded`, Fastify formbody and multipart), so
 * hostile bodies meet both the framework's parsers and coatcheck's bounded form read.
 *   GET  /read   reads the session (no CSRF check: a safe method)
 *   GET  /token  renders a CSRF token (creates the session)
 *   POST /submit CSRF-checked; writes the session and counts the handler runs
 */

export interface HostileRequest {
  method: "GET" | "POST";
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface HostileApp {
  name: string;
  store: SpyStore;
  /** Handler runs of POST /submit. */
  runs: { count: number };
  send(
    request: HostileRequest,
  ): Promise<{ status: number; text: string; setCookie: string | null }>;
  /**
   * The status the same framework, parsers and route answer without coatcheck, when the framework
   * has answers of its own worth comparing (Fastify's multipart parser answers some malformed
   * bodies with 500 by itself).
   */
  control?(request: HostileRequest): Promise<number>;
  close(): Promise<void>;
}

async function read(s: Session) {
  return JSON.stringify((await s.get("user")) ?? null);
}
async function token(s: Session) {
  await s.insert("user", "alice");
  return (await CsrfToken.from(s)).token();
}
async function submit(s: Session, runs: { count: number }) {
  runs.count++;
  await s.insert("n", runs.count);
  return "ok";
}

function engineFor(store: SpyStore) {
  return createSessionEngine({
    env: {},
    store,
    secure: false,
    logger: { warn() {}, error() {} },
  });
}

export async function honoApp(): Promise<HostileApp> {
  const store = new SpyStore();
  const runs = { count: 0 };
  const app = new Hono();
  app.use(honoAdapter.session(engineFor(store)));
  app.get("/read", async (c) => c.text(await read(honoAdapter.getSession(c))));
  app.get("/token", async (c) => c.text(await token(honoAdapter.getSession(c))));
  app.post("/submit", async (c) => c.text(await submit(honoAdapter.getSession(c), runs)));
  return {
    name: "hono",
    store,
    runs,
    async send(r) {
      const res = await app.request(r.path, {
        method: r.method,
        headers: r.headers ?? {},
        ...(r.body !== undefined ? { body: r.body } : {}),
      });
      return {
        status: res.status,
        text: await res.text(),
        setCookie: res.headers.get("set-cookie"),
      };
    },
    async close() {},
  };
}

export async function expressApp(): Promise<HostileApp> {
  const store = new SpyStore();
  const runs = { count: 0 };
  const app = express();
  app.use(expressAdapter.session(engineFor(store)));
  app.use(express.urlencoded({ extended: false }));
  app.get("/read", async (req, res) => {
    res.send(await read(req.session));
  });
  app.get("/token", async (req, res) => {
    res.send(await token(req.session));
  });
  app.post("/submit", async (req, res) => {
    res.send(await submit(req.session, runs));
  });
  app.use(expressAdapter.sessionErrors());
  // Node's 16 kB header limit would answer 431 before Express: let large headers reach coatcheck.
  const server = createServer({ maxHeaderSize: 256 * 1024 }, app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    name: "express",
    store,
    runs,
    async send(r) {
      const res = await fetch(`http://127.0.0.1:${port}${r.path}`, {
        method: r.method,
        headers: r.headers ?? {},
        ...(r.body !== undefined ? { body: r.body } : {}),
      });
      return {
        status: res.status,
        text: await res.text(),
        setCookie: res.headers.get("set-cookie"),
      };
    },
    close() {
      return new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}

async function fastifyWithParsers() {
  const app = Fastify();
  await app.register(formbody);
  await app.register(multipart, { attachFieldsToBody: true });
  return app;
}

export async function fastifyApp(): Promise<HostileApp> {
  const store = new SpyStore();
  const runs = { count: 0 };
  const app = await fastifyWithParsers();
  await app.register(fastifyAdapter.coatcheck, { engine: engineFor(store) });
  app.get("/read", async (request) => read(request.session));
  app.get("/token", async (request) => token(request.session));
  app.post("/submit", async (request) => submit(request.session, runs));
  await app.ready();
  const plain = await fastifyWithParsers();
  plain.post("/submit", async () => "ok");
  await plain.ready();
  return {
    name: "fastify",
    store,
    runs,
    async send(r) {
      const res = await app.inject({
        method: r.method,
        url: r.path,
        headers: r.headers ?? {},
        ...(r.body !== undefined ? { payload: r.body } : {}),
      });
      const set = res.headers["set-cookie"];
      return {
        status: res.statusCode,
        text: res.body,
        setCookie: set === undefined ? null : String(set),
      };
    },
    async control(r) {
      const res = await plain.inject({
        method: r.method,
        url: r.path,
        headers: r.headers ?? {},
        ...(r.body !== undefined ? { payload: r.body } : {}),
      });
      return res.statusCode;
    },
    async close() {
      await app.close();
      await plain.close();
    },
  };
}

export const hostileApps = [honoApp, expressApp, fastifyApp];
