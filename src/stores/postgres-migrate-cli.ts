#!/usr/bin/env node
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import { migrate, migrationSql, type PgPoolLike } from "./postgres.js";
import { tableNames } from "./postgres-sql.js";

/**
 * `npx coatcheck-postgres-migrate [--url postgres://…] [--schema public] [--table coatcheck_sessions] [--print]`:
 * create the PostgreSQL store's tables (idempotent), or print the SQL with `--print`. The URL
 * defaults to COATCHECK_SESSION__POSTGRES_URL, then DATABASE_URL.
 */

const USAGE =
  "usage: coatcheck-postgres-migrate [--url postgres://…] [--schema NAME] [--table NAME] [--print]";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      url: { type: "string" },
      schema: { type: "string" },
      table: { type: "string" },
      print: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const tables = {
    ...(values.schema !== undefined ? { schema: values.schema } : {}),
    ...(values.table !== undefined ? { table: values.table } : {}),
  };
  if (values.print) {
    process.stdout.write(migrationSql(tables));
    return 0;
  }
  const url = values.url ?? process.env.COATCHECK_SESSION__POSTGRES_URL ?? process.env.DATABASE_URL;
  if (url === undefined) {
    process.stderr.write(`no database: pass --url or set DATABASE_URL\n${USAGE}\n`);
    return 2;
  }
  const { Pool } = createRequire(import.meta.url)("pg") as {
    Pool: new (o: object) => PgPoolLike & { end(): Promise<void> };
  };
  const pool = new Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 10_000 });
  try {
    await migrate(pool, tables);
    const names = tableNames(tables);
    process.stdout.write(`coatcheck: ${names.sessions} and ${names.locks} are ready\n`);
  } finally {
    await pool.end();
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`coatcheck-postgres-migrate: ${(error as Error).message}\n`);
    process.exitCode = 1;
  },
);
