import { createRequire } from "node:module";
import type { SessionConfig } from "../core/config.js";
import type { Logger } from "../core/engine.js";
import { ConfigError } from "../core/errors.js";
import { type PgPoolLike, PostgresStore } from "./postgres.js";

/** The part of a node-postgres `Pool` this factory uses. */
interface OwnedPool extends PgPoolLike {
  on(event: "error", listener: (error: Error) => void): unknown;
  on(event: "connect", listener: () => void): unknown;
  end(): Promise<void>;
}

interface PgModule {
  Pool: new (options: Record<string, unknown>) => OwnedPool;
}

/** The parts of {@link SessionConfig} a PostgreSQL store is built from. */
export type PostgresConfig = Pick<
  SessionConfig,
  "postgresUrl" | "postgresSchema" | "postgresTable" | "postgresCreateTable" | "operationTimeoutMs"
>;

/**
 * Build the store for `storage = "postgres"`: a node-postgres pool from `postgres_url`
 * (`postgres://[user:pass@]host[:port]/database[?sslmode=…]`), owned and ended by the store.
 *
 * The pool never makes a request wait for a database that is down: connecting gives up after
 * `operation_timeout_ms` (at least 1 s), the server cancels a statement after as long
 * (`statement_timeout`), and the client drops a connection whose reply does not come within a
 * second more (a hung server), so the pool never fills with stuck connections. An outage is
 * logged once, and its end; connections are remade as requests come, so service resumes by itself.
 *
 * Throws {@link ConfigError} at start-up when `postgres_url` is missing or the `pg` package is
 * not installed.
 *
 * @param load Module loader; tests pass one that fails.
 */
export function postgresStoreFromConfig(
  config: PostgresConfig,
  logger: Logger,
  load: (name: string) => unknown = createRequire(import.meta.url),
): PostgresStore {
  if (config.postgresUrl === undefined) {
    throw new ConfigError(
      "session.postgres_url",
      'is required when storage = "postgres" (e.g. "postgres://user@localhost:5432/app")',
    );
  }
  let pg: PgModule;
  try {
    pg = load("pg") as PgModule;
  } catch (cause) {
    throw new ConfigError(
      "session.storage",
      'is "postgres", which needs the "pg" package (node-postgres): run `npm install pg`. ' +
        'Or pass `store: new PostgresStore(pool)` from "coatcheck/postgres" with a pool of your own.',
      { cause },
    );
  }
  const timeout = Math.max(1000, config.operationTimeoutMs);
  const pool = new pg.Pool({
    connectionString: config.postgresUrl,
    connectionTimeoutMillis: timeout,
    statement_timeout: timeout,
    query_timeout: timeout + 1000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    allowExitOnIdle: true,
  });
  // The pool emits "error" when an idle connection dies (server restart, network): without a
  // listener that would crash the process. Report the outage once, and its end.
  let down = false;
  pool.on("error", (error) => {
    if (down) return;
    down = true;
    logger.error(
      {},
      `PostgreSQL connection lost (${error.message}); session requests answer 503 until it is back`,
    );
  });
  pool.on("connect", () => {
    if (!down) return;
    down = false;
    logger.warn({}, "PostgreSQL connection restored");
  });
  return new PostgresStore(pool, {
    schema: config.postgresSchema,
    table: config.postgresTable,
    createTable: config.postgresCreateTable,
    logger,
    onClose: () => pool.end(),
  });
}
