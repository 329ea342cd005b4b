import { randomBytes } from "node:crypto";
import { engineOf, type Session, type ViewReset, viewOf } from "./session.js";

/** The four kinds of flash message. Use the constants (`FlashKind.Error`) or the strings. */
export const FlashKind = {
  Success: "success",
  Info: "info",
  Warning: "warning",
  Error: "error",
} as const;

/** One of `"success"`, `"info"`, `"warning"`, `"error"`. */
export type FlashKind = (typeof FlashKind)[keyof typeof FlashKind];

const STYLE: Record<FlashKind, { cssClass: string; icon: string }> = {
  success: { cssClass: "flash-success", icon: "check-circle" },
  info: { cssClass: "flash-info", icon: "info-circle" },
  warning: { cssClass: "flash-warning", icon: "exclamation-triangle" },
  error: { cssClass: "flash-error", icon: "x-circle" },
};

function isKind(value: unknown): value is FlashKind {
  return typeof value === "string" && Object.hasOwn(STYLE, value);
}

/**
 * Prefix of the session keys holding pending flash messages. Each message has its own key (prefix,
 * then a suffix that sorts by time), so parallel pushes never overwrite each other.
 */
export const FLASH_KEY_PREFIX = "_flash:";

/** One flash message: a kind and a text. Stored as plain JSON `{ kind, message }`. */
export class FlashMessage {
  /** The message's kind. */
  readonly kind: FlashKind;
  /** The text, as given: escape it when you render it into HTML. */
  readonly message: string;

  /** @throws TypeError for an unknown kind or a message that is not a string. */
  constructor(kind: FlashKind, message: string) {
    if (!isKind(kind)) {
      throw new TypeError(
        `coatcheck: unknown flash kind ${JSON.stringify(kind)}; use success, info, warning or error`,
      );
    }
    if (typeof message !== "string") {
      throw new TypeError("coatcheck: a flash message must be a string");
    }
    this.kind = kind;
    this.message = message;
  }

  /** A success message ("Operation completed"). */
  static success(message: string): FlashMessage {
    return new FlashMessage("success", message);
  }

  /** An informational message ("Did you know..."). */
  static info(message: string): FlashMessage {
    return new FlashMessage("info", message);
  }

  /** A warning ("This action cannot be undone"). */
  static warning(message: string): FlashMessage {
    return new FlashMessage("warning", message);
  }

  /** An error ("Something went wrong"). */
  static error(message: string): FlashMessage {
    return new FlashMessage("error", message);
  }

  /** CSS class for styling: `flash-success`, `flash-info`, `flash-warning` or `flash-error`. */
  get cssClass(): string {
    return STYLE[this.kind].cssClass;
  }

  /** Icon name: `check-circle`, `info-circle`, `exclamation-triangle` or `x-circle`. */
  get icon(): string {
    return STYLE[this.kind].icon;
  }

  /** The stored form. */
  toJSON(): { kind: FlashKind; message: string } {
    return { kind: this.kind, message: this.message };
  }
}

let counter = 0;

/**
 * A key that sorts after every key this process made before (time, then a counter that breaks
 * ties within a millisecond) and cannot collide with a key another process makes in the same
 * millisecond (random tail).
 */
function nextKey(now: number): string {
  counter = (counter + 1) % 36 ** 4;
  const time = Math.max(0, Math.floor(now)).toString(36).padStart(9, "0");
  return `${FLASH_KEY_PREFIX}${time}${counter.toString(36).padStart(4, "0")}${randomBytes(4).toString("hex")}`;
}

/** The key of the flash view among a session's views. */
const FLASH_VIEW = Symbol("coatcheck.flash");

/**
 * The flash messages of one request: those pushed by earlier requests (read once, then gone) plus
 * those added with {@link FlashMessages.now} for this response only.
 *
 * Reading takes the messages out of the store atomically: when parallel requests race (HTMX fires
 * several), exactly one of them gets each message. If the response turns out to be a 5xx, the
 * messages it took are put back for the next request. Reading again in the same request returns the
 * same messages without asking the store again, so a layout and a page may both read them; after
 * `destroy()` or `lock()` the next read asks the session again.
 *
 * A session keeps at most `max_flash_messages` pending messages: pushing one more drops the oldest.
 *
 * @example
 * ```ts
 * app.post("/users", async (c) => {
 *   await FlashMessages.push(getSession(c), FlashMessage.success("User created!"));
 *   return c.redirect("/users", 303);
 * });
 *
 * app.get("/users", async (c) => {
 *   const flash = FlashMessages.of(getSession(c));
 *   const html = (await flash.messages())
 *     .map((m) => `<div class="${m.cssClass}"><i class="${m.icon}"></i>${escapeHtml(m.message)}</div>`)
 *     .join("");
 *   return c.html(html);
 * });
 * ```
 */
export class FlashMessages {
  readonly #session: Session;
  #taken: Promise<FlashMessage[]> | null = null;
  readonly #now: FlashMessage[] = [];

  private constructor(session: Session) {
    this.#session = session;
  }

  /** This request's flash messages. Cheap: nothing is read until a method below is awaited. */
  static of(session: Session): FlashMessages {
    return viewOf(session, FLASH_VIEW, () => new FlashMessages(session));
  }

  /**
   * Keep `message` for the next request that reads flash messages (post-redirect-get). Read in this
   * same request before the response, it is shown now instead, and not kept.
   */
  static async push(session: Session, message: FlashMessage): Promise<void> {
    const checked = new FlashMessage(message.kind, message.message);
    const engine = engineOf(session);
    await session.insert(nextKey(engine.now()), checked.toJSON());
    const pending = (await session.keys()).filter((key) => key.startsWith(FLASH_KEY_PREFIX));
    const excess = pending.length - engine.config.maxFlashMessages;
    if (excess <= 0) return;
    // Keys sort by time: the first ones are the oldest.
    pending.sort();
    for (const key of pending.slice(0, excess)) await session.remove(key);
  }

  /** Show `message` in this response only; it is never stored. */
  static now(session: Session, message: FlashMessage): void {
    FlashMessages.of(session).#now.push(new FlashMessage(message.kind, message.message));
  }

  /**
   * The messages, oldest first: those pushed by earlier requests, then those added with `now`.
   * The first call in a request consumes the stored ones; later calls return the same messages.
   */
  async messages(): Promise<FlashMessage[]> {
    this.#taken ??= this.#take();
    const pending = this.#taken;
    try {
      return [...(await pending), ...this.#now];
    } catch (error) {
      // Nothing was consumed (the store failed): let a later call try again.
      if (this.#taken === pending) this.#taken = null;
      throw error;
    }
  }

  /** The messages of one kind (consumes, like {@link FlashMessages.messages}). */
  async byKind(kind: FlashKind): Promise<FlashMessage[]> {
    return (await this.messages()).filter((m) => m.kind === kind);
  }

  /** True when there is at least one error message (consumes, like {@link FlashMessages.messages}). */
  async hasErrors(): Promise<boolean> {
    return (await this.messages()).some((m) => m.kind === "error");
  }

  /** @internal The session was destroyed or read anew: the next read asks it again. */
  reset(reason: ViewReset): void {
    if (reason !== "cycle") this.#taken = null;
  }

  async #take(): Promise<FlashMessage[]> {
    const taken = await this.#session.consume(FLASH_KEY_PREFIX);
    const out: FlashMessage[] = [];
    for (const { key, value } of taken) {
      const v = value as { kind?: unknown; message?: unknown } | null;
      if (typeof v === "object" && v !== null && isKind(v.kind) && typeof v.message === "string") {
        out.push(new FlashMessage(v.kind, v.message));
      } else {
        engineOf(this.#session).logger.warn(
          {},
          `flash message "${key}" is not { kind, message }; dropped`,
        );
      }
    }
    return out;
  }
}
