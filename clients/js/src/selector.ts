/** Redocly list selectors as bounds of the server's key listing. */

import { KEY_ALPHABET, MAX_KEY_NAME_LENGTH, encodeParts } from "./keys.js";
import type { KvKey, KvListSelector } from "./types.js";

/** Query parameters of `GET …/keys`: names >= max(prefix, start), < min(end, prefix's end). */
export interface ListBounds {
  prefix?: string;
  start?: string;
  end?: string;
}

function bound(key: unknown, what: string): string {
  if (!Array.isArray(key)) throw new TypeError(`The selector's '${what}' must be a key (an array).`);
  const name = encodeParts(key as KvKey);
  if (name.length > MAX_KEY_NAME_LENGTH) {
    throw new RangeError(`The selector's '${what}' encodes to over ${MAX_KEY_NAME_LENGTH} characters.`);
  }
  return name;
}

/**
 * The listing bounds of a selector, or null when it can match no key (a prefix whose name
 * leaves no room for another part). With a prefix P the key equal to P is not listed (start
 * at P + "0", the smallest continuation), as in Deno KV; `{prefix: []}` lists everything.
 */
export function selectorBounds(selector: KvListSelector): ListBounds | null {
  if (selector === null || typeof selector !== "object") {
    throw new TypeError("A list selector must be an object: {prefix}, {prefix, start}, {prefix, end} or {start, end}.");
  }
  const { prefix, start, end } = selector as { prefix?: unknown; start?: unknown; end?: unknown };
  if (prefix === undefined && (start === undefined || end === undefined)) {
    throw new TypeError("A list selector needs 'prefix', or both 'start' and 'end'.");
  }
  const bounds: ListBounds = {};
  if (prefix !== undefined) {
    const p = bound(prefix, "prefix");
    if (p !== "") {
      if (p.length >= MAX_KEY_NAME_LENGTH) return null;
      bounds.prefix = p;
      bounds.start = p + KEY_ALPHABET[0];
    }
  }
  if (start !== undefined) {
    const s = bound(start, "start");
    // All names are ASCII, so comparing JavaScript strings compares their bytes.
    if (bounds.start === undefined || s > bounds.start) bounds.start = s;
  }
  if (end !== undefined) bounds.end = bound(end, "end");
  return bounds;
}
