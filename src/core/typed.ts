import {
  dropView,
  engineOf,
  type Session,
  type SessionView,
  type ViewReset,
  viewOf,
} from "./session.js";

/**
 * The part of the Standard Schema v1 interface (https://standardschema.dev) that coatcheck uses.
 * Declared here rather than imported so coatcheck has no dependency for it; it is structurally the
 * same type, so any conforming schema fits: zod 4, valibot 1, arktype and others.
 */
export interface StandardSchema<Input = unknown, Output = Input> {
  readonly "~standard": {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (
      value: unknown,
    ) => StandardSchemaResult<Output> | Promise<StandardSchemaResult<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

/** What a Standard Schema's `validate` returns: a value, or issues. */
export type StandardSchemaResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | {
      readonly issues: ReadonlyArray<{
        readonly message: string;
        readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
      }>;
    };

/** The output type of a Standard Schema: what `data()` returns. */
export type InferOutput<S extends StandardSchema> = NonNullable<S["~standard"]["types"]>["output"];

/** Checks a stored value; returns the value to use, or a description of what is wrong. */
type Check<T> = (value: unknown) => Promise<{ ok: true; value: T } | { ok: false; why: string }>;

/** Session keys starting with `_` belong to coatcheck (`_csrf_token`, `_auth`, `_flash:…`). */
const RESERVED = "_";

/**
 * A typed view's place among its session's views: one per name, so every `open` of a name in a
 * request shares one view, and the session can bring it up to date after `destroy()` or `lock()`.
 */
class TypedSlot implements SessionView {
  readonly definition: TypedSessionDefinition<unknown>;
  readonly view: Promise<TypedSession<unknown>>;
  readonly #session: Session;

  constructor(
    definition: TypedSessionDefinition<unknown>,
    session: Session,
    view: Promise<TypedSession<unknown>>,
  ) {
    this.definition = definition;
    this.#session = session;
    this.view = view;
  }

  async reset(reason: ViewReset): Promise<void> {
    if (reason === "cycle") return; // same data under a new id
    const current = await this.view.catch(() => null);
    if (current === null) return;
    current.adopt(
      reason === "destroy"
        ? await this.definition.defaultValue()
        : await this.definition.read(this.#session),
    );
  }
}

const slotKey = (name: string) => `typed:${name}`;

function describeIssues(result: { issues: ReadonlyArray<{ message: string; path?: unknown }> }) {
  return result.issues
    .map((issue) => {
      const path = Array.isArray(issue.path)
        ? issue.path
            .map((p: unknown) =>
              typeof p === "object" && p !== null && "key" in p ? String(p.key) : String(p),
            )
            .join(".")
        : "";
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join("; ");
}

function schemaCheck<T>(schema: StandardSchema<unknown, T>): Check<T> {
  return async (value) => {
    let result: StandardSchemaResult<T>;
    try {
      result = await schema["~standard"].validate(value);
    } catch (error) {
      // The spec says validate reports issues rather than throwing; a schema that throws on a
      // stored value still must not turn a request into a 500.
      return {
        ok: false,
        why: `the schema threw: ${error instanceof Error ? error.message : String(error)}`,
      };
    }
    if (result.issues) return { ok: false, why: describeIssues(result) };
    return { ok: true, value: result.value };
  };
}

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/**
 * Without a schema the default is the only description of the data, so a stored value must have
 * its shape: the same JSON kind, and for objects every key of the default, recursively. Array
 * elements and keys the default lacks are not checked: give a schema when that matters.
 */
function shapeMismatch(value: unknown, model: unknown, path: string): string | null {
  const want = kindOf(model);
  const got = kindOf(value);
  if (want !== got) return `${path || "value"}: expected ${want}, got ${got}`;
  if (want !== "object") return null;
  const target = value as Record<string, unknown>;
  for (const [key, inner] of Object.entries(model as Record<string, unknown>)) {
    if (!Object.hasOwn(target, key)) return `${path ? `${path}.` : ""}${key}: missing`;
    const found = shapeMismatch(target[key], inner, path ? `${path}.${key}` : key);
    if (found !== null) return found;
  }
  return null;
}

function isSchema(input: unknown): input is StandardSchema {
  return (
    (typeof input === "object" || typeof input === "function") &&
    input !== null &&
    "~standard" in input
  );
}

/** Plain JSON copy: defaults are handed out fresh, and nothing but JSON reaches the session. */
function jsonCopy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/**
 * A named, typed slot in the session: what `typedSession(...)` returns. Define it once at module
 * level and open it in each request with {@link TypedSessionDefinition.open}.
 */
export class TypedSessionDefinition<T> {
  /** The session key the data is stored under. */
  readonly name: string;
  readonly #check: Check<T>;
  readonly #defaultValue: () => Promise<T>;
  readonly #create: (
    definition: TypedSessionDefinition<T>,
    session: Session,
    data: T,
  ) => TypedSession<T>;

  /** @internal Use {@link typedSession} (or {@link AuthSession.open} for authentication). */
  constructor(
    name: string,
    check: Check<T>,
    defaultValue: () => Promise<T>,
    create: (definition: TypedSessionDefinition<T>, session: Session, data: T) => TypedSession<T>,
  ) {
    this.name = name;
    this.#check = check;
    this.#defaultValue = defaultValue;
    this.#create = create;
  }

  /**
   * This request's typed view. Reads the session (one store call on first use in a request); every
   * later `open` of the same definition in the request returns the same view. A stored value that
   * fails the schema is logged and replaced by the default; it never reaches the handler.
   *
   * Rejects when another definition already uses this name in the same session.
   */
  open(session: Session): Promise<TypedSession<T>> {
    const key = slotKey(this.name);
    const slot = viewOf(
      session,
      key,
      () =>
        new TypedSlot(
          this as TypedSessionDefinition<unknown>,
          session,
          this.read(session).then((data) => this.#create(this, session, data)) as Promise<
            TypedSession<unknown>
          >,
        ),
    );
    if (slot.definition !== (this as TypedSessionDefinition<unknown>)) {
      return Promise.reject(
        new Error(
          `coatcheck: two typed sessions use the name "${this.name}"; give each its own name`,
        ),
      );
    }
    // A failed read (store down) is not kept, so a retry within the request reads again.
    slot.view.catch(() => dropView(session, key, slot));
    return slot.view as Promise<TypedSession<T>>;
  }

  /** @internal The default value, fresh each call. */
  defaultValue(): Promise<T> {
    return this.#defaultValue();
  }

  /** @internal Check a value against the schema (or the default's shape). */
  check(value: unknown): ReturnType<Check<T>> {
    return this.#check(value);
  }

  /** @internal Read and check the stored value; the default when absent or unfit. */
  async read(session: Session): Promise<T> {
    const stored = await session.get(this.name);
    if (stored === undefined) return this.#defaultValue();
    const checked = await this.#check(stored);
    if (checked.ok) return checked.value;
    engineOf(session).logger.warn(
      {},
      `typed session "${this.name}" holds a value that does not fit its schema (${checked.why}); it was replaced by the default`,
    );
    // Drop it so the next request starts clean instead of logging again.
    await session.remove(this.name);
    return this.#defaultValue();
  }
}

/**
 * One request's typed view of a named session key.
 *
 * `data()` and `dataMut()` return the same object; `dataMut()` only says, in the type, that you
 * mean to change it. Changes reach the session when you call {@link TypedSession.save}.
 */
export class TypedSession<T> {
  readonly #definition: TypedSessionDefinition<T>;
  readonly #session: Session;
  #data: T;

  /** @internal Created by {@link TypedSessionDefinition.open}. */
  constructor(definition: TypedSessionDefinition<T>, session: Session, data: T) {
    this.#definition = definition;
    this.#session = session;
    this.#data = data;
  }

  /** The session key this view is stored under. */
  get name(): string {
    return this.#definition.name;
  }

  /** The underlying untyped session. */
  get session(): Session {
    return this.#session;
  }

  /** The data, for reading. */
  data(): Readonly<T> {
    return this.#data;
  }

  /** The data, for changing; call {@link TypedSession.save} afterwards. */
  dataMut(): T {
    return this.#data;
  }

  /**
   * Write the data to the session (stored at the end of the request). The data is checked against
   * the schema first, so a bug cannot store a value that the next request would discard.
   *
   * @throws TypeError when the data does not fit the schema, or is not JSON-serialisable.
   */
  async save(): Promise<void> {
    const checked = await this.#definition.check(jsonCopy(this.#data));
    if (!checked.ok) {
      throw new TypeError(
        `coatcheck: typed session "${this.name}" does not fit its schema: ${checked.why}`,
      );
    }
    await this.#session.insert(this.name, this.#data);
  }

  /** Reset the data to the default and remove the key from the session. */
  async clear(): Promise<void> {
    this.#data = await this.#definition.defaultValue();
    await this.#session.remove(this.name);
  }

  /**
   * Destroy the whole session (every key, not just this one): the record is deleted and the cookie
   * cleared. Every typed view of this session in the request is reset to its default, as after a
   * plain `session.destroy()`.
   */
  async destroy(): Promise<void> {
    await this.#session.destroy();
  }

  /** Give the session a new id, keeping its data (the old id dies at once); rotates the CSRF secret. */
  regenerate(): Promise<void> {
    return this.#session.cycleId();
  }

  /** @internal Replace the in-memory data without touching the session. */
  reset(data: T): void {
    this.#data = data;
  }

  /**
   * @internal Take `data` as what the session holds now (after `destroy()` or `lock()`): the view
   * forgets unsaved changes.
   */
  adopt(data: T): void {
    this.#data = data;
  }
}

/**
 * Define a typed session stored under the session key `name`.
 *
 * With a Standard Schema (zod, valibot, arktype…), `data()` has the schema's output type and every
 * stored value is validated when read. The default (used when the key is absent or its value
 * fails the schema) is `init()` when given; otherwise the schema's output for `undefined`, or
 * failing that for `{}` (so an object schema whose fields all have defaults needs nothing more).
 * The schema should describe JSON: its output is what gets stored and validated again next time.
 *
 * Without a schema, pass a function returning the default; the type is inferred from it, and a
 * stored value must have the default's shape (same JSON kinds, every key of the default).
 *
 * Names starting with `_` are reserved for coatcheck's own keys.
 *
 * @example
 * ```ts
 * const Cart = z.object({
 *   items: z.array(z.string()).default([]),
 *   total: z.number().default(0),
 * });
 * export const cartSession = typedSession("cart", Cart);
 *
 * app.post("/cart/:item", async (c) => {
 *   const cart = await cartSession.open(getSession(c));
 *   cart.dataMut().items.push(c.req.param("item"));
 *   cart.dataMut().total += 9.99;
 *   await cart.save();
 *   return c.text("Added to cart");
 * });
 * ```
 *
 * @throws TypeError at definition time for a bad name, or a schema that gives no default.
 */
export function typedSession<S extends StandardSchema>(
  name: string,
  schema: S,
  init?: () => InferOutput<S>,
): TypedSessionDefinition<InferOutput<S>>;
export function typedSession<T>(name: string, init: () => T): TypedSessionDefinition<T>;
export function typedSession(
  name: string,
  schemaOrInit: StandardSchema | (() => unknown),
  init?: () => unknown,
): TypedSessionDefinition<unknown> {
  checkName(name);
  if (name.startsWith(RESERVED)) {
    throw new TypeError(
      `coatcheck: typed session name "${name}" starts with "_", which is reserved for coatcheck's own keys`,
    );
  }
  return defineTyped(name, schemaOrInit, init, (d, s, data) => new TypedSession(d, s, data));
}

function checkName(name: unknown): asserts name is string {
  if (typeof name !== "string" || name.length === 0 || name.length > 256) {
    throw new TypeError(
      "coatcheck: a typed session name must be a non-empty string of at most 256 characters",
    );
  }
}

/** @internal Shared by {@link typedSession} and the built-in auth session (reserved name). */
export function defineTyped<T>(
  name: string,
  schemaOrInit: StandardSchema | (() => unknown),
  init: (() => unknown) | undefined,
  create: (definition: TypedSessionDefinition<T>, session: Session, data: T) => TypedSession<T>,
): TypedSessionDefinition<T> {
  if (!isSchema(schemaOrInit)) {
    if (typeof schemaOrInit !== "function") {
      throw new TypeError(
        `coatcheck: typedSession("${name}", …) takes a Standard Schema or a function returning the default value`,
      );
    }
    const model = jsonCopy(schemaOrInit());
    const check: Check<T> = async (value) => {
      const why = shapeMismatch(value, model, "");
      return why === null ? { ok: true, value: value as T } : { ok: false, why };
    };
    return new TypedSessionDefinition(
      name,
      check,
      async () => jsonCopy(schemaOrInit()) as T,
      create,
    );
  }
  const check = schemaCheck(schemaOrInit as StandardSchema<unknown, T>);
  if (init !== undefined) {
    return new TypedSessionDefinition(name, check, async () => jsonCopy(init()) as T, create);
  }
  const derived = deriveDefault(name, schemaOrInit as StandardSchema<unknown, T>);
  return new TypedSessionDefinition(
    name,
    check,
    async () => JSON.parse(await derived) as T,
    create,
  );
}

/**
 * The schema's output for `undefined`, else for `{}`, as JSON text. Synchronous schemas are
 * checked here, at definition time, so a schema without a default fails at start-up; an
 * asynchronous one fails on first use.
 */
function deriveDefault<T>(name: string, schema: StandardSchema<unknown, T>): Promise<string> {
  const fail = () =>
    new TypeError(
      `coatcheck: typed session "${name}": the schema accepts neither undefined nor {}, so it gives no default value; pass one: typedSession("${name}", schema, () => ({ … }))`,
    );
  const attempt = (input: unknown) => schema["~standard"].validate(input);
  // An output of `undefined` is no default: there would be nothing to store.
  const usable = (result: StandardSchemaResult<T>) =>
    result.issues || result.value === undefined ? null : JSON.stringify(result.value);
  const first = attempt(undefined);
  if (!(first instanceof Promise)) {
    const found = usable(first);
    if (found !== null) return Promise.resolve(found);
    const second = attempt({});
    if (!(second instanceof Promise)) {
      const fallback = usable(second);
      if (fallback !== null) return Promise.resolve(fallback);
      throw fail();
    }
  }
  const lazy = (async () => {
    const found = usable(await first) ?? usable(await attempt({}));
    if (found === null) throw fail();
    return found;
  })();
  // Reported on first use; never an unhandled rejection at start-up.
  lazy.catch(() => {});
  return lazy;
}
