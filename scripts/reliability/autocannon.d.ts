/** The part of autocannon's API the reliability scripts use (the package ships no types). */
declare module "autocannon" {
  interface Client {
    setHeaders(headers: Record<string, string>): void;
  }
  interface Request {
    method?: string;
    path?: string;
    onResponse?(status: number, body: string, context: unknown, headers: unknown): void;
  }
  interface Options {
    url: string;
    connections?: number;
    duration?: number;
    timeout?: number;
    /** Requests per second over all connections; unlimited when absent. */
    overallRate?: number;
    setupClient?(client: Client): void;
    requests?: Request[];
  }
  interface Result {
    requests: { total: number };
    errors: number;
    timeouts: number;
    non2xx: number;
    statusCodeStats: Record<string, { count: number }>;
    latency: { max: number; p99: number };
  }
  interface Instance {
    stop(): void;
    on(event: "response", listener: (client: Client, status: number) => void): Instance;
  }
  function autocannon(
    options: Options,
    done: (error: Error | null, result: Result | undefined) => void,
  ): Instance;
  export default autocannon;
}
