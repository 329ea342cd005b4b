/**
 * `coatcheck/adapter-kit`: what adapter and store authors build on. The request pipeline every
 * adapter runs (open, CSRF check, guards, lock, commit, one plain response description), the
 * negotiated responses, the form-field readers for the CSRF check, the end-of-request decision
 * table, the store contract and id helpers. Applications need none of it: they use `coatcheck` and
 * an adapter.
 *
 * @example
 * ```ts
 * import { RequestPipeline } from "coatcheck/adapter-kit";
 * const pipeline = new RequestPipeline(createSessionEngine());
 * // per request: translate it, run the steps, translate the answers back
 * const exchange = pipeline.begin({ method, path, header, formField });
 * const refused = await exchange.check();
 * const outcome = await exchange.finish(status, (name) => responseHeaders.get(name));
 * ```
 *
 * @packageDocumentation
 */

export { AUTH_SESSION_KEY } from "./core/auth.js";
export { CSRF_KEYS, type KeySpec, type Kind, SESSION_KEYS } from "./core/config.js";
export {
  type CsrfRejection,
  type CsrfRequest,
  csrfApplies,
  csrfRejection,
  verifyCsrf,
} from "./core/csrf.js";
export {
  CsrfBodyError,
  checkDeclaredLength,
  DEFAULT_FORM_LIMITS,
  type FormLimits,
  formFieldFromBytes,
  formKind,
  readLimited,
  webFormField,
  withinDeadline,
} from "./core/csrf-form.js";
export {
  type CoatcheckResponse,
  errorResponseFor,
  negotiate,
  refusalFor,
  requestKind,
} from "./core/errors.js";
export {
  deadlineOf,
  IDLE_RENEWAL_FRACTION,
  MAX_LIFETIME_SECS,
  renewsIdle,
  type SessionMeta,
} from "./core/expiry.js";
export { FLASH_KEY_PREFIX } from "./core/flash.js";
export {
  type AccessGuard,
  type AccessPolicy,
  accessGuard,
  guardDecision,
} from "./core/guard.js";
export { generateId, isWellFormedId } from "./core/id.js";
export {
  type Action,
  type CommitResult,
  type CookieInstruction,
  DECISION_TABLE,
  type Facts,
  type Row,
} from "./core/lifecycle.js";
export {
  Exchange,
  exchangeOf,
  mergeVary,
  type Outcome,
  type PipelineRequest,
  RequestPipeline,
  requestHost,
} from "./core/pipeline.js";
export type { ClientView } from "./core/proxy.js";
export { CSRF_SECRET_KEY, type SessionUsage, usageOf } from "./core/session.js";
export {
  type IndexEntry,
  type IndexSelection,
  inheritsNothing,
  type LockStore,
  newFields,
  type RecordStore,
  type SessionWrite,
  type StoredSession,
  type UserIndexStore,
  type WriteMode,
} from "./core/store.js";
export { SIGNIN_KEY } from "./core/user-index.js";
