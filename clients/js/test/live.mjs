// The live server the integration tests use: KV_BASE_URL, KV_API_KEY and KV_NAMESPACE.
// Without them those tests are skipped (the codec tests need no server).
import { randomUUID } from "node:crypto";

import { createKv } from "../dist/index.js";

export const env = {
  baseUrl: process.env.KV_BASE_URL,
  apiKey: process.env.KV_API_KEY,
  namespace: process.env.KV_NAMESPACE,
};

/** A test option: skipped, with the reason, when no server is configured. */
export const live = {
  skip: env.baseUrl && env.apiKey && env.namespace ? false : "KV_BASE_URL, KV_API_KEY and KV_NAMESPACE are not set",
};

/** A Kv on the configured namespace, and the requests it made (method and path). */
export function liveKv(overrides = {}) {
  const requests = [];
  const kv = createKv({
    ...env,
    fetch: (url, init) => {
      requests.push(`${init?.method ?? "GET"} ${new URL(url).pathname.replace(/^.*\/kvs\/[^/]+/, "")}`);
      return fetch(url, init);
    },
    ...overrides,
  });
  return { kv, requests };
}

/** A string unique to this run, so that runs and test files sharing a namespace never meet. */
export const run = () => randomUUID().slice(0, 8);

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
