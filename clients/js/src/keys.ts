/**
 * Array keys (Redocly's KvKey) as server key names, and back.
 *
 * Each part becomes the order-preserving base64 of its text's UTF-8 bytes followed by a mark
 * for its type (`-` string, `.` number, `/` boolean). Every mark sorts below every character
 * of the alphabet, so the byte order of names is Redocly's part-by-part order: parts compared
 * by their text, a key before the longer keys it is a prefix of, and at equal text
 * string < number < boolean. The same encoding is used by every client of the service.
 */

import type { KvKey, KvKeyPart } from "./types.js";

/** 64 characters in ascending byte order; every one of them is allowed in a key name. */
export const KEY_ALPHABET = "0123456789=ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/** The longest key name the server takes. */
export const MAX_KEY_NAME_LENGTH = 256;

const MARK = { string: "-", number: ".", boolean: "/" } as const;
const MARKS = "-./";
const INDEX = new Map<string, number>([...KEY_ALPHABET].map((c, i) => [c, i]));
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The text a part is compared and encoded by: JavaScript's `String()` of it. */
function partText(part: unknown): string {
  switch (typeof part) {
    case "string":
      if (LONE_SURROGATE.test(part)) {
        throw new TypeError("A key part string must not contain lone surrogates.");
      }
      return part;
    case "number":
      if (!Number.isFinite(part)) {
        throw new TypeError(`A key part number must be finite, not ${String(part)}.`);
      }
      return String(part); // -0 gives "0"
    case "boolean":
      return part ? "true" : "false";
    default:
      throw new TypeError(
        `A key part must be a string, number or boolean, not ${part === null ? "null" : typeof part}.`,
      );
  }
}

/** Big-endian 6-bit groups of `bytes`, the last padded with zero bits; "0" for no bytes. */
function orderedBase64(bytes: Uint8Array): string {
  if (bytes.length === 0) return KEY_ALPHABET[0]!;
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += KEY_ALPHABET[(buffer >> bits) & 63];
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += KEY_ALPHABET[(buffer << (6 - bits)) & 63];
  return out;
}

/** The bytes of an orderedBase64 text (not checked for canonical form), or null. */
function orderedBase64Bytes(text: string): Uint8Array | null {
  if (text === KEY_ALPHABET[0]) return new Uint8Array(0);
  const bytes = new Uint8Array(Math.floor((text.length * 6) / 8));
  let buffer = 0;
  let bits = 0;
  let n = 0;
  for (const char of text) {
    const value = INDEX.get(char);
    if (value === undefined) return null;
    buffer = (buffer << 6) | value;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (n < bytes.length) bytes[n++] = (buffer >> bits) & 255;
    }
    buffer &= (1 << bits) - 1;
  }
  return bytes;
}

function encodePart(part: KvKeyPart): string {
  return orderedBase64(utf8.encode(partText(part))) + MARK[typeof part as keyof typeof MARK];
}

/** The characters a part takes in a key name: ceil(8n/6) for n UTF-8 bytes (at least 1), plus 1. */
export function encodedPartLength(part: KvKeyPart): number {
  const n = utf8.encode(partText(part)).length;
  return Math.max(1, Math.ceil((8 * n) / 6)) + 1;
}

/**
 * The name of a key prefix: its parts' encodings concatenated ("" for no parts). Unlike
 * encodeKey, neither emptiness nor length is refused: a prefix is a listing bound.
 */
export function encodeParts(parts: readonly KvKeyPart[]): string {
  if (!Array.isArray(parts)) throw new TypeError("A key must be an array of key parts.");
  let name = "";
  for (const part of parts) name += encodePart(part);
  return name;
}

/**
 * The server key name of `key`. Throws a TypeError for an empty key, a part that is not a
 * string, finite number or boolean, or a string with lone surrogates; a RangeError for a name
 * over 256 characters.
 */
export function encodeKey(key: KvKey): string {
  if (!Array.isArray(key) || key.length === 0) {
    throw new TypeError("A key must be a non-empty array of key parts.");
  }
  const name = encodeParts(key);
  if (name.length > MAX_KEY_NAME_LENGTH) {
    throw new RangeError(
      `The key takes ${name.length} characters encoded, over the limit of ${MAX_KEY_NAME_LENGTH} ` +
        "(a part of n UTF-8 bytes takes ceil(8n/6) characters, at least 1, plus 1).",
    );
  }
  return name;
}

function decodePart(body: string, mark: string): KvKeyPart | undefined {
  const bytes = orderedBase64Bytes(body);
  if (bytes === null) return undefined;
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
  switch (mark) {
    case MARK.string:
      return text;
    case MARK.number:
      return Number(text);
    default:
      return text === "true";
  }
}

/**
 * The key a name encodes, or null when the name is not such an encoding (a name written by
 * something else). Only canonical encodings are accepted: encodeKey(decodeKey(name)) === name.
 */
export function decodeKey(name: string): KvKey | null {
  if (typeof name !== "string" || name.length === 0 || name.length > MAX_KEY_NAME_LENGTH) {
    return null;
  }
  const key: KvKeyPart[] = [];
  let from = 0;
  for (let i = 0; i < name.length; i++) {
    const mark = name[i]!;
    if (!MARKS.includes(mark)) continue;
    const body = name.slice(from, i);
    if (body.length === 0) return null;
    const part = decodePart(body, mark);
    // Re-encoding rejects non-canonical forms: padding bits set, a number not in String()'s
    // form ("01", "1.0"), a boolean other than "true"/"false", a lone extra character.
    if (part === undefined || !isEncodable(part) || encodePart(part) !== body + mark) return null;
    key.push(part);
    from = i + 1;
  }
  return from === name.length ? key : null;
}

function isEncodable(part: KvKeyPart): boolean {
  return typeof part !== "number" || Number.isFinite(part);
}
