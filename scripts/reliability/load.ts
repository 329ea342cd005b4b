import autocannon from "autocannon";

/**
 * Load generator child of the outage script: autocannon in its own process, so the app, the
 * script's probes and the load never share an event loop. Each connection carries one signed-in
 * visitor's cookie and CSRF token and POSTs `/hit` (reads and writes the session). Every response is
 * classified as it arrives and sent to the parent in buckets of 250 ms over IPC:
 *   ok (200), unavailable (503 with Retry-After), bad (anything else).
 *
 * Input (argv[2], JSON): { base, visitors: [{cookie, token}], seconds, connections, timeoutSecs }.
 */

interface Input {
  base: string;
  visitors: Array<{ cookie: string; token: string }>;
  seconds: number;
  connections: number;
  timeoutSecs: number;
}

export interface Bucket {
  at: number;
  ok: number;
  unavailable: number;
  bad: number;
  badStatuses: Record<string, number>;
}

const input = JSON.parse(process.argv[2] ?? "{}") as Input;
const send = (message: unknown) => process.send?.(message);
const started = Date.now();
let bucket: Bucket = { at: started, ok: 0, unavailable: 0, bad: 0, badStatuses: {} };
const flush = () => {
  send({ kind: "bucket", bucket });
  bucket = { at: Date.now(), ok: 0, unavailable: 0, bad: 0, badStatuses: {} };
};
const ticker = setInterval(flush, 250);

let next = 0;
const instance = autocannon(
  {
    url: input.base,
    connections: input.connections,
    duration: input.seconds,
    timeout: input.timeoutSecs,
    setupClient(client) {
      const v = input.visitors[next++ % input.visitors.length] as Input["visitors"][number];
      client.setHeaders({ cookie: v.cookie, "x-csrf-token": v.token });
    },
    requests: [
      {
        method: "POST",
        path: "/hit",
        onResponse(status, _body, _context, headers) {
          const retryAfter = (headers as Record<string, unknown>)["retry-after"];
          if (status === 200) bucket.ok++;
          else if (status === 503 && retryAfter !== undefined) bucket.unavailable++;
          else {
            bucket.bad++;
            const label = status === 503 ? "503 without Retry-After" : String(status);
            bucket.badStatuses[label] = (bucket.badStatuses[label] ?? 0) + 1;
          }
        },
      },
    ],
  },
  (error, result) => {
    clearInterval(ticker);
    flush();
    send({
      kind: "done",
      error: error ? String(error) : null,
      total: result?.requests.total,
      errors: result?.errors,
      timeouts: result?.timeouts,
      non2xx: result?.non2xx,
      statusCodeStats: result?.statusCodeStats,
      latencyMax: result?.latency.max,
      latencyP99: result?.latency.p99,
      durationSecs: (Date.now() - started) / 1000,
    });
    // Give IPC a moment to deliver, then leave by ourselves.
    setTimeout(() => process.exit(0), 200);
  },
);
process.on("disconnect", () => instance.stop());
