import type { CommitResult } from "../core/lifecycle.js";

/**
 * Add the commit's headers to a Web `Response`. Any response that sets or clears the cookie must
 * not be cached by a shared cache, or another user could receive it.
 */
export function applyCommit(response: Response, result: CommitResult): Response {
  if (result.setCookie === undefined) return response;
  let out = response;
  try {
    out.headers.append("set-cookie", result.setCookie);
  } catch {
    // Immutable headers (e.g. Response.redirect): copy the response first.
    out = new Response(response.body, response);
    out.headers.append("set-cookie", result.setCookie);
  }
  out.headers.set("cache-control", "no-store");
  const vary = out.headers.get("vary");
  if (!vary || !/(^|,)\s*(cookie|\*)\s*(,|$)/i.test(vary))
    out.headers.set("vary", vary ? `${vary}, Cookie` : "Cookie");
  return out;
}
