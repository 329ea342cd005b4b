import { connect } from "node:http2";

/** One request over cleartext HTTP/2 (h2c), the way a browser's h2 request reaches the server. */
export async function h2Request(
  origin: string,
  request: { method: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<{
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}> {
  const session = connect(origin);
  try {
    return await new Promise((resolve, reject) => {
      session.on("error", reject);
      const stream = session.request({
        ":method": request.method,
        ":path": request.path,
        ...request.headers,
      });
      let status = 0;
      let headers: Record<string, string | string[] | undefined> = {};
      const chunks: Buffer[] = [];
      stream.on("response", (h) => {
        status = Number(h[":status"]);
        headers = h as Record<string, string | string[] | undefined>;
      });
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => resolve({ status, headers, text: Buffer.concat(chunks).toString() }));
      stream.on("error", reject);
      stream.end(request.body);
    });
  } finally {
    session.close();
  }
}

/** The session cookie (`name=value`) from a response's Set-Cookie headers. */
export function cookieFrom(setCookie: string | string[] | undefined): string {
  const first = Array.isArray(setCookie) ? setCookie[0] : setCookie;
  return (first ?? "").split(";")[0] as string;
}
