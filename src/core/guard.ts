import { AuthSession } from "./auth.js";
import type { Session } from "./session.js";

/** The request facts a guard decision depends on. Adapters fill them from the request. */
export interface GuardRequest {
  /** HTTP method. */
  method: string;
  /** The `Accept` header, if any. */
  accept?: string | null | undefined;
  /** The `HX-Request` header, if any (`"true"` on every htmx request). */
  hxRequest?: string | null | undefined;
}

/** A response the adapter sends instead of running the handler. */
export interface GuardResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** How a caller is answered: a browser page load, an htmx request, or a program (JSON). */
export type RequestKind = "page" | "htmx" | "api";

/**
 * htmx requests first (they want `HX-Redirect`, which htmx follows whatever the status); then
 * clients that ask for JSON and not for HTML; everything else is treated as a page navigation,
 * which is what browsers send (their `Accept` names `text/html`).
 */
export function requestKind(request: GuardRequest): RequestKind {
  if (request.hxRequest === "true") return "htmx";
  const accept = (request.accept ?? "").toLowerCase();
  const wantsJson = /application\/json|\+json/.test(accept);
  const wantsHtml = /text\/html|application\/xhtml\+xml/.test(accept);
  return wantsJson && !wantsHtml ? "api" : "page";
}

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

// The guard's answers depend on these request headers and on the session, so no cache may reuse
// them for another user or another kind of client.
const BASE_HEADERS = {
  "cache-control": "no-store",
  vary: "Cookie, Accept, HX-Request",
};

/**
 * The pure decision: `null` to let the request through, or the response to send.
 *
 * - not signed in: a page navigation gets `303` to the login page; an htmx request `401` with
 *   `HX-Redirect: <login>` (htmx then loads the login page as a full navigation); an API call `401`
 *   with JSON `{"error":"unauthenticated",…}`;
 * - signed in without the required role: `403` (JSON for an API call).
 */
export function guardDecision(input: {
  authenticated: boolean;
  authorized: boolean;
  request: GuardRequest;
  loginUrl: string;
}): GuardResponse | null {
  const kind = requestKind(input.request);
  if (!input.authenticated) {
    if (kind === "page") {
      return { status: 303, headers: { ...BASE_HEADERS, location: input.loginUrl }, body: "" };
    }
    if (kind === "htmx") {
      return {
        status: 401,
        headers: {
          ...BASE_HEADERS,
          "hx-redirect": input.loginUrl,
          "content-type": "text/plain; charset=utf-8",
        },
        body: "Sign in to continue.",
      };
    }
    return {
      status: 401,
      headers: { ...BASE_HEADERS, "content-type": "application/json; charset=utf-8" },
      body: JSON.stringify({
        error: "unauthenticated",
        message: "Sign in to continue.",
        login: input.loginUrl,
      }),
    };
  }
  if (input.authorized) return null;
  if (kind === "api") {
    return {
      status: 403,
      headers: { ...BASE_HEADERS, "content-type": "application/json; charset=utf-8" },
      body: JSON.stringify({
        error: "forbidden",
        message: "You do not have a role this action requires.",
      }),
    };
  }
  return {
    status: 403,
    headers: { ...BASE_HEADERS, "content-type": "text/plain; charset=utf-8" },
    body: "Forbidden: you do not have a role this page requires.",
  };
}

/** A guard ready to run: given a request's session and facts, the response to send, or `null`. */
export type AccessGuard = (
  session: Session,
  request: GuardRequest,
) => Promise<GuardResponse | null>;

/**
 * Build a guard once, at start-up: the options are checked here, never on a request. Adapters wrap
 * it in their middleware (`requireAuth`, `requireRole`).
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
  return async (session, request) => {
    const auth = await AuthSession.open(session);
    const authenticated = auth.isAuthenticated();
    return guardDecision({
      authenticated,
      authorized: authenticated && authorize(auth),
      request,
      loginUrl,
    });
  };
}
