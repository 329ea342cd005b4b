import { AuthSession } from "./auth.js";
import type { Refusal } from "./errors.js";
import type { Session } from "./session.js";

/** Options of the auth guards. */
export interface GuardOptions {
  /** Where signed-out users are sent. Default `/login`. */
  loginUrl?: string;
}

/** What a guard requires. */
export interface AccessPolicy extends GuardOptions {
  /**
   * Roles the user must have: with `all` false (the default) any one of them is enough; with `all`
   * true every one is needed. Omit to require only a signed-in user.
   */
  roles?: string | readonly string[];
  /** Require every role of `roles` instead of any one. */
  all?: boolean;
}

/**
 * The pure decision: `null` to let the request through, or the refusal to answer with (shaped for
 * the caller by {@link negotiate}):
 *
 * - not signed in: `401 unauthenticated` with the login page as `redirect`, so a page navigation
 *   gets `303` to it, an htmx request `401` with `HX-Redirect` (htmx then loads the login page as a
 *   full navigation), an API call `401` JSON `{"error":"unauthenticated",…,"login":…}`;
 * - signed in without the required role: `403 forbidden`.
 */
export function guardDecision(input: {
  authenticated: boolean;
  authorized: boolean;
  loginUrl: string;
}): Refusal | null {
  if (!input.authenticated) {
    return {
      status: 401,
      error: "unauthenticated",
      title: "Sign in",
      message: "Sign in to continue.",
      redirect: input.loginUrl,
    };
  }
  if (input.authorized) return null;
  return {
    status: 403,
    error: "forbidden",
    title: "Forbidden",
    message: "You do not have a role this action requires.",
  };
}

/** A guard ready to run: given a request's session, the refusal to answer with, or `null`. */
export type AccessGuard = (session: Session) => Promise<Refusal | null>;

/**
 * Build a guard once, at start-up: the options are checked here, never on a request. Adapters run
 * it through the request pipeline (`requireAuth`, `requireRole`).
 *
 * @throws TypeError for a login URL that is empty or holds a line break (it becomes a header), or
 * roles that are not non-empty strings.
 */
export function accessGuard(policy: AccessPolicy = {}): AccessGuard {
  const loginUrl = policy.loginUrl ?? "/login";
  if (typeof loginUrl !== "string" || loginUrl.length === 0 || /[\r\n\0]/.test(loginUrl)) {
    throw new TypeError(
      "coatcheck: loginUrl must be a non-empty URL without line breaks, e.g. /login",
    );
  }
  const roles = typeof policy.roles === "string" ? [policy.roles] : policy.roles;
  if (
    roles !== undefined &&
    (!Array.isArray(roles) ||
      roles.length === 0 ||
      !roles.every((r) => typeof r === "string" && r.length > 0))
  ) {
    throw new TypeError("coatcheck: roles must be a non-empty list of non-empty strings");
  }
  const authorize = (auth: AuthSession) =>
    roles === undefined || (policy.all ? auth.hasAllRoles(roles) : auth.hasAnyRole(roles));
  return async (session) => {
    const auth = await AuthSession.open(session);
    const authenticated = auth.isAuthenticated();
    return guardDecision({
      authenticated,
      authorized: authenticated && authorize(auth),
      loginUrl,
    });
  };
}
