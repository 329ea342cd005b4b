/**
 * coatcheck: server-side HTTP sessions for TypeScript apps that render HTML.
 *
 * The core is framework-free; pick an adapter (`coatcheck/hono`, `coatcheck/express`,
 * `coatcheck/fastify`) and a store: memory (default) or `coatcheck/redis`.
 *
 * @packageDocumentation
 */

export { AUTH_SESSION_KEY, type AuthData, AuthSession } from "./core/auth.js";
export {
  CSRF_KEYS,
  type CsrfConfig,
  type DeepPartial,
  defineConfig,
  type KeySpec,
  type Kind,
  type LoadConfigOptions,
  loadConfig,
  SESSION_KEYS,
  type SessionConfig,
  type SessionOptions,
} from "./core/config.js";
export {
  CSRF_FAILED_EVENT,
  type CsrfFailureReason,
  type CsrfRejection,
  type CsrfRequest,
  CsrfToken,
  csrfApplies,
  csrfRejection,
  verifyCsrf,
} from "./core/csrf.js";
export {
  CsrfBodyError,
  DEFAULT_FORM_LIMITS,
  type FormBodyProblem,
  type FormLimits,
  formFieldFromBytes,
  webFormField,
} from "./core/csrf-form.js";
export {
  type EngineHealth,
  type EngineOptions,
  type Logger,
  SessionEngine,
} from "./core/engine.js";
export {
  CoatcheckError,
  ConfigError,
  errorResponseFor,
  MissingMiddlewareError,
  SessionCommittedError,
  SessionLockTimeoutError,
  SessionValueError,
  StoreUnavailableError,
} from "./core/errors.js";
export {
  type CookieRejection,
  EVENTS,
  type EventMessages,
  type EventName,
  type StoreErrorKind,
} from "./core/events.js";
export { type ExpiryPolicy, MAX_LIFETIME_SECS, type SessionMeta } from "./core/expiry.js";
export { FLASH_KEY_PREFIX, FlashKind, FlashMessage, FlashMessages } from "./core/flash.js";
export {
  type AccessGuard,
  type AccessPolicy,
  accessGuard,
  type GuardOptions,
  type GuardRequest,
  type GuardResponse,
  guardDecision,
  type RequestKind,
  requestKind,
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
export { CSRF_SECRET_KEY, Session } from "./core/session.js";
export type {
  LockStore,
  RecordStore,
  SessionStore,
  SessionWrite,
  StoredSession,
  WriteMode,
} from "./core/store.js";
export {
  type InferOutput,
  type StandardSchema,
  type StandardSchemaResult,
  TypedSession,
  TypedSessionDefinition,
  typedSession,
} from "./core/typed.js";
export { type CoatcheckOptions, createSessionEngine } from "./setup.js";
export { MemoryStore, type MemoryStoreOptions } from "./stores/memory.js";
