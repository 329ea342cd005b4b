import Fastify, {
  type FastifyInstance,
  type InjectOptions,
  type LightMyRequestResponse,
} from "fastify";
import { afterEach, describe, expect, test } from "vitest";
import { coatcheck } from "../../src/adapters/fastify.js";
import { createSessionEngine } from "../../src/setup.js";
import { MemoryStore } from "../../src/stores/memory.js";

/**
 * The plugin's `onSend` commits the session, then hands the reply on with `next`, which (the last
 * hook) writes the head. A head Node refuses (a header value with a character it rejects) throws
 * there, after the commit: the error must reach Fastify's error path, as it does without the
 * plugin, not become an unhandled rejection with the request never answered.
 */

const apps: FastifyInstance[] = [];
const rejections: unknown[] = [];
const onUnhandled = (reason: unknown) => rejections.push(reason);
afterEach(async () => {
  process.off("unhandledRejection", onUnhandled);
  rejections.length = 0;
  for (const app of apps.splice(0)) await app.close();
});

/** The app's own header values that make Node's `writeHead` throw `ERR_INVALID_CHAR`. */
const refusedHeaders: Array<[string, string, string]> = [
  ["a non-Latin-1 filename", "content-disposition", 'attachment; filename="résumé ….txt"'],
  ["a CR LF from user input", "x-greeting", "hello\r\nset-cookie: injected=1"],
];

async function appWith(plugin: boolean, name: string, value: string): Promise<FastifyInstance> {
  const app = Fastify();
  apps.push(app);
  if (plugin) {
    const engine = createSessionEngine({ env: {}, secure: false, store: new MemoryStore() });
    await app.register(coatcheck, { engine });
  }
  app.get("/file", async (request, reply) => {
    // The session changed: the commit has a cookie to set, so `onSend` has work to do.
    if (plugin) await request.session.insert("downloads", 1);
    reply.header(name, value);
    return "file body";
  });
  return app;
}

/** `inject`, or "no answer" when the request is left hanging. */
function answer(app: FastifyInstance, options: InjectOptions) {
  return Promise.race([
    app.inject(options),
    new Promise<"no answer">((resolve) => setTimeout(() => resolve("no answer"), 2000)),
  ]);
}

describe("Fastify: a head Node refuses after the commit", () => {
  test.each(refusedHeaders)(
    "%s: an error response as without the plugin, no unhandled rejection",
    async (_case, name, value) => {
      process.on("unhandledRejection", onUnhandled);
      const bare = (await answer(await appWith(false, name, value), {
        method: "GET",
        url: "/file",
      })) as LightMyRequestResponse;
      expect(bare.statusCode).toBe(500);

      const response = await answer(await appWith(true, name, value), {
        method: "GET",
        url: "/file",
      });
      // Rejections are reported after the microtask queue drains.
      await new Promise((resolve) => setImmediate(resolve));
      expect(rejections).toEqual([]);
      expect(response).not.toBe("no answer");
      const { statusCode, body } = response as LightMyRequestResponse;
      expect(statusCode).toBe(bare.statusCode);
      expect(body).toBe(bare.body);
      expect(body).toContain("ERR_INVALID_CHAR");
    },
  );
});
