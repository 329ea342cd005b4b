import { describe, expect, test } from "vitest";
import { createSessionEngine } from "../setup.js";
import { MemoryStore } from "../stores/memory.js";
import { AuthSession } from "./auth.js";
import { CsrfToken } from "./csrf.js";
import { StoreUnavailableError } from "./errors.js";
import { accessGuard } from "./guard.js";
import { mergeVary, type PipelineRequest, RequestPipeline, requestHost } from "./pipeline.js";

function request(headers: Record<string, string> = {}, method = "GET"): PipelineRequest {
  return {
    method,
    path: "/page",
    header: (name) => headers[name],
    formField: async () => undefined,
  };
}

function pipeline(csrf = false, logs: string[] = []) {
  const engine = createSessionEngine({
    env: {},
    secure: false,
    csrf: { enabled: csrf },
    store: new MemoryStore(),
    logger: {
      warn: (_f: unknown, m: string) => logs.push(m),
      error: (_f: unknown, m: string) => logs.push(m),
    },
  });
  return new RequestPipeline(engine);
}

const none = () => undefined;

describe("mergeVary", () => {
  test.each([
    [undefined, ["Cookie"], "Cookie"],
    ["Accept-Encoding", ["Cookie"], "Accept-Encoding, Cookie"],
    ["cookie", ["Cookie", "Origin"], "cookie, Origin"],
    ["*", ["Cookie"], undefined],
    ["Cookie", ["Cookie"], undefined],
  ] as const)("%s + %o → %s", (current, tokens, merged) => {
    expect(mergeVary(current, tokens)).toBe(merged);
  });
});

describe("requestHost", () => {
  test("Host first, then the request's authority (:authority on HTTP/2, or the URL's)", () => {
    expect(requestHost(request({ host: "a.example" }))).toBe("a.example");
    expect(requestHost({ ...request(), authority: () => "b.example:8443" })).toBe("b.example:8443");
    expect(requestHost(request())).toBeUndefined();
  });
});

describe("Exchange", () => {
  test("an untouched request adds nothing", async () => {
    const exchange = pipeline().begin(request());
    expect(await exchange.check()).toBeNull();
    expect(await exchange.finish(200, none)).toEqual({ response: null, set: {}, append: [] });
  });

  test("a new session: Set-Cookie appended, no-store and Vary: Cookie set", async () => {
    const exchange = pipeline().begin(request());
    await exchange.session.insert("user", "alice");
    const outcome = await exchange.finish(200, (name) =>
      name === "vary" ? "Accept-Encoding" : undefined,
    );
    expect(outcome.append).toHaveLength(1);
    expect(outcome.append[0]?.[0]).toBe("set-cookie");
    expect(outcome.set).toEqual({ "cache-control": "no-store", vary: "Accept-Encoding, Cookie" });
  });

  test("finishing twice commits once", async () => {
    const exchange = pipeline().begin(request());
    await exchange.session.insert("user", "alice");
    expect((await exchange.finish(200, none)).append).toHaveLength(1);
    expect(await exchange.finish(200, none)).toEqual({ response: null, set: {}, append: [] });
  });

  test("a failed CSRF check is negotiated and saves nothing; the answer varies on Origin", async () => {
    const p = pipeline(true);
    const exchange = p.begin(request({ accept: "text/html" }, "POST"));
    const refused = await exchange.check();
    expect(refused?.status).toBe(403);
    expect(refused?.headers["content-type"]).toBe("text/html; charset=utf-8");
    const outcome = await exchange.finish(403, (name) => refused?.headers[name]);
    // Refused before the session was read: the answer does not depend on the cookie.
    expect(outcome.set.vary).toBe("Accept, HX-Request, Origin, Sec-Fetch-Site");
    expect(outcome.append).toEqual([]);
  });

  test("an error that escaped the handler replaces the response, whatever the app sent", async () => {
    const exchange = pipeline().begin(request({ "hx-request": "true" }));
    await exchange.session.insert("user", "alice");
    const failure = exchange.failure(new StoreUnavailableError("down"));
    expect(failure?.headers["hx-trigger"]).toBe('{"coatcheck:unavailable":{"retryAfter":1}}');
    expect(exchange.failure(new Error("the app's own"))).toBeNull();
    const outcome = await exchange.finish(500, none);
    expect(outcome.response).toBe(failure);
    expect(outcome.append).toEqual([]);
  });

  test("a guard refusal is negotiated: 303 for a page, 401 JSON for a program", async () => {
    const p = pipeline();
    const guard = accessGuard();
    const page = await p.begin(request({ accept: "text/html" })).guard(guard);
    expect(page?.status).toBe(303);
    expect(page?.headers.location).toBe("/login");
    const api = await p.begin(request()).guard(guard);
    expect(api?.status).toBe(401);
    expect(JSON.parse(api?.body ?? "")).toMatchObject({ error: "unauthenticated" });
  });

  test("a rendered token makes the page no-store unless the app set a policy; public warns once", async () => {
    const logs: string[] = [];
    const p = pipeline(false, logs);
    const first = p.begin(request());
    (await CsrfToken.from(first.session)).token();
    const cookie = (await first.finish(200, none)).append[0]?.[1].split(";")[0] as string;
    for (let i = 0; i < 2; i++) {
      const again = p.begin(request({ cookie }));
      (await CsrfToken.from(again.session)).token();
      const outcome = await again.finish(200, (name) =>
        name === "cache-control" ? "public, max-age=60" : undefined,
      );
      expect(outcome.set["cache-control"]).toBeUndefined();
    }
    expect(logs.filter((line) => line.includes("GET /page"))).toHaveLength(1);
    const plain = p.begin(request({ cookie }));
    (await CsrfToken.from(plain.session)).token();
    expect((await plain.finish(200, none)).set["cache-control"]).toBe("no-store");
  });

  test("an htmx rotation: HX-Refresh, or HX-Redirect in place of a redirect", async () => {
    const p = pipeline();
    const login = p.begin(request({ "hx-request": "true" }, "POST"));
    await (await AuthSession.open(login.session)).login("alice", []);
    expect((await login.finish(200, none)).set["hx-refresh"]).toBe("true");

    const redirected = p.begin(request({ "hx-request": "true" }, "POST"));
    await (await AuthSession.open(redirected.session)).login("alice", []);
    const outcome = await redirected.finish(303, (name) =>
      name === "location" ? "/home" : undefined,
    );
    expect(outcome.response?.status).toBe(200);
    expect(outcome.response?.headers["hx-redirect"]).toBe("/home");
    expect(outcome.append[0]?.[0]).toBe("set-cookie");

    const own = p.begin(request({ "hx-request": "true" }, "POST"));
    await (await AuthSession.open(own.session)).login("alice", []);
    const kept = await own.finish(200, (name) => (name === "hx-redirect" ? "/x" : undefined));
    expect(kept.set["hx-refresh"]).toBeUndefined();
  });
  test("end: the outcome at once when the commit has no store work, a promise when it has", async () => {
    const p = pipeline();
    const first = p.begin(request());
    await first.session.insert("user", "alice");
    const saving = first.end(200, none);
    expect(saving).toBeInstanceOf(Promise);
    const cookie = (await saving).append[0]?.[1].split(";")[0] as string;

    const read = p.begin(request({ cookie }));
    expect(await read.session.get("user")).toBe("alice");
    const ended = read.end(200, none);
    expect(ended).not.toBeInstanceOf(Promise);
    expect(ended).toEqual({ response: null, set: { vary: "Cookie" }, append: [] });
    expect(read.end(200, none)).toEqual({ response: null, set: {}, append: [] });
    await expect(read.session.insert("user", "bob")).rejects.toThrow(/committed/);

    const untouched = p.begin(request({ cookie }));
    expect(untouched.end(200, none)).toEqual({ response: null, set: {}, append: [] });
  });

  test("end: an app header reader that throws rejects, it does not throw", async () => {
    const exchange = pipeline().begin(request());
    await exchange.session.get("user");
    const ended = exchange.end(200, () => {
      throw new Error("header reader broke");
    });
    await expect(Promise.resolve(ended)).rejects.toThrow("header reader broke");
  });
});
