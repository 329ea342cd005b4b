import { describe, test } from "vitest";
import { csrfEngine, routes } from "./harness.js";
import { ROWS, runRow } from "./hostile-table.js";
import { expressDriver, fastifyDriver } from "./node-drivers.js";

/** The same hostile table as through Hono, through the Express and Fastify adapters. */

const cases = ROWS.map((row) => [row.name, row] as const);

describe.each([
  ["Express, body left unparsed (loopback + fetch)", false],
  ["Express, express.urlencoded() before session() (loopback + fetch)", true],
])("CSRF hostile requests through %s", (_name, parseFirst) => {
  test.each(cases)("%s", async (_row, row) => {
    await runRow(row, async () => {
      const { engine, store } = csrfEngine();
      const r = routes();
      return { driver: await expressDriver(engine, r, { parseFirst }), routes: r, store };
    });
  });
});

describe("CSRF hostile requests through Fastify (inject)", () => {
  test.each(cases)("%s", async (_row, row) => {
    await runRow(row, async () => {
      const { engine, store } = csrfEngine();
      const r = routes();
      return { driver: await fastifyDriver(engine, r), routes: r, store };
    });
  });
});
