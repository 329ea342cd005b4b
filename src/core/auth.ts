import { SessionLimitError } from "./errors.js";
import { engineOf, type Session } from "./session.js";
import {
  defineTyped,
  type StandardSchema,
  type StandardSchemaResult,
  TypedSession,
  type TypedSessionDefinition,
} from "./typed.js";
import {
  type DeviceInfo,
  isHandle,
  listSessions,
  liveCount,
  newSignIn,
  parseSignIn,
  revokeSessions,
  type SessionListing,
  SIGNIN_KEY,
} from "./user-index.js";

/** Session key of the built-in auth session. Reserved: typed session names cannot start with `_`. */
export const AUTH_SESSION_KEY = "_auth";

/** What the auth session stores: user id, roles, sign-in time and extra fields, as plain JSON. */
export interface AuthData {
  /** The signed-in user's id, or `null` when nobody is signed in. */
  userId: string | null;
  /** The user's roles, without duplicates; empty when nobody is signed in. */
  roles: string[];
  /** When the user signed in, in unix seconds; `null` when nobody is signed in. */
  authenticatedAt: number | null;
  /** Anything else the app wants to keep about the user (display name, tenant…). */
  extra: Record<string, string>;
}

/** Who is signed in with which roles: what a privilege change changes. */
function principalOf(data: AuthData): string {
  return JSON.stringify([data.userId, [...new Set(data.roles)].sort()]);
}

function signedOut(): AuthData {
  return { userId: null, roles: [], authenticatedAt: null, extra: {} };
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}

function failure(message: string): StandardSchemaResult<AuthData> {
  return { issues: [{ message }] };
}

/**
 * Validates a stored auth record. A record is all-or-nothing: a user id comes with a login time,
 * and a signed-out record carries no roles, so a half-written or tampered record is never taken
 * for a signed-in user.
 */
function validateAuth(value: unknown): StandardSchemaResult<AuthData> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return failure("expected an object");
  }
  const v = value as Record<string, unknown>;
  const { userId, roles, authenticatedAt, extra } = v;
  if (userId !== null && (typeof userId !== "string" || userId.length === 0)) {
    return failure("userId: expected a non-empty string or null");
  }
  if (!isStringArray(roles)) return failure("roles: expected an array of strings");
  if (
    authenticatedAt !== null &&
    (typeof authenticatedAt !== "number" ||
      !Number.isSafeInteger(authenticatedAt) ||
      authenticatedAt < 0)
  ) {
    return failure("authenticatedAt: expected unix seconds or null");
  }
  if (typeof extra !== "object" || extra === null || Array.isArray(extra)) {
    return failure("extra: expected an object of strings");
  }
  const entries = Object.entries(extra);
  if (!entries.every(([, text]) => typeof text === "string")) {
    return failure("extra: expected an object of strings");
  }
  if (userId === null ? roles.length > 0 || authenticatedAt !== null : authenticatedAt === null) {
    return failure("userId, roles and authenticatedAt disagree about being signed in");
  }
  return {
    value: {
      userId,
      roles: [...new Set(roles)],
      authenticatedAt,
      extra: Object.fromEntries(entries) as Record<string, string>,
    },
  };
}

const authSchema: StandardSchema<unknown, AuthData> = {
  "~standard": { version: 1, vendor: "coatcheck", validate: validateAuth },
};

/**
 * The built-in typed session for authentication (a `TypedSession` of {@link AuthData}), stored
 * under {@link AUTH_SESSION_KEY}. Open it per request with {@link AuthSession.open}.
 *
 * `login` and `logout` change the session themselves: they save, and rotate the session id and the
 * CSRF secret (session fixation), so an app cannot forget to: `await auth.login(id, roles)` does
 * in one call what would otherwise be a change of the data, `save()` and `regenerate()`. Every
 * other privilege change rotates too: a `save()` or `clear()` that changes the user id or the roles
 * (`auth.dataMut().roles.push("admin"); await auth.save()`) gives the session a new id and CSRF
 * secret. Call {@link AuthSession.rotate} for an elevation the roles do not show (a step-up
 * confirmation).
 *
 * @example
 * ```ts
 * app.post("/login", async (c) => {
 *   const user = await checkCredentials(await c.req.parseBody());
 *   const auth = await AuthSession.open(getSession(c));
 *   await auth.login(user.id, ["user", "admin"]);
 *   return c.redirect("/dashboard", 303);
 * });
 *
 * app.get("/dashboard", async (c) => {
 *   const auth = await AuthSession.open(getSession(c));
 *   if (!auth.isAuthenticated()) return c.redirect("/login", 303);
 *   return c.html(`Welcome, ${escapeHtml(auth.userId() ?? "")}!`);
 * });
 * ```
 */
export class AuthSession extends TypedSession<AuthData> {
  static readonly #definition: TypedSessionDefinition<AuthData> = defineTyped(
    AUTH_SESSION_KEY,
    authSchema,
    signedOut,
    (definition, session, data) => new AuthSession(definition, session, data),
  );

  /**
   * This request's auth session. The first call in a request reads the session; later calls return
   * the same object. A stored record that does not validate is logged and treated as signed out.
   */
  static async open(session: Session): Promise<AuthSession> {
    return (await AuthSession.#definition.open(session)) as AuthSession;
  }

  /** The principal as last saved, read or rotated: a save that changes it rotates. */
  #principal: string;
  /** `login()` wrote this session's sign-in record already. */
  #signedIn = false;

  /** @internal Created by {@link AuthSession.open}. */
  constructor(definition: TypedSessionDefinition<AuthData>, session: Session, data: AuthData) {
    super(definition, session, data);
    this.#principal = principalOf(data);
  }

  /**
   * Write the auth data to the session. When the user id or the roles differ from what the session
   * held, the session id and the CSRF secret rotate as well (a privilege change).
   */
  override async save(): Promise<void> {
    await super.save();
    if (principalOf(this.data()) !== this.#principal) await this.rotate();
  }

  /** Sign out without rotating twice: see {@link AuthSession.logout}. Rotates when someone was signed in. */
  override async clear(): Promise<void> {
    await super.clear();
    if (principalOf(this.data()) !== this.#principal) await this.rotate();
  }

  /**
   * Rotate the session id and the CSRF secret now, keeping the data: for an elevation the roles do
   * not show (a re-entered password before a sensitive action).
   */
  async rotate(): Promise<void> {
    const before = (JSON.parse(this.#principal) as [string | null])[0];
    const after = this.data().userId;
    this.#principal = principalOf(this.data());
    // A change of user is a sign-in or a sign-out for the user index: a new handle, or none.
    if (after === null) await this.session.remove(SIGNIN_KEY);
    else if (after !== before && !this.#signedIn) {
      await this.session.insert(
        SIGNIN_KEY,
        JSON.parse(newSignIn(engineOf(this.session).now(), {})),
      );
    }
    this.#signedIn = false;
    await this.regenerate();
  }

  /** @internal */
  override adopt(data: AuthData): void {
    super.adopt(data);
    this.#principal = principalOf(data);
  }

  /** True when a user is signed in. */
  isAuthenticated(): boolean {
    return this.data().userId !== null;
  }

  /** The signed-in user's id, or `null`. */
  userId(): string | null {
    return this.data().userId;
  }

  /**
   * Sign `userId` in with `roles`: records the login time, saves, and rotates the session id and
   * the CSRF secret. `extra` starts empty for the new user. Other session keys (a cart) are kept.
   *
   * With a store that keeps a user index (memory, Redis, PostgreSQL), the session is recorded
   * under `userId` when the request commits, with the `device` details the app chooses to show
   * back in {@link AuthSession.listSessions} (e.g. the User-Agent header and the client address;
   * both are cut to a bounded length). Each sign-in is a new entry with a new handle, even for the
   * user already signed in on this session.
   *
   * With `max_sessions_per_user` set, a sign-in over the limit either ends the user's oldest
   * sessions when the request commits (`session_limit_action = "revoke_oldest"`) or throws here.
   *
   * @throws TypeError for an empty user id or a role that is not a non-empty string.
   * @throws SessionLimitError with `session_limit_action = "refuse"` when the user already has
   * `max_sessions_per_user` live sessions (this one not counted): nobody is signed in and the
   * session is unchanged.
   */
  async login(userId: string, roles: readonly string[] = [], device?: DeviceInfo): Promise<void> {
    if (typeof userId !== "string" || userId.length === 0) {
      throw new TypeError("coatcheck: login(userId, roles) needs a non-empty string user id");
    }
    if (!Array.isArray(roles) || !roles.every((r) => typeof r === "string" && r.length > 0)) {
      throw new TypeError(
        "coatcheck: login(userId, roles) needs roles as an array of non-empty strings",
      );
    }
    if (device !== undefined && (typeof device !== "object" || device === null)) {
      throw new TypeError("coatcheck: login(userId, roles, device) needs device as an object");
    }
    const engine = engineOf(this.session);
    const max = engine.config.maxSessionsPerUser;
    if (max > 0 && engine.config.sessionLimitAction === "refuse") {
      const mine = this.userId() === userId ? await this.#handle() : null;
      if ((await liveCount(engine, userId, mine)) >= max) throw new SessionLimitError(max);
    }
    const now = engine.now();
    this.reset({
      userId,
      roles: [...new Set(roles)],
      authenticatedAt: Math.floor(now / 1000),
      extra: {},
    });
    await super.save();
    await this.session.insert(SIGNIN_KEY, JSON.parse(newSignIn(now, device)));
    this.#signedIn = true;
    await this.rotate();
  }

  /**
   * Sign out: clears every auth field and rotates the session id and the CSRF secret. Other session
   * keys (a cart, pending flash messages) are kept under the new id; call `destroy()` instead to
   * drop everything. The session leaves its user's index.
   */
  async logout(): Promise<void> {
    await super.clear();
    await this.rotate();
  }

  /**
   * The signed-in user's live sessions, newest sign-in first, this one marked `current` (a session
   * signed in during this very request appears from the next request on). An empty list when
   * nobody is signed in.
   *
   * @throws IndexUnsupportedError when the store keeps no user index.
   */
  async listSessions(): Promise<SessionListing[]> {
    const userId = this.userId();
    if (userId === null) return [];
    return listSessions(engineOf(this.session), userId, await this.#handle());
  }

  /**
   * End one of the signed-in user's sessions by the handle {@link AuthSession.listSessions} gave.
   * Its next request, on any instance, is anonymous. The current session's handle signs this
   * session out instead (as {@link AuthSession.logout}). Returns `false`, changing nothing, when
   * the handle is not one of this user's live sessions (another user's, malformed, or when nobody
   * is signed in).
   *
   * @throws IndexUnsupportedError when the store keeps no user index.
   */
  async revokeSession(handle: string): Promise<boolean> {
    const userId = this.userId();
    if (userId === null || !isHandle(handle)) return false;
    if (handle === (await this.#handle())) {
      await this.logout();
      return true;
    }
    return (
      (await revokeSessions(engineOf(this.session), userId, { handles: [handle] }, "user")) > 0
    );
  }

  /**
   * End every session of the signed-in user but this one ("sign out my other devices"). Returns
   * how many were ended; 0 when nobody is signed in.
   *
   * @throws IndexUnsupportedError when the store keeps no user index.
   */
  async revokeOtherSessions(): Promise<number> {
    const userId = this.userId();
    if (userId === null) return 0;
    const keep = await this.#handle();
    return revokeSessions(engineOf(this.session), userId, { allExcept: keep }, "others");
  }

  /**
   * Call after the signed-in user's password changed: ends every other session of the user and
   * rotates this one's id and CSRF secret. Returns how many sessions were ended.
   *
   * @throws TypeError when nobody is signed in.
   * @throws IndexUnsupportedError when the store keeps no user index.
   */
  async passwordChanged(): Promise<number> {
    const userId = this.userId();
    if (userId === null) {
      throw new TypeError("coatcheck: passwordChanged() needs a signed-in user");
    }
    const keep = await this.#handle();
    const engine = engineOf(this.session);
    const ended = await revokeSessions(engine, userId, { allExcept: keep }, "password-changed");
    await this.rotate();
    return ended;
  }

  /** This session's handle in its user's index, or null when it has none. */
  async #handle(): Promise<string | null> {
    const value = await this.session.get(SIGNIN_KEY);
    return parseSignIn(value === undefined ? undefined : JSON.stringify(value))?.h ?? null;
  }

  /** True when a user is signed in and has `role`. */
  hasRole(role: string): boolean {
    return this.isAuthenticated() && this.data().roles.includes(role);
  }

  /** True when a user is signed in and has at least one of `roles` (false for an empty list). */
  hasAnyRole(roles: readonly string[]): boolean {
    return roles.some((role) => this.hasRole(role));
  }

  /** True when a user is signed in and has every one of `roles` (true for an empty list). */
  hasAllRoles(roles: readonly string[]): boolean {
    return this.isAuthenticated() && roles.every((role) => this.hasRole(role));
  }
}
