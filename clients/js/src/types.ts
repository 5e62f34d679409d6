/**
 * Redocly's KV storage types, as its reference documents them. Value types default to `any`,
 * not `unknown`: the reference's own examples use values without a type argument
 * (`{ id: item.key[2], ...item.value }`).
 */

/** A single component of a key: a JavaScript primitive. */
export type KvKeyPart = string | number | boolean;

/** An array of key parts forming a complete key, e.g. `['users', 'john']` or `['items', 42, true]`. */
export type KvKey = KvKeyPart[];

/** Any JSON-serializable value: an object, an array or a primitive. */
export type KvValue = Record<string, unknown> | unknown[] | unknown;

export interface KvSetOptions {
  /** Time-to-live in seconds; the entry expires after it. Without it the entry persists. */
  ttlInSeconds?: number;
}

/** The object returned by `set`, `getMany`, and in `list` results. */
export interface KvListEntry<T = any> {
  key: KvKey;
  value: T | null;
}

/**
 * Which entries `list()` returns. `start` is inclusive and `end` exclusive in every pattern;
 * with a prefix, the key equal to the prefix itself is not listed.
 */
export type KvListSelector =
  | { prefix: KvKey }
  | { prefix: KvKey; start: KvKey }
  | { prefix: KvKey; end: KvKey }
  | { start: KvKey; end: KvKey };

export interface KvListOptions {
  /** 1 to 1000; 100 by default. */
  limit?: number;
  /** Descending key order; false by default. */
  reverse?: boolean;
  /** The cursor of a previous `list()` call with the same selector and direction. */
  cursor?: string;
}

export interface KvListResponse<T = any> {
  items: KvListEntry<T>[];
  /** How many entries match the selector after the cursor (this page included). */
  total: number;
  /** The cursor of the next page; null when there are no more entries. */
  cursor: string | null;
}

/** The object passed to the callback of `kv.transaction()`. */
export interface KvTransaction {
  get<T = any>(key: KvKey): Promise<T | null>;
  getMany<T = any>(keys: KvKey[]): Promise<(KvListEntry<T> | null)[]>;
  set<T = any>(key: KvKey, value: T, options?: KvSetOptions): Promise<KvListEntry<T> | null>;
  delete(key: KvKey): Promise<void>;
}

export interface Kv {
  get<T = any>(key: KvKey): Promise<T | null>;
  set<T = any>(key: KvKey, value: T, options?: KvSetOptions): Promise<KvListEntry<T> | null>;
  list<T = any>(selector: KvListSelector, options?: KvListOptions): Promise<KvListResponse<T>>;
  getMany<T = any>(keys: KvKey[]): Promise<(KvListEntry<T> | null)[]>;
  delete(key: KvKey): Promise<void>;
  transaction<T>(operation: (tx: KvTransaction) => Promise<T>): Promise<T>;
}

export interface KvOptions {
  /** The service's base URL, e.g. `https://kv.example.com` (without `/v2`). */
  baseUrl: string;
  /** An API key of the tenant owning the namespace. */
  apiKey: string;
  /** The namespace id (a UUID). */
  namespace: string;
  /** A fetch implementation; the global `fetch` by default. */
  fetch?: typeof fetch;
}
