import { serve } from "@hono/node-server";
import { createDemoApp } from "./app.js";

const port = Number(process.env.PORT ?? 3000);
const app = createDemoApp();
serve({ fetch: app.fetch, port, hostname: process.env.HOST ?? "127.0.0.1" }, () => {
  console.log(`coatcheck demo on http://localhost:${port}`);
});
