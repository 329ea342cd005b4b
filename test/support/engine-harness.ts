import { afterEach } from "vitest";
import type { SessionOptions } from "../../src/core/config.js";
import type { SessionEngine } from "../../src/core/engine.js";
import type { CommitResult } from "../../src/core/lifecycle.js";
import type { Session } from "../../src/core/session.js";
import type { SessionStore } from "../../src/core/store.js";
import { createSessionEngine } from "../../src/setup.js";
import { fakeClock } from "./clock.js";

/** What one request through the engine answered. */
export interface Answer<T> {
  /** The Set-Cookie value, if any. */
  setCookie: string | undefined;
  /** The id the cookie now names (or null when cleared); `undefined` when no Set-Cookie was sent. */
  cookieId: string | null | undefined;
  result: CommitResult;
  value: T;
}

/**
 * Requests straight through the public engine API (`engine.open` → handler → `engine.commit`), with
 * a fake clock and a recording logger: for rules of the core that hold whatever the adapter.
 */
export function engineHarness(store: SessionStore, options: SessionOptions = {}) {
  const clock = fakeClock();
  const warnings: string[] = [];
  const errors: string[] = [];
  const engine: SessionEngine = createSessionEngine({
    store,
    env: {},
    secure: false,
    csrf: { enabled: false },
    now: clock.now,
    logger: {
      warn: (_f: unknown, m: string) => warnings.push(m),
      error: (_f: unknown, m: string) => errors.push(m),
    },
    ...options,
  });

  /** One request carrying the cookie `id` (or none), answering `status`. */
  async function request<T = void>(
    id: string | null,
    handler: (session: Session) => Promise<T> | T,
    status = 200,
  ): Promise<Answer<T>> {
    const session = engine.open(id === null ? undefined : `session_id=${id}`);
    const value = await handler(session);
    const result = await engine.commit(session, status);
    return { setCookie: result.setCookie, cookieId: cookieIdOf(result.setCookie), result, value };
  }

  /** Two halves of one request, to interleave requests: open + handler now, commit later. */
  async function begin(id: string | null, handler: (session: Session) => Promise<void>) {
    const session = engine.open(id === null ? undefined : `session_id=${id}`);
    await handler(session);
    return {
      session,
      commit: async (status = 200) => {
        const result = await engine.commit(session, status);
        return { setCookie: result.setCookie, cookieId: cookieIdOf(result.setCookie), result };
      },
    };
  }

  /** A new stored session holding `values`; returns its id. */
  async function seed(values: Record<string, unknown>): Promise<string> {
    const answer = await request(null, async (s) => {
      for (const [key, value] of Object.entries(values)) await s.insert(key, value);
    });
    if (typeof answer.cookieId !== "string") throw new Error("seed: no session was created");
    return answer.cookieId;
  }

  /** Everything the session `id` holds now, read by a fresh request (empty when gone). */
  async function contents(id: string): Promise<Record<string, unknown>> {
    const answer = await request(id, async (s) => {
      const out: Record<string, unknown> = {};
      for (const key of await s.keys()) out[key] = await s.get(key);
      return out;
    });
    return answer.value;
  }

  return { engine, clock, warnings, errors, request, begin, seed, contents };
}

function cookieIdOf(setCookie: string | undefined): string | null | undefined {
  if (setCookie === undefined) return undefined;
  const value = setCookie.slice(setCookie.indexOf("=") + 1, setCookie.indexOf(";"));
  return /Max-Age=0/.test(setCookie) ? null : value;
}

/**
 * For a `describe` block: `setup()` makes a fresh store with `make` and an {@link engineHarness} on
 * it; the store is closed after each test.
 */
export function harnessPerTest(
  make: () => Promise<SessionStore>,
  defaults: SessionOptions = {},
): (
  options?: SessionOptions,
) => Promise<ReturnType<typeof engineHarness> & { store: SessionStore }> {
  let store: SessionStore | undefined;
  afterEach(async () => {
    await store?.close?.();
    store = undefined;
  });
  return async (options = {}) => {
    const made = await make();
    store = made;
    return { ...engineHarness(made, { ...defaults, ...options }), store: made };
  };
}
