import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { Hono } from "hono";
import { expect, test } from "vitest";
import { instrumentCoatcheck } from "../../examples/opentelemetry/telemetry.js";
import { getSession, session } from "../../src/adapters/hono.js";
import { createSessionEngine } from "../../src/setup.js";

/** A reader the test collects from on demand. */
class TestReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

test("examples/opentelemetry turns coatcheck's events into metrics", async () => {
  const reader = new TestReader();
  const provider = new MeterProvider({ readers: [reader] });
  const stop = instrumentCoatcheck(provider.getMeter("coatcheck-test"));
  try {
    const app = new Hono();
    app.use(session(createSessionEngine({ secure: false, csrf: { enabled: false } })));
    app.post("/set", async (c) => {
      await getSession(c).insert("n", 1);
      return c.text("ok");
    });
    app.get("/", async (c) => c.text(String(await getSession(c).get("n"))));
    const created = await app.request("/set", { method: "POST" });
    const cookie = (created.headers.get("set-cookie") ?? "").split(";")[0] as string;
    await app.request("/", { headers: { cookie } });
    await app.request("/", { headers: { cookie: "session_id=garbage" } });
  } finally {
    stop();
  }
  const { resourceMetrics } = await reader.collect();
  const points = new Map<string, Array<{ attributes: Record<string, unknown>; value: unknown }>>();
  for (const scope of resourceMetrics.scopeMetrics)
    for (const metric of scope.metrics)
      points.set(
        metric.descriptor.name,
        metric.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value })),
      );
  expect(points.get("coatcheck.session.events")).toEqual(
    expect.arrayContaining([
      { attributes: { event: "created" }, value: 1 },
      { attributes: { event: "loaded" }, value: 1 },
    ]),
  );
  expect(points.get("coatcheck.cookie.rejected")).toEqual([
    { attributes: { reason: "malformed" }, value: 1 },
  ]);
});
