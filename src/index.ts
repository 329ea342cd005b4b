/**
 * coatcheck: server-side HTTP sessions for TypeScript apps that render HTML.
 *
 * This entry holds what applications use: sessions, typed sessions, auth, flash messages, CSRF
 * tokens, configuration, errors and the memory store. Pick an adapter (`coatcheck/hono`,
 * `coatcheck/express`, `coatcheck/fastify`) and a store: memory (default) or `coatcheck/redis`.
 * Building an adapter or a store? See `coatcheck/adapter-kit`.
 *
 * @packageDocumentation
 */

export { type AuthData, AuthSession } from "./core/auth.js";
export {
  type CsrfConfig,
  type DeepPartial,
  defineConfig,
  type LoadConfigOptions,
  loadConfig,
  type SessionConfig,
  type SessionOptions,
} from "./core/config.js";
export { CSRF_FAILED_EVENT, type CsrfFailureReason, CsrfToken } from "./core/csrf.js";
export type { FormBodyProblem } from "./core/csrf-form.js";
export {
  type EngineHealth,
  type EngineOptions,
  type LogFields,
  type Logger,
  SessionEngine,
} from "./core/engine.js";
export {
  CoatcheckError,
  ConfigError,
  IndexUnsupportedError,
  MissingMiddlewareError,
  type Refusal,
  type RenderRefusal,
  type RequestKind,
  SessionCommittedError,
  SessionLimitError,
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
export type { ExpiryPolicy } from "./core/expiry.js";
export { FlashKind, FlashMessage, FlashMessages } from "./core/flash.js";
export type { GuardOptions } from "./core/guard.js";
export type { PipelineOptions } from "./core/pipeline.js";
export type { TrustProxy } from "./core/proxy.js";
export { Session } from "./core/session.js";
export type {
  IndexEntry,
  IndexSelection,
  SessionStore,
  UserIndexStore,
} from "./core/store.js";
export {
  type InferOutput,
  type StandardSchema,
  type StandardSchemaResult,
  TypedSession,
  TypedSessionDefinition,
  typedSession,
} from "./core/typed.js";
export type { DeviceInfo, RevokeReason, SessionListing } from "./core/user-index.js";
export { type CoatcheckOptions, createSessionEngine } from "./setup.js";
export { MemoryStore, type MemoryStoreOptions } from "./stores/memory.js";
