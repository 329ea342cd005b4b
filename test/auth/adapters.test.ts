import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import Fastify from "fastify";
import { afterEach, describe, expect, test } from "vitest";
import * as expressAdapter from "../../src/adapters/express.js";
import * as fastifyAdapter from "../../src/adapters/fastify.js";
import { AuthSession } from "../../src/core/auth.js";
import type { SessionEngine } from "../../src/core/engine.js";
import { FlashMessage, FlashMessages } from "../../src/core/flash.js";
import type { Session } from "../../src/core/session.js";
import type { SessionStore } from "../../src/core/store.js";
import { createSessionEngine } from "../../src/setup.js";
import { cartSession, recordingLogger } from "./seed-app.js";
import { storeCases } from "./stores.js";

const BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

interface Reply {
  status: number;
  headers: Headers;
  text: string;
}

interface App {
  request(method: string, path: string, headers?: Record<string, string>): Promise<Reply>;
  close(): Promise<void>;
}

/** The seed's flows as framework-neutral handlers: each returns a body, or a path to redirect to. */
const handlers = {
  async login(s: Session, user: string, roles: string) {
    await (await AuthSession.open(s)).login(user, roles.split(","));
    await FlashMessages.push(s, FlashMessage.success(`Welcome back, ${user}!`));
    return { redirect: "/dashboard" };
  },
  async dashboard(s: Session) {
    const auth = await AuthSession.open(s);
    const flash = (await FlashMessages.of(s).messages()).map((m) => `[${m.cssClass}] ${m.message}`);
    return { body: `Welcome, ${auth.userId()}! ${flash.join(" ")}`.trim() };
  },
  async logout(s: Session) {
    await (await AuthSession.open(s)).logout();
    return { redirect: "/" };
  },
  async addToCart(s: Session, item: string) {
    const cart = await cartSession.open(s);
    cart.dataMut().items.push(item);
    cart.dataMut().total += 9.99;
    await cart.save();
    return { body: "Added to cart" };
  },
  async viewCart(s: Session) {
    const cart = (await cartSession.open(s)).data();
    return { body: `${cart.items.join(",")} ${cart.total.toFixed(2)}` };
  },
};

type Result = { redirect?: string; body?: string };

async function expressApp(engine: SessionEngine): Promise<App> {
  const { session, getSession, requireAuth, requireRole, sessionErrors } = expressAdapter;
  const app = express();
  app.use(session(engine));
  const send = (res: express.Response, r: Result) =>
    r.redirect ? res.redirect(303, r.redirect) : res.send(r.body);
  app.post("/login/:user/:roles", async (req, res) => {
    send(res, await handlers.login(getSession(req), req.params.user, req.params.roles));
  });
  app.get("/dashboard", requireAuth(), async (req, res) => {
    send(res, await handlers.dashboard(getSession(req)));
  });
  app.post("/action", requireAuth({ loginUrl: "/auth/signin" }), (_req, res) => {
    res.send("done");
  });
  app.get("/admin", requireRole("admin"), (_req, res) => {
    res.send("Admin dashboard");
  });
  app.post("/logout", async (req, res) => send(res, await handlers.logout(getSession(req))));
  app.post("/cart/:item", async (req, res) => {
    send(res, await handlers.addToCart(getSession(req), req.params.item));
  });
  app.get("/cart", async (req, res) => send(res, await handlers.viewCart(getSession(req))));
  app.use(sessionErrors());
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    async request(method, path, headers = {}) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, {
        method,
        headers,
        redirect: "manual",
      });
      return { status: res.status, headers: res.headers, text: await res.text() };
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function fastifyApp(engine: SessionEngine): Promise<App> {
  const { coatcheck, getSession, requireAuth, requireRole } = fastifyAdapter;
  const app = Fastify();
  await app.register(coatcheck, { engine });
  const send = (reply: import("fastify").FastifyReply, r: Result) =>
    r.redirect ? reply.redirect(r.redirect, 303) : reply.type("text/html").send(r.body);
  type P = { user: string; roles: string; item: string };
  app.post<{ Params: P }>("/login/:user/:roles", async (req, reply) =>
    send(reply, await handlers.login(getSession(req), req.params.user, req.params.roles)),
  );
  app.get("/dashboard", { onRequest: requireAuth() }, async (req, reply) =>
    send(reply, await handlers.dashboard(getSession(req))),
  );
  app.post("/action", { onRequest: requireAuth({ loginUrl: "/auth/signin" }) }, async () => "done");
  app.get("/admin", { onRequest: requireRole("admin") }, async () => "Admin dashboard");
  app.post("/logout", async (req, reply) => send(reply, await handlers.logout(getSession(req))));
  app.post<{ Params: P }>("/cart/:item", async (req, reply) =>
    send(reply, await handlers.addToCart(getSession(req), req.params.item)),
  );
  app.get("/cart", async (req, reply) => send(reply, await handlers.viewCart(getSession(req))));
  await app.ready();
  return {
    async request(method, path, headers = {}) {
      const res = await app.inject({ method: method as "GET", url: path, headers });
      const out = new Headers();
      for (const [name, value] of Object.entries(res.headers)) {
        if (value === undefined) continue;
        for (const v of Array.isArray(value) ? value : [value]) out.append(name, String(v));
      }
      return { status: res.statusCode, headers: out, text: res.body };
    },
    close: () => app.close(),
  };
}

const adapters = [
  { name: "express", mount: expressApp },
  { name: "fastify", mount: fastifyApp },
];

const matrix = adapters.flatMap((a) =>
  storeCases.map((s) => ({ adapter: a, store: s, label: `${a.name} × ${s.name}` })),
);

describe.each(matrix)("$label", ({ adapter, store: storeCase }) => {
  let app: App | undefined;
  let store: SessionStore | undefined;
  afterEach(async () => {
    await app?.close();
    await store?.close?.();
  });

  async function setup() {
    store = await storeCase.make();
    const engine = createSessionEngine({
      env: {},
      secure: false,
      csrf: { enabled: false },
      store,
      logger: recordingLogger().logger,
    });
    const mounted = await adapter.mount(engine);
    app = mounted;
    let cookie = "";
    const request = async (method: string, path: string, headers: Record<string, string> = {}) => {
      const res = await mounted.request(method, path, {
        accept: BROWSER,
        ...(cookie ? { cookie } : {}),
        ...headers,
      });
      const set = res.headers.get("set-cookie");
      if (set) cookie = /Max-Age=0/.test(set) ? "" : (set.split(";")[0] ?? "");
      return res;
    };
    const setCookie = (value: string) => {
      cookie = value;
    };
    return { request, cookie: () => cookie, setCookie };
  }

  test("login → 303 → dashboard shows the flash once; logout → protected page redirects", async () => {
    const { request } = await setup();
    const login = await request("POST", "/login/alice/user");
    expect(login.status).toBe(303);
    expect(login.headers.get("location")).toBe("/dashboard");
    expect((await request("GET", "/dashboard")).text).toBe(
      "Welcome, alice! [flash-success] Welcome back, alice!",
    );
    expect((await request("GET", "/dashboard")).text).toBe("Welcome, alice!");

    expect((await request("POST", "/logout")).status).toBe(303);
    const after = await request("GET", "/dashboard");
    expect(after.status).toBe(303);
    expect(after.headers.get("location")).toBe("/login");
  });

  test("login and logout rotate the id; old cookies are dead", async () => {
    const { request, cookie, setCookie } = await setup();
    await request("POST", "/cart/apple");
    const anonymous = cookie();
    await request("POST", "/login/alice/admin");
    const signedIn = cookie();
    expect(signedIn).not.toBe(anonymous);
    expect((await request("GET", "/cart")).text).toBe("apple 9.99");
    await request("POST", "/logout");
    const signedOut = cookie();
    expect(signedOut).not.toBe(signedIn);

    setCookie(anonymous);
    expect((await request("GET", "/cart")).text).toBe(" 0.00");
    setCookie(signedIn);
    expect((await request("GET", "/admin")).status).toBe(303);
    setCookie(signedOut);
    expect((await request("GET", "/cart")).text).toBe("apple 9.99");
    expect((await request("GET", "/admin")).status).toBe(303);
  });

  test("guard responses: page 303, HTMX 401 + HX-Redirect, API 401 JSON, missing role 403", async () => {
    const { request } = await setup();
    const page = await request("GET", "/dashboard");
    expect(page.status).toBe(303);
    expect(page.headers.get("location")).toBe("/login");

    const htmx = await request("POST", "/action", { "hx-request": "true" });
    expect(htmx.status).toBe(401);
    expect(htmx.headers.get("hx-redirect")).toBe("/auth/signin");

    const api = await request("GET", "/dashboard", { accept: "application/json" });
    expect(api.status).toBe(401);
    expect(api.headers.get("content-type")).toContain("application/json");
    expect(JSON.parse(api.text)).toMatchObject({ error: "unauthenticated", login: "/login" });

    await request("POST", "/login/bob/user");
    expect((await request("GET", "/admin")).status).toBe(403);
    const apiForbidden = await request("GET", "/admin", { accept: "application/json" });
    expect(apiForbidden.status).toBe(403);
    expect(JSON.parse(apiForbidden.text)).toMatchObject({ error: "forbidden" });
    expect((await request("POST", "/action", { "hx-request": "true" })).text).toBe("done");

    await request("POST", "/login/carol/user,admin");
    const admin = await request("GET", "/admin");
    expect(admin.status).toBe(200);
    expect(admin.text).toBe("Admin dashboard");
  });
});
