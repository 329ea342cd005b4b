import { Hono } from "hono";
import { getSession, session } from "../../src/adapters/hono.js";
import { AuthSession } from "../../src/core/auth.js";
import type { SessionOptions } from "../../src/core/config.js";
import type { SessionEngine } from "../../src/core/engine.js";
import type { SessionStore } from "../../src/core/store.js";
import { createSessionEngine } from "../../src/setup.js";
import { Jar } from "../support/hono-app.js";

/** An engine on `store` for the user-index tests: no CSRF check, plain-HTTP cookies. */
export function usersEngine(store: SessionStore, options: SessionOptions = {}, now?: () => number) {
  return createSessionEngine({
    store,
    env: {},
    secure: false,
    csrf: { enabled: false },
    logger: { warn: () => {}, error: () => {} },
    ...(now ? { now } : {}),
    ...options,
  });
}

/** The account routes a real app would have, answering JSON. */
export function usersApp(engine: SessionEngine) {
  const app = new Hono();
  app.use(session(engine));
  const auth = (c: Parameters<typeof getSession>[0]) => AuthSession.open(getSession(c));
  app.post("/login/:user", async (c) => {
    const a = await auth(c);
    try {
      await a.login(c.req.param("user"), ["user"], {
        userAgent: c.req.header("user-agent") ?? "",
        address: c.req.header("x-address") ?? "",
      });
    } catch (error) {
      return c.json({ refused: (error as Error).name }, 403);
    }
    return c.json({ ok: true });
  });
  app.get("/me", async (c) => c.json({ user: (await auth(c)).userId() }));
  app.get("/sessions", async (c) => c.json(await (await auth(c)).listSessions()));
  app.post("/revoke/:handle", async (c) =>
    c.json({ revoked: await (await auth(c)).revokeSession(c.req.param("handle")) }),
  );
  app.post("/revoke", async (c) => {
    const form = await c.req.parseBody();
    return c.json({ revoked: await (await auth(c)).revokeSession(form.session as string) });
  });
  app.post("/revoke-others", async (c) =>
    c.json({ revoked: await (await auth(c)).revokeOtherSessions() }),
  );
  app.post("/password", async (c) => c.json({ revoked: await (await auth(c)).passwordChanged() }));
  app.post("/logout", async (c) => {
    await (await auth(c)).logout();
    return c.json({ ok: true });
  });
  app.post("/rotate", async (c) => {
    await (await auth(c)).rotate();
    return c.json({ ok: true });
  });
  app.post("/destroy", async (c) => {
    await getSession(c).destroy();
    return c.json({ ok: true });
  });
  app.post("/remember", async (c) => {
    await getSession(c).setExpiry(30 * 86_400);
    return c.json({ ok: true });
  });
  return app;
}

/** One browser: a cookie jar and requests to `app`. */
export function browser(app: { request: Hono["request"] }, userAgent = "test-browser/1.0") {
  const jar = new Jar();
  const call = async (method: string, path: string, init: RequestInit = {}) => {
    const res = await app.request(path, {
      method,
      ...init,
      headers: {
        "user-agent": userAgent,
        ...jar.headers(),
        ...(init.headers as Record<string, string> | undefined),
      },
    });
    jar.take(res);
    return res;
  };
  return {
    jar,
    post: (path: string, init?: RequestInit) => call("POST", path, init),
    get: (path: string) => call("GET", path),
    async json<T = unknown>(method: "GET" | "POST", path: string): Promise<T> {
      const res = await call(method, path);
      return (await res.json()) as T;
    },
    async me(): Promise<string | null> {
      return ((await (await call("GET", "/me")).json()) as { user: string | null }).user;
    },
  };
}

/** The listing as JSON (dates as strings). */
export interface Listed {
  handle: string;
  createdAt: string;
  lastSeenAt: string;
  current: boolean;
  userAgent: string | null;
  address: string | null;
}
