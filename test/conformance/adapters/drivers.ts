import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import * as expressSession from "../../../src/adapters/express.js";
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
  name: "hono" | "express" | "express4" | "fastify";
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
          csrfToken: () => honoAdapter.getCsrfToken(c),
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

/** Express 4, installed under the npm alias `express4`; it has the same types as far as we use them. */
const express4 = createRequire(import.meta.url)("express4") as typeof express;

/**
 * Express on a loopback port, requests with fetch. The server accepts headers up to 256 kB so the
 * hostile-cookie rows reach coatcheck: Node's default (16 kB) would answer 431 before Express runs.
 * Handlers pass rejections to `next` themselves, the Express 4 idiom (Express 5 would do it anyway).
 */
function expressAdapter(name: "express" | "express4", factory: typeof express): Adapter {
  return {
    name,
    async mount(engine, routes) {
      const app = factory();
      app.use(expressSession.session(engine));
      for (const route of routes) {
        const handler: express.RequestHandler = (req, res, next) => {
          route
            .handler({
              session: expressSession.getSession(req),
              params: req.params as Record<string, string>,
              csrfToken: () => expressSession.getCsrfToken(req),
            })
            .then((result) => sendExpress(res, result), next);
        };
        const method = route.method === "GET" ? "get" : "post";
        if (route.lock) app[method](route.path, expressSession.sessionLock(), handler);
        else app[method](route.path, handler);
      }
      app.use(expressSession.sessionErrors());
      const server = createServer({ maxHeaderSize: 256 * 1024 }, app);
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      return fetchDriver(server);
    },
  };
}

export const express5Driver = expressAdapter("express", express);
export const express4Driver = expressAdapter("express4", express4);

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
    await app.register(fastifyAdapter.coatcheck, { engine });
    for (const route of routes) {
      app.route({
        method: route.method,
        url: route.path,
        ...(route.lock ? { onRequest: fastifyAdapter.sessionLock() } : {}),
        handler: async (request, reply) => {
          const result = await route.handler({
            session: fastifyAdapter.getSession(request),
            params: request.params as Record<string, string>,
            csrfToken: () => fastifyAdapter.getCsrfToken(request),
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

export const adapters: readonly Adapter[] = [hono, express5Driver, express4Driver, fastify];
