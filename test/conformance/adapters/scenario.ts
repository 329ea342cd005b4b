import type { CsrfToken } from "../../../src/core/csrf.js";
import type { Session } from "../../../src/core/session.js";

/**
 * A framework-neutral route: every driver mounts it in its framework's idiom, so one scenario runs
 * unchanged on Hono, Express and Fastify.
 */
export interface ScenarioContext {
  session: Session;
  /** Path parameters (`:name` segments). */
  params: Record<string, string>;
  /** The framework's own `getCsrfToken` for this request. */
  csrfToken: () => Promise<CsrfToken>;
}

export interface ScenarioResult {
  status?: number;
  /** Whole body, sent at once. */
  body?: string;
  /** Body sent as a stream of these chunks. */
  chunks?: string[];
  headers?: Record<string, string>;
  /** 303 See Other to this location. */
  redirect?: string;
}

export interface Route {
  method: "GET" | "POST";
  /** Literal segments and `:name` parameters, e.g. `/set/:key/:value`. */
  path: string;
  /** Serialise with the framework's `sessionLock()`. */
  lock?: boolean;
  handler: (ctx: ScenarioContext) => Promise<ScenarioResult>;
}

/** What a driver hands back, the same for every framework. */
export interface Reply {
  status: number;
  headers: Headers;
  text: string;
}

export interface RequestInit {
  headers?: Record<string, string>;
  body?: string;
  /** Called as soon as the response's status and headers are known. */
  onHeaders?: () => void;
}

const json = (value: unknown): ScenarioResult => ({
  body: JSON.stringify(value ?? null),
  headers: { "content-type": "application/json" },
});
const text = (body: string): ScenarioResult => ({ body });

/** The routes most rows use: one per session operation and response shape. */
export const standardRoutes: Route[] = [
  { method: "GET", path: "/untouched", handler: async () => text("ok") },
  {
    method: "GET",
    path: "/get/:key",
    handler: async ({ session, params }) => json(await session.get(params.key as string)),
  },
  {
    method: "POST",
    path: "/set/:key/:value",
    handler: async ({ session, params }) => {
      await session.insert(params.key as string, params.value);
      return text("set");
    },
  },
  {
    method: "POST",
    path: "/remove/:key",
    handler: async ({ session, params }) => {
      await session.remove(params.key as string);
      return text("removed");
    },
  },
  {
    method: "POST",
    path: "/cycle",
    handler: async ({ session }) => {
      await session.cycleId();
      return text("cycled");
    },
  },
  {
    method: "POST",
    path: "/destroy",
    handler: async ({ session }) => {
      await session.destroy();
      return text("destroyed");
    },
  },
  {
    method: "POST",
    path: "/destroy-then-set",
    handler: async ({ session }) => {
      await session.destroy();
      await session.insert("fresh", true);
      return text("replaced");
    },
  },
  {
    method: "POST",
    path: "/remember/:secs",
    handler: async ({ session, params }) => {
      await session.insert("user", "alice");
      await session.setExpiry(Number(params.secs));
      return text("remembered");
    },
  },
  {
    method: "POST",
    path: "/fail/:key",
    handler: async ({ session, params }) => {
      await session.insert(params.key as string, "never");
      return { status: 500, body: "boom" };
    },
  },
  {
    method: "POST",
    path: "/unavailable/:key",
    handler: async ({ session, params }) => {
      await session.insert(params.key as string, "never");
      return { status: 503, body: "down for maintenance" };
    },
  },
  {
    method: "POST",
    path: "/throw/:key",
    handler: async ({ session, params }) => {
      await session.insert(params.key as string, "never");
      throw new Error("handler bug");
    },
  },
  {
    method: "POST",
    path: "/redirect",
    handler: async ({ session }) => {
      await session.insert("flash", "hello");
      return { redirect: "/next" };
    },
  },
  {
    method: "GET",
    path: "/stream",
    handler: async ({ session }) => {
      await session.insert("streamed", true);
      return { chunks: ["one,", "two,", "three"], headers: { "content-type": "text/plain" } };
    },
  },
  {
    method: "GET",
    path: "/vary",
    handler: async ({ session }) => {
      await session.insert("vary", true);
      return { body: "varied", headers: { vary: "Accept-Encoding" } };
    },
  },
  {
    method: "POST",
    path: "/cart/add",
    lock: true,
    handler: async ({ session }) => {
      const count = ((await session.get<number>("cart")) ?? 0) + 1;
      // Yield so that unserialised requests would interleave their read and write.
      await new Promise((r) => setTimeout(r, 5));
      await session.insert("cart", count);
      return text(String(count));
    },
  },
];
