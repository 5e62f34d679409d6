/** Redocly's Kv interface over the service's HTTP API (/v2/storage/kvs/{namespace}). */

import { KvConflictError, KvError, errorOf } from "./errors.js";
import { decodeKey, encodeKey } from "./keys.js";
import { selectorBounds } from "./selector.js";
import type {
  Kv,
  KvKey,
  KvListEntry,
  KvListOptions,
  KvListResponse,
  KvListSelector,
  KvOptions,
  KvSetOptions,
  KvTransaction,
} from "./types.js";

/** The server's limits on one batch read and one transaction. */
export const MAX_BATCH_READ_KEYS = 1000;
export const MAX_TRANSACTION_READS = 100;
export const MAX_TRANSACTION_WRITES = 1000;
/** Attempts of a transaction whose checks fail, and its backoff (doubling, with jitter). */
export const TRANSACTION_ATTEMPTS = 10;
const BACKOFF_FIRST_MS = 10;
const BACKOFF_CAP_MS = 1000;
/** The value limit of a namespace without max_value_size, when a 413 does not say its own. */
const DEFAULT_VALUE_LIMIT = 1024 * 1024;

/** A value as the server sends it inside JSON: batch-read entries and listing items. */
interface WireValue {
  encoding?: "json" | "text" | "base64";
  data?: unknown;
}

interface WireEntry extends WireValue {
  key: string;
  etag: string;
}

const utf8 = new TextEncoder();

/** The JSON text of a value, or Redocly's "Value is not JSON serializable" error. */
function serialize(value: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    throw new TypeError(`Value is not JSON serializable: ${(err as Error).message}`);
  }
  if (json === undefined) {
    throw new TypeError(`Value is not JSON serializable: ${typeof value} has no JSON form`);
  }
  return json;
}

/** Whole seconds of a TTL (a fraction rounds up, so an entry never expires early). */
function ttlOf(options: KvSetOptions | undefined): number | undefined {
  const ttl = options?.ttlInSeconds;
  if (ttl === undefined) return undefined;
  if (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl <= 0) {
    throw new RangeError(`ttlInSeconds must be a positive number of seconds, not ${String(ttl)}.`);
  }
  return Math.ceil(ttl);
}

function base64Bytes(data: string): Uint8Array {
  const binary = atob(data);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** A JSON value as itself, a text value as a string, anything else as its bytes. */
function valueOf(wire: WireValue): unknown {
  switch (wire.encoding) {
    case "json":
      return wire.data ?? null;
    case "text":
      return wire.data;
    case "base64":
      return base64Bytes(wire.data as string);
    default:
      throw new KvError(200, { detail: `Unknown value encoding ${JSON.stringify(wire.encoding)}.` });
  }
}

function isJsonType(contentType: string): boolean {
  const type = contentType.split(";", 1)[0]!.trim().toLowerCase();
  return type === "application/json" || (type.startsWith("application/") && type.endsWith("+json"));
}

/** "1", "1.5", "0.98": at most two decimals, no trailing zeros. */
function amount(n: number): string {
  return String(Number(n.toFixed(2)));
}

/** Redocly's error for a value over the namespace's limit (read from the 413's detail). */
function valueTooLarge(size: number, refusal: KvError): KvError {
  const stated = /at most (\d+) bytes/.exec(refusal.detail);
  const limit = stated ? Number(stated[1]) : DEFAULT_VALUE_LIMIT;
  const message =
    `Value size (${(size / 1024).toFixed(2)} KB) exceeds the maximum allowed size of ` +
    `${amount(limit / (1024 * 1024))} MB (${amount(limit / 1024)} KB)`;
  return new KvError(refusal.status, refusal, message);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The backoff before attempt `attempt + 1`: 10 ms doubling up to 1 s, jittered to 50–100%. */
function backoff(attempt: number): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_FIRST_MS * 2 ** (attempt - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** A buffered transaction write; `json` is the serialized value of a set. */
type Write =
  | { op: "set"; key: KvKey; json: string; ttl: number | undefined }
  | { op: "delete"; key: KvKey };

class HttpKv implements Kv {
  readonly #base: string;
  readonly #auth: string;
  readonly #fetch: typeof fetch;

  constructor(options: KvOptions) {
    if (!options || typeof options.baseUrl !== "string" || !options.baseUrl) {
      throw new TypeError("createKv needs a baseUrl.");
    }
    if (typeof options.apiKey !== "string" || !options.apiKey) throw new TypeError("createKv needs an apiKey.");
    if (typeof options.namespace !== "string" || !options.namespace) {
      throw new TypeError("createKv needs a namespace id.");
    }
    const base = options.baseUrl.replace(/\/+$/, "");
    this.#base = `${base}/v2/storage/kvs/${encodeURIComponent(options.namespace)}`;
    this.#auth = `Bearer ${options.apiKey}`;
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== "function") throw new TypeError("No fetch: Node 18+ or a fetch option is needed.");
    this.#fetch = fetchImpl;
  }

  /** The answer to a request; a KvError unless it is 2xx. */
  async request(
    method: string,
    path: string,
    init: { query?: Record<string, string>; body?: string; accept404?: boolean } = {},
  ): Promise<Response> {
    let url = this.#base + path;
    if (init.query) url += `?${new URLSearchParams(init.query)}`;
    const headers: Record<string, string> = { Authorization: this.#auth };
    if (init.body !== undefined) headers["Content-Type"] = "application/json";
    const response = await this.#fetch(url, { method, headers, body: init.body });
    if (!response.ok) throw await errorOf(response);
    return response;
  }

  async get<T = any>(key: KvKey): Promise<T | null> {
    const name = encodeKey(key);
    let response: Response;
    try {
      response = await this.request("GET", `/keys/${name}`);
    } catch (err) {
      // 404 also answers for a missing namespace: only the key's own is "not found".
      if (err instanceof KvError && err.status === 404 && err.source?.parameter === "key") return null;
      throw err;
    }
    const contentType = response.headers.get("Content-Type") ?? "";
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (isJsonType(contentType)) {
      try {
        return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as T;
      } catch {
        return bytes as T; // not JSON after all: its bytes, as batch reads give them
      }
    }
    if (contentType.toLowerCase().startsWith("text/")) return new TextDecoder().decode(bytes) as T;
    return bytes as T;
  }

  async set<T = any>(key: KvKey, value: T, options?: KvSetOptions): Promise<KvListEntry<T> | null> {
    const name = encodeKey(key);
    const json = serialize(value);
    const ttl = ttlOf(options);
    try {
      const response = await this.request("PUT", `/keys/${name}`, {
        query: ttl === undefined ? undefined : { ttl_secs: String(ttl) },
        body: json,
      });
      await response.arrayBuffer();
    } catch (err) {
      if (err instanceof KvError && err.status === 413) throw valueTooLarge(utf8.encode(json).length, err);
      throw err;
    }
    return { key, value };
  }

  async delete(key: KvKey): Promise<void> {
    const response = await this.request("DELETE", `/keys/${encodeKey(key)}`);
    await response.arrayBuffer();
  }

  async list<T = any>(selector: KvListSelector, options: KvListOptions = {}): Promise<KvListResponse<T>> {
    const { limit = 100, reverse = false, cursor } = options;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new RangeError(`limit must be a whole number from 1 to 1000, not ${String(limit)}.`);
    }
    const bounds = selectorBounds(selector);
    if (bounds === null) return { items: [], total: 0, cursor: null };
    const query: Record<string, string> = { ...bounds, limit: String(limit), values: "true", total: "true" };
    if (reverse) query.reverse = "true";
    if (cursor) query.cursor = cursor;
    const response = await this.request("GET", "/keys", { query });
    const page = (await response.json()) as {
      data: WireEntry[];
      meta: { cursor: string | null; total?: number };
    };
    const items: KvListEntry<T>[] = [];
    for (const item of page.data) {
      const key = decodeKey(item.key);
      if (key !== null) items.push({ key, value: valueOf(item) as T });
    }
    return { items, total: page.meta.total as number, cursor: page.meta.cursor ?? null };
  }

  async getMany<T = any>(keys: KvKey[]): Promise<(KvListEntry<T> | null)[]> {
    if (!Array.isArray(keys)) throw new TypeError("getMany needs an array of keys.");
    const entries = await this.batchRead(keys.map(encodeKey));
    return entries.map((entry, i) => (entry ? { key: keys[i]!, value: valueOf(entry) as T } : null));
  }

  /** The entries of `names` (null when missing), read 1,000 at a time. */
  async batchRead(names: string[]): Promise<(WireEntry | null)[]> {
    const entries: (WireEntry | null)[] = [];
    for (let i = 0; i < names.length; i += MAX_BATCH_READ_KEYS) {
      entries.push(...(await this.#readChunk(names.slice(i, i + MAX_BATCH_READ_KEYS))));
    }
    return entries;
  }

  /** One batch read; when its values are too many bytes for one answer (413), each half. */
  async #readChunk(names: string[]): Promise<(WireEntry | null)[]> {
    try {
      const response = await this.request("POST", "/batch-read", {
        body: JSON.stringify({ keys: names, metadata_only: false }),
      });
      return ((await response.json()) as { data: (WireEntry | null)[] }).data;
    } catch (err) {
      if (!(err instanceof KvError && err.status === 413 && names.length > 1)) throw err;
      const half = Math.ceil(names.length / 2);
      return [...(await this.#readChunk(names.slice(0, half))), ...(await this.#readChunk(names.slice(half)))];
    }
  }

  async transaction<T>(operation: (tx: KvTransaction) => Promise<T>): Promise<T> {
    if (typeof operation !== "function") throw new TypeError("transaction needs a function.");
    for (let attempt = 1; ; attempt++) {
      const tx = new BufferedTransaction(this);
      let result: T;
      try {
        result = await operation(tx);
        await tx.settled();
      } finally {
        tx.finish();
      }
      const body = tx.body();
      if (body === null) return result;
      try {
        const response = await this.request("POST", "/transaction", { body });
        await response.arrayBuffer();
        return result;
      } catch (err) {
        if (err instanceof KvError && err.status === 413) throw tx.tooLarge(err);
        if (!(err instanceof KvError && err.status === 412)) throw err;
        if (attempt >= TRANSACTION_ATTEMPTS) throw new KvConflictError(attempt, err);
        await sleep(backoff(attempt));
      }
    }
  }
}

/**
 * One attempt of a transaction: reads go to the server (each key's etag kept as a check),
 * writes are buffered and sent, with the checks, in one request once the callback returns.
 * A key written earlier in the attempt is read from the buffer; the last write of a key wins.
 */
class BufferedTransaction implements KvTransaction {
  readonly #kv: HttpKv;
  /** name → the server's entry (null when absent), as first read in this attempt. */
  readonly #reads = new Map<string, Promise<WireEntry | null>>();
  /** name → the etag each read found (null: absent), the checks of the commit. */
  readonly #etags = new Map<string, string | null>();
  readonly #writes = new Map<string, Write>();
  #finished = false;

  constructor(kv: HttpKv) {
    this.#kv = kv;
  }

  #open(): void {
    if (this.#finished) throw new Error("The transaction has ended; use its object only inside the callback.");
  }

  async get<T = any>(key: KvKey): Promise<T | null> {
    const [entry] = await this.getMany<T>([key]);
    return entry ? entry.value : null;
  }

  getMany<T = any>(keys: KvKey[]): Promise<(KvListEntry<T> | null)[]> {
    try {
      this.#open();
      if (!Array.isArray(keys)) throw new TypeError("getMany needs an array of keys.");
      const names = keys.map(encodeKey);
      const unread = [...new Set(names.filter((n) => !this.#writes.has(n) && !this.#reads.has(n)))];
      if (this.#reads.size + unread.length > MAX_TRANSACTION_READS) {
        throw new RangeError(
          `A transaction may read at most ${MAX_TRANSACTION_READS} distinct keys (this one would read ` +
            `${this.#reads.size + unread.length}); nothing was written.`,
        );
      }
      if (unread.length > 0) {
        const batch = this.#kv.batchRead(unread);
        unread.forEach((name, i) => {
          const read = batch.then((entries) => {
            const entry = entries[i] ?? null;
            this.#etags.set(name, entry ? entry.etag : null);
            return entry;
          });
          this.#reads.set(name, read);
        });
      }
      // What each key holds as of this call: a buffered write, else what the server had.
      const results = names.map((name, i): Promise<KvListEntry<T> | null> => {
        const key = keys[i]!;
        const write = this.#writes.get(name);
        if (write) {
          return Promise.resolve(write.op === "set" ? { key, value: JSON.parse(write.json) as T } : null);
        }
        return this.#reads.get(name)!.then((entry) =>
          entry ? { key, value: structuredClone(valueOf(entry)) as T } : null,
        );
      });
      return Promise.all(results);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  set<T = any>(key: KvKey, value: T, options?: KvSetOptions): Promise<KvListEntry<T> | null> {
    try {
      this.#open();
      const name = encodeKey(key);
      const write: Write = { op: "set", key, json: serialize(value), ttl: ttlOf(options) };
      this.#buffer(name, write);
      return Promise.resolve({ key, value });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  delete(key: KvKey): Promise<void> {
    try {
      this.#open();
      this.#buffer(encodeKey(key), { op: "delete", key });
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #buffer(name: string, write: Write): void {
    if (!this.#writes.has(name) && this.#writes.size >= MAX_TRANSACTION_WRITES) {
      throw new RangeError(
        `A transaction may write at most ${MAX_TRANSACTION_WRITES} distinct keys; nothing was written.`,
      );
    }
    this.#writes.set(name, write);
  }

  /** Waits for every read the callback started (a failed one fails the commit). */
  async settled(): Promise<void> {
    await Promise.all(this.#reads.values());
  }

  finish(): void {
    this.#finished = true;
  }

  /**
   * The error for a 413 of this attempt's commit: Redocly's value-size error when it names
   * one set's value (`/operations/N/data`), else the server's (the values' total is too large).
   */
  tooLarge(refusal: KvError): KvError {
    const at = /^\/operations\/(\d+)\/data$/.exec(refusal.source?.pointer ?? "");
    const write = at ? [...this.#writes.values()][Number(at[1])] : undefined;
    return write?.op === "set" ? valueTooLarge(utf8.encode(write.json).length, refusal) : refusal;
  }

  /** The POST …/transaction body (after settled()), or null when the attempt neither read nor wrote. */
  body(): string | null {
    if (this.#reads.size === 0 && this.#writes.size === 0) return null;
    const checks: string[] = [];
    for (const [name, etag] of this.#etags) checks.push(JSON.stringify({ key: name, etag }));
    const operations: string[] = [];
    for (const [name, write] of this.#writes) {
      if (write.op === "delete") {
        operations.push(JSON.stringify({ op: "delete", key: name }));
        continue;
      }
      const ttl = write.ttl === undefined ? "" : `,"ttl_secs":${write.ttl}`;
      // The value's JSON is spliced as serialized by set(), not parsed and serialized again.
      operations.push(
        `{"op":"set","key":${JSON.stringify(name)},"encoding":"json",` +
          `"content_type":"application/json"${ttl},"data":${write.json}}`,
      );
    }
    return `{"checks":[${checks.join(",")}],"operations":[${operations.join(",")}]}`;
  }
}

/** A `Kv` (Redocly's interface) for one namespace of the service. */
export function createKv(options: KvOptions): Kv {
  return new HttpKv(options);
}
