import type { ErrorHandler } from "hono";
import { exchangeOf } from "../core/pipeline.js";
import type { Session } from "../core/session.js";
import { toResponse } from "./web.js";

/**
 * `app.onError(sessionErrors())`: a store outage or lock timeout thrown by a handler gets the same
 * negotiated 503 as everywhere else, without Hono's default `console.error` for every request
 * (coatcheck logs an outage once per burst). Other errors go to `fallback`, or get Hono's default:
 * an `HTTPException`'s own response, else a logged 500.
 */
export function sessionErrors(fallback?: ErrorHandler): ErrorHandler {
  return (error, c) => {
    const current = c.get("session") as Session | undefined;
    const failure = current ? (exchangeOf(current)?.failure(error) ?? null) : null;
    if (failure !== null) return toResponse(failure);
    if (fallback) return fallback(error, c);
    const http = error as Partial<{ getResponse(): Response }>;
    if (typeof http.getResponse === "function") return http.getResponse();
    console.error(error);
    return c.text("Internal Server Error", 500);
  };
}
