import type {
  LockStore,
  RecordStore,
  SessionWrite,
  StoredSession,
  WriteMode,
} from "../../src/core/store.js";

type Operation = "load" | "write" | "destroy" | "claim" | "take" | "acquireLock" | "releaseLock";

/**
 * Wraps a store so chosen operations answer late: the operation runs on the inner store at once,
 * then its reply is held back for `delayMs` (longer than the engine's operation timeout). That is
 * what a slow network does to a store that did its work: the caller times out, the outcome stands.
 * It says `inProcess: false` whatever the inner store is, so the engine guards it.
 */
export class LateStore implements RecordStore, LockStore {
  readonly inProcess = false;
  /** Operation labels in call order (`write:create`, `claim`, …). */
  readonly calls: string[] = [];
  readonly #inner: RecordStore & LockStore;
  readonly #late = new Map<Operation, number>();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #delayMs: number;

  constructor(inner: RecordStore & LockStore, delayMs = 700) {
    this.#inner = inner;
    this.#delayMs = delayMs;
  }

  /** The next call of `op` (with `mode` for writes) answers late. */
  lateOnce(op: Operation, mode?: WriteMode): void {
    const key = (mode ? `${op}:${mode}` : op) as Operation;
    this.#late.set(key, (this.#late.get(key) ?? 0) + 1);
  }

  /** Resolves once no operation is running or held back, including ones started by late replies. */
  async idle(): Promise<void> {
    for (;;) {
      await new Promise((r) => setImmediate(r));
      if (this.#pending.size === 0) return;
      await Promise.allSettled([...this.#pending]);
    }
  }

  #run<T>(op: Operation, label: string, action: () => Promise<T>): Promise<T> {
    this.calls.push(label);
    const run = (async () => {
      const result = await action();
      for (const key of [label, op] as Operation[]) {
        const left = this.#late.get(key) ?? 0;
        if (left === 0) continue;
        this.#late.set(key, left - 1);
        await new Promise((r) => setTimeout(r, this.#delayMs));
        break;
      }
      return result;
    })();
    this.#pending.add(run);
    run.then(
      () => this.#pending.delete(run),
      () => this.#pending.delete(run),
    );
    return run;
  }

  load(id: string, now: number): Promise<StoredSession | null> {
    return this.#run("load", "load", () => this.#inner.load(id, now));
  }
  write(id: string, write: SessionWrite, mode: WriteMode, now: number): Promise<boolean> {
    return this.#run("write", `write:${mode}`, () => this.#inner.write(id, write, mode, now));
  }
  destroy(id: string): Promise<void> {
    return this.#run("destroy", "destroy", () => this.#inner.destroy(id));
  }
  claim(id: string, now: number): Promise<StoredSession | null> {
    return this.#run("claim", "claim", () => this.#inner.claim(id, now));
  }
  take(id: string, keys: readonly string[]): Promise<Record<string, string>> {
    return this.#run("take", "take", () => this.#inner.take(id, keys));
  }
  acquireLock(id: string, token: string, ttlMs: number): Promise<boolean> {
    return this.#run("acquireLock", "acquireLock", () => this.#inner.acquireLock(id, token, ttlMs));
  }
  releaseLock(id: string, token: string): Promise<void> {
    return this.#run("releaseLock", "releaseLock", () => this.#inner.releaseLock(id, token));
  }
  close(): Promise<void> {
    return this.#inner.close?.() ?? Promise.resolve();
  }
}
