/** @kvs/redocly-kv: Redocly's KV storage interface for the kvs service. */

export { createKv, MAX_BATCH_READ_KEYS, MAX_TRANSACTION_READS, MAX_TRANSACTION_WRITES, TRANSACTION_ATTEMPTS } from "./client.js";
export { KvConflictError, KvError } from "./errors.js";
export { KEY_ALPHABET, MAX_KEY_NAME_LENGTH, decodeKey, encodeKey, encodeParts, encodedPartLength } from "./keys.js";
export { selectorBounds } from "./selector.js";
export type { ListBounds } from "./selector.js";
export type {
  Kv,
  KvKey,
  KvKeyPart,
  KvListEntry,
  KvListOptions,
  KvListResponse,
  KvListSelector,
  KvOptions,
  KvSetOptions,
  KvTransaction,
  KvValue,
} from "./types.js";
