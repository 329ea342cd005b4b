import { describe, test } from "vitest";
import { csrfEngine, honoApp, honoDriver, routes } from "./harness.js";
import { ROWS, runRow } from "./hostile-table.js";

describe("CSRF hostile requests through Hono (app.request)", () => {
  test.each(ROWS.map((row) => [row.name, row] as const))("%s", async (_name, row) => {
    await runRow(row, async () => {
      const { engine, store } = csrfEngine();
      const r = routes();
      return { driver: honoDriver(honoApp(engine, r)), routes: r, store };
    });
  });
});
