import type { CommitResult } from "../core/lifecycle.js";

/** The header operations a commit needs: Web `Headers`, Node responses and Fastify replies all fit. */
export interface HeaderTarget {
  get(name: string): string | null | undefined;
  set(name: string, value: string): void;
  append(name: string, value: string): void;
}

/**
 * Add the commit's headers to any {@link HeaderTarget}. Any response that sets or clears the cookie
 * must not be cached by a shared cache, or another user could receive it. Every adapter goes
 * through here, so the header rules are the same in every framework.
 */
export function writeCommitHeaders(target: HeaderTarget, result: CommitResult): void {
  if (result.setCookie === undefined) return;
  target.append("set-cookie", result.setCookie);
  target.set("cache-control", "no-store");
  const vary = target.get("vary");
  if (!vary || !/(^|,)\s*(cookie|\*)\s*(,|$)/i.test(vary))
    target.set("vary", vary ? `${vary}, Cookie` : "Cookie");
}

/** Add the commit's headers to a Web `Response` (see {@link writeCommitHeaders}). */
export function applyCommit(response: Response, result: CommitResult): Response {
  if (result.setCookie === undefined) return response;
  try {
    writeCommitHeaders(response.headers, result);
    return response;
  } catch {
    // Immutable headers (e.g. Response.redirect) throw on the first write: copy the response first.
    const out = new Response(response.body, response);
    writeCommitHeaders(out.headers, result);
    return out;
  }
}
