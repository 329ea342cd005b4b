import { Hono } from "hono";
import { getCsrfToken, getSession, session } from "../../src/adapters/hono.js";
import { CsrfToken } from "../../src/core/csrf.js";
import type { SessionEngine } from "../../src/core/engine.js";
import type { Session } from "../../src/core/session.js";
import { type CoatcheckOptions, createSessionEngine } from "../../src/setup.js";
import { SpyStore } from "../support/spy-store.js";

/** A request as the hostile table writes it: header pairs may repeat. */
export interface Probe {
  method: string;
  path: string;
  headers?: Array<[string, string]>;
  body?: string | Uint8Array | FormData | ReadableStream<Uint8Array>;
}

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
}

/** One framework with the CSRF test routes mounted. */
export interface Driver {
  /** The origin a browser on this app would send (`https://` + the Host the app sees). */
  ownOrigin: string;
  send(probe: Probe): Promise<Reply>;
  close(): Promise<void>;
}

/** Framework-neutral route bodies; every driver mounts them in its own idiom. */
export interface Routes {
  /** Handler runs of unsafe requests, by path: a rejected request must not add one. */
  ran: string[];
  /** GET /token: renders a fresh token (creates the secret). */
  token(s: Session): Promise<string>;
  /** GET /page: a page without a form: must create no session. */
  page(): Promise<string>;
  /** ALL /submit, /api/hook, /apix: records the run and writes to the session. */
  submit(s: Session, path: string): Promise<string>;
  /** POST /login: cycles the id (rotating the secret) and returns a token of the new secret. */
  login(s: Session): Promise<string>;
  /** POST /logout: destroys the session. */
  logout(s: Session): Promise<string>;
}

export function routes(): Routes {
  const ran: string[] = [];
  return {
    ran,
    async token(s) {
      return (await CsrfToken.from(s)).token();
    },
    async page() {
      return "<p>no form here</p>";
    },
    async submit(s, path) {
      ran.push(path);
      await s.insert("ran", ran.length);
      return "ok";
    },
    async login(s) {
      await s.insert("user", "alice");
      await s.cycleId();
      return (await CsrfToken.from(s)).token();
    },
    async logout(s) {
      await s.destroy();
      return "bye";
    },
  };
}

export const TRUSTED = "https://partner.example";

/** The engine every CSRF test uses: HTTPS cookies, one trusted origin, `/api` exempt. */
export function csrfEngine(options: CoatcheckOptions = {}): {
  engine: SessionEngine;
  store: SpyStore;
} {
  const store = new SpyStore();
  const engine = createSessionEngine({
    env: {},
    store,
    secure: true,
    logger: { warn() {}, error() {} },
    ...options,
    csrf: { trustedOrigins: [TRUSTED], exemptPaths: ["/api"], ...options.csrf },
  });
  return { engine, store };
}

export function honoApp(engine: SessionEngine, r: Routes): Hono {
  const app = new Hono();
  app.use(session(engine));
  app.get("/token", async (c) => c.text(await r.token(getSession(c))));
  app.get("/page", async (c) => c.html(await r.page()));
  app.get("/form", async (c) => {
    const csrf = await getCsrfToken(c);
    return c.html(`<head>${csrf.asMetaTag()}</head><form>${csrf.asHiddenField()}</form>`);
  });
  for (const path of ["/submit", "/api/hook", "/apix"])
    app.all(path, async (c) => c.text(await r.submit(getSession(c), path)));
  app.post("/login", async (c) => c.text(await r.login(getSession(c))));
  app.post("/logout", async (c) => c.text(await r.logout(getSession(c))));
  return app;
}

export function honoDriver(app: Hono): Driver {
  return {
    // `app.request("/x")` is http://localhost/x: the Host the check sees is "localhost".
    ownOrigin: "https://localhost",
    async send(probe) {
      const headers = new Headers();
      for (const [name, value] of probe.headers ?? []) headers.append(name, value);
      const res = await app.request(probe.path, {
        method: probe.method,
        headers,
        ...(probe.body !== undefined ? { body: probe.body, duplex: "half" } : {}),
      } as RequestInit);
      return { status: res.status, headers: res.headers, text: await res.text() };
    },
    async close() {},
  };
}

/** A fresh browser-like visit: GET /token, keep the cookie. */
export async function visit(driver: Driver): Promise<{ cookie: string; token: string }> {
  const res = await driver.send({ method: "GET", path: "/token" });
  const set = res.headers.get("set-cookie") ?? "";
  const cookie = set.split(";")[0] ?? "";
  if (!cookie.startsWith("session_id=")) throw new Error(`no session cookie: ${set}`);
  return { cookie, token: res.text };
}

export const FORM = "application/x-www-form-urlencoded";
