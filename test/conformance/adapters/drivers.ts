import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import * as expressAdapter from "../../../src/adapters/express.js";
import * as fastifyAdapter from "../../../src/adapters/fastify.js";
import * as honoAdapter from "../../../src/adapters/hono.js";
import type { SessionEngine } from "../../../src/core/engine.js";
import type { Reply, RequestInit, Route, ScenarioResult } from "./scenario.js";

/** One framework with the session middleware and a set of neutral routes mounted. */
export interface Driver {
  request(method: string, path: string, init?: RequestInit): Promise<Reply>;
  close(): Promise<void>;
}

export interface Adapter {
  name: "hono" | "express" | "fastify";
  mount(engine: SessionEngine, routes: readonly Route[]): Promise<Driver>;
}

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
}

export const hono: Adapter = {
  name: "hono",
  async mount(engine, routes) {
    const app = new Hono();
    // Quiet 500s, like Express in test mode and Fastify without a logger.
    app.onError((_error, c) => c.text("Internal Server Error", 500));
    app.use(honoAdapter.session(engine));
    for (const route of routes) {
      const handler = async (c: import("hono").Context) => {
        const result = await route.handler({
          session: honoAdapter.getSession(c),
          params: c.req.param() as Record<string, string>,
        });
        if (result.redirect !== undefined) return c.redirect(result.redirect, 303);
        const body = result.chunks ? streamOf(result.chunks) : (result.body ?? "");
        return new Response(body, { status: result.status ?? 200, headers: result.headers ?? {} });
      };
      if (route.lock) app.on(route.method, route.path, honoAdapter.sessionLock(), handler);
      else app.on(route.method, route.path, handler);
    }
    return {
      async request(method, path, init = {}) {
        const res = await app.request(path, {
          method,
          headers: init.headers ?? {},
          ...(init.body !== undefined ? { body: init.body } : {}),
        });
        init.onHeaders?.();
        return { status: res.status, headers: res.headers, text: await res.text() };
      },
      async close() {},
    };
  },
};

/**
 * Express on a loopback port, requests with fetch. The server accepts headers up to 256 kB so the
 * hostile-cookie rows reach cloakroom: Node's default (16 kB) would answer 431 before Express runs.
 */
export const expressDriver: Adapter = {
  name: "express",
  async mount(engine, routes) {
    const app = express();
    app.use(expressAdapter.session(engine));
    for (const route of routes) {
      const handler: express.RequestHandler = async (req, res) => {
        const result = await route.handler({
          session: expressAdapter.getSession(req),
          params: req.params as Record<string, string>,
        });
        sendExpress(res, result);
      };
      const method = route.method === "GET" ? "get" : "post";
      if (route.lock) app[method](route.path, expressAdapter.sessionLock(), handler);
      else app[method](route.path, handler);
    }
    app.use(expressAdapter.sessionErrors());
    const server = createServer({ maxHeaderSize: 256 * 1024 }, app);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return fetchDriver(server);
  },
};

function sendExpress(res: express.Response, result: ScenarioResult): void {
  if (result.redirect !== undefined) {
    res.redirect(303, result.redirect);
    return;
  }
  res.status(result.status ?? 200);
  for (const [name, value] of Object.entries(result.headers ?? {})) res.setHeader(name, value);
  if (result.chunks) {
    for (const chunk of result.chunks) res.write(chunk);
    res.end();
    return;
  }
  res.send(result.body ?? "");
}

/** Requests over a real socket with fetch; `close()` stops the server. */
export function fetchDriver(server: Server): Driver {
  const { port } = server.address() as AddressInfo;
  return {
    async request(method, path, init = {}) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, {
        method,
        headers: init.headers ?? {},
        redirect: "manual",
        ...(init.body !== undefined ? { body: init.body } : {}),
      });
      init.onHeaders?.();
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

export const fastify: Adapter = {
  name: "fastify",
  async mount(engine, routes) {
    const app = Fastify();
    await app.register(fastifyAdapter.cloakroom, { engine });
    for (const route of routes) {
      app.route({
        method: route.method,
        url: route.path,
        ...(route.lock ? { onRequest: fastifyAdapter.sessionLock() } : {}),
        handler: async (request, reply) => {
          const result = await route.handler({
            session: fastifyAdapter.getSession(request),
            params: request.params as Record<string, string>,
          });
          if (result.redirect !== undefined) return reply.redirect(result.redirect, 303);
          reply.code(result.status ?? 200).headers(result.headers ?? {});
          return result.chunks ? Readable.from(result.chunks) : (result.body ?? "");
        },
      });
    }
    await app.ready();
    return {
      async request(method, path, init = {}) {
        const res = await app.inject({
          method: method as "GET",
          url: path,
          headers: init.headers ?? {},
          ...(init.body !== undefined ? { payload: init.body } : {}),
        });
        init.onHeaders?.();
        const headers = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          if (value === undefined) continue;
          for (const one of Array.isArray(value) ? value : [value])
            headers.append(name, String(one));
        }
        return { status: res.statusCode, headers, text: res.body };
      },
      close: () => app.close(),
    };
  },
};

export const adapters: readonly Adapter[] = [hono, expressDriver, fastify];
