// The array-key codec (no server needed): known encodings, refusals, and a property test that
// the byte order of names is Redocly's part-by-part order and that decoding inverts encoding.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import {
  KEY_ALPHABET,
  MAX_KEY_NAME_LENGTH,
  decodeKey,
  encodeKey,
  encodedPartLength,
  selectorBounds,
} from "../dist/index.js";

const SERVER_KEY = /^[A-Za-z0-9\-_/=.]{1,256}$/;

describe("encodeKey / decodeKey", () => {
  test("the alphabet is 64 distinct characters in ascending byte order, above every mark", () => {
    assert.equal(KEY_ALPHABET.length, 64);
    for (let i = 1; i < 64; i++) assert.ok(KEY_ALPHABET[i - 1] < KEY_ALPHABET[i]);
    for (const mark of "-./") assert.ok(mark < KEY_ALPHABET[0]);
  });

  test("known encodings", () => {
    // 'a' = 0x61 = 011000|01(0000): A[24] A[16]
    assert.equal(encodeKey(["a"]), "NF-");
    assert.equal(encodeKey([""]), "0-");
    // '1' = 0x31 = 001100|01(0000)
    assert.equal(encodeKey([1]), "BF.");
    assert.equal(encodeKey(["1"]), "BF-");
    // 'true' = 74 72 75 65: 011101|000111|001001|110101|011001|01(0000)
    assert.equal(encodeKey([true]), "S79pOF/");
    assert.equal(encodeKey(["a", "", 1, true]), "NF-0-BF.S79pOF/");
  });

  test("numbers are encoded by their String() text", () => {
    for (const [n, text] of [
      [1e21, "1e+21"],
      [1e-7, "1e-7"],
      [0.1, "0.1"],
      [-0, "0"],
      [-42.5, "-42.5"],
      [Number.MAX_SAFE_INTEGER, "9007199254740991"],
    ]) {
      assert.equal(encodeKey([n]), encodeKey([text]).slice(0, -1) + ".");
    }
    assert.deepEqual(decodeKey(encodeKey([-0])), [0]);
    assert.deepEqual(decodeKey(encodeKey([1e21, 1e-7])), [1e21, 1e-7]);
  });

  test("Redocly's documented orderings", () => {
    const sorted = [
      ["notes", "a"],
      ["notes", "apple"],
      ["notes", "b"],
      ["notes", "banana"],
      ["items", "1"],
      ["items", "10"],
      ["items", "2"],
      ["items", "9"],
      ["items", "001"],
      ["items", "002"],
      ["items", "010"],
    ];
    const names = sorted.map(encodeKey);
    const byName = [...names].sort();
    assert.deepEqual(
      byName.map(decodeKey),
      [
        ["items", "001"],
        ["items", "002"],
        ["items", "010"],
        ["items", "1"],
        ["items", "10"],
        ["items", "2"],
        ["items", "9"],
        ["notes", "a"],
        ["notes", "apple"],
        ["notes", "b"],
        ["notes", "banana"],
      ],
    );
  });

  test("a key sorts before the longer keys it is a prefix of; string < number < boolean at equal text", () => {
    const order = [["1", 0], [1], [1, 0], ["a"], ["a", ""], ["a", "b"], ["ab"], ["true"], [true], [true, "x"]];
    const names = order.map(encodeKey);
    assert.deepEqual([...names].sort(), names);
  });

  test("refuses what is not a key", () => {
    assert.throws(() => encodeKey([]), TypeError);
    assert.throws(() => encodeKey("a"), TypeError);
    assert.throws(() => encodeKey([null]), TypeError);
    assert.throws(() => encodeKey([undefined]), TypeError);
    assert.throws(() => encodeKey([{}]), TypeError);
    assert.throws(() => encodeKey([1n]), TypeError);
    assert.throws(() => encodeKey([NaN]), /finite/);
    assert.throws(() => encodeKey([Infinity]), /finite/);
    assert.throws(() => encodeKey(["\uD800"]), /lone surrogates/);
    assert.throws(() => encodeKey(["a\uDC00b"]), /lone surrogates/);
    assert.doesNotThrow(() => encodeKey(["\uD83D\uDE00"]));
  });

  test("the length budget: ceil(8n/6) characters (at least 1) plus 1 per part, 256 in all", () => {
    assert.equal(encodeKey(["x".repeat(191)]).length, 256);
    assert.throws(() => encodeKey(["x".repeat(192)]), (err) => {
      assert.ok(err instanceof RangeError);
      assert.match(err.message, /257 characters encoded, over the limit of 256/);
      return true;
    });
    for (const part of ["", "a", "ab", "abc", "é", "😀", 12345, -0.5, true, false, "x".repeat(100)]) {
      assert.equal(encodedPartLength(part), encodeKey([part]).length);
    }
    assert.equal(encodedPartLength("😀"), Math.ceil((8 * 4) / 6) + 1);
  });

  test("names that are not canonical encodings decode to null", () => {
    for (const name of [
      "",
      "abc", // no mark
      "NF", // no final mark
      "-", // empty body
      "NF--", // empty second body
      "1-", // one character other than "0"
      "NG-", // padding bits set ('a' is NF)
      "C0BF.", // number text "01"
      "NF/", // boolean text "a"
      "NF-N", // trailing body without its mark
      "w0-", // 0xF8: not UTF-8
      "_x-",
      "N!-",
      "x".repeat(MAX_KEY_NAME_LENGTH + 1),
    ]) {
      assert.equal(decodeKey(name), null, name);
    }
  });
});

describe("selectorBounds", () => {
  const P = encodeKey(["notes", "alice"]);
  test("{prefix}: the key equal to the prefix is not listed", () => {
    assert.deepEqual(selectorBounds({ prefix: ["notes", "alice"] }), { prefix: P, start: P + "0" });
    assert.deepEqual(selectorBounds({ prefix: [] }), {});
  });
  test("{prefix, start}: start = max(P + '0', encode(start))", () => {
    const S = encodeKey(["notes", "alice", "note-002"]);
    assert.deepEqual(selectorBounds({ prefix: ["notes", "alice"], start: ["notes", "alice", "note-002"] }), {
      prefix: P,
      start: S,
    });
    assert.deepEqual(selectorBounds({ prefix: ["notes", "alice"], start: ["a"] }), { prefix: P, start: P + "0" });
  });
  test("{prefix, end} and {start, end}", () => {
    const E = encodeKey(["notes", "alice", "note-003"]);
    assert.deepEqual(selectorBounds({ prefix: ["notes", "alice"], end: ["notes", "alice", "note-003"] }), {
      prefix: P,
      start: P + "0",
      end: E,
    });
    assert.deepEqual(selectorBounds({ start: ["logs", "2024-01-15"], end: ["logs", "2024-01-16"] }), {
      start: encodeKey(["logs", "2024-01-15"]),
      end: encodeKey(["logs", "2024-01-16"]),
    });
  });
  test("refusals", () => {
    assert.throws(() => selectorBounds({}), TypeError);
    assert.throws(() => selectorBounds({ start: ["a"] }), TypeError);
    assert.throws(() => selectorBounds({ prefix: "notes" }), TypeError);
  });
});

// ---- property test -------------------------------------------------------------------------

/** mulberry32: a small seeded generator, so a failure reproduces from its seed. */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CHAR_POOLS = [
  ["a", "b", "c"], // few letters: shared prefixes and equal parts are common
  ["0", "1", "2", "9", "e", "+", "-", "."], // the characters of numbers' texts
  ["t", "r", "u", "e", "f", "a", "l", "s"], // ... and of booleans'
  ["\u0000", "\u0001", "\u001f", " ", "~", "\u007f"],
  ["é", "ß", "\u00ff", "\u0100", "\u07ff", "\u0800"], // 2- and 3-byte UTF-8 boundaries
  ["日", "本", "\ud7ff", "\ue000", "\uff61", "\uffff"], // the BMP up to U+FFFF
  ["😀", "👍🏽", "\u{10000}", "\u{10ffff}", "🇫🇷"], // astral: surrogate pairs in JavaScript
  ["e\u0301", "\u0301", "\u200d"], // combining marks, zero-width joiner
];

function randomString(next) {
  const lengths = [0, 0, 1, 1, 2, 3, 5, 8, 13, 30];
  const length = lengths[Math.floor(next() * lengths.length)];
  const pools = CHAR_POOLS.filter(() => next() < 0.4);
  const usable = pools.length ? pools : [CHAR_POOLS[0]];
  let text = "";
  for (let i = 0; i < length; i++) {
    const pool = usable[Math.floor(next() * usable.length)];
    text += pool[Math.floor(next() * pool.length)];
  }
  return text;
}

function randomNumber(next) {
  const kinds = [
    () => Math.floor(next() * 20), // small integers, some equal to strings' texts
    () => -Math.floor(next() * 1000),
    () => Math.round((next() - 0.5) * 1e6) / 1000, // decimals
    () => (next() - 0.5) * 10 ** Math.floor(next() * 40 - 20), // tiny and large: exponents
    () => [1e21, 1e-7, 0.1, 123456789012345680000, Number.MAX_SAFE_INTEGER, Number.MIN_VALUE,
      Number.MAX_VALUE, -1e21, 2 ** 53 + 2][Math.floor(next() * 9)],
  ];
  const n = kinds[Math.floor(next() * kinds.length)]();
  return Object.is(n, -0) ? 0 : n; // -0 encodes as 0 (tested above), so it cannot round-trip
}

function randomPart(next) {
  const r = next();
  if (r < 0.55) return randomString(next);
  if (r < 0.85) return randomNumber(next);
  return next() < 0.5;
}

/** Random keys, many derived from earlier ones (a prefix of one, extended), within 256 characters. */
function randomKeys(next, count) {
  const keys = [];
  while (keys.length < count) {
    let key;
    if (keys.length > 0 && next() < 0.6) {
      const base = keys[Math.floor(next() * keys.length)];
      key = base.slice(0, 1 + Math.floor(next() * base.length));
      if (next() < 0.7) key.push(randomPart(next));
      if (next() < 0.3 && key.length > 0) {
        // the same text under another type
        const last = key[key.length - 1];
        const text = String(last);
        key[key.length - 1] =
          typeof last === "string" ? (Number.isFinite(Number(text)) && String(Number(text)) === text ? Number(text) : text) : text;
      }
    } else {
      key = Array.from({ length: 1 + Math.floor(next() * 4) }, () => randomPart(next));
    }
    try {
      encodeKey(key);
    } catch (err) {
      if (err instanceof RangeError) continue; // over 256 characters: the budget test covers it
      throw err;
    }
    keys.push(key);
  }
  return keys;
}

/** Code point order (the order of UTF-8 bytes). */
function compareText(a, b) {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

const TYPE_RANK = { string: 0, number: 1, boolean: 2 };

/** Redocly's order: part by part as strings, then shorter first, at equal text string < number < boolean. */
function compareKeys(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const byText = compareText(String(a[i]), String(b[i]));
    if (byText !== 0) return byText;
    const byType = TYPE_RANK[typeof a[i]] - TYPE_RANK[typeof b[i]];
    if (byType !== 0) return byType;
  }
  return a.length - b.length;
}

function compareBytes(a, b) {
  // Names are ASCII: JavaScript's string comparison is their byte order.
  return a < b ? -1 : a > b ? 1 : 0;
}

describe("property: byte order of names = Redocly's order, and decode inverts encode", () => {
  for (const seed of [1, 2, 3, 20240615]) {
    test(`seed ${seed}: 4000 keys`, () => {
      const next = random(seed);
      const keys = randomKeys(next, 4000);
      const names = keys.map(encodeKey);
      for (let i = 0; i < keys.length; i++) {
        assert.match(names[i], SERVER_KEY);
        assert.notEqual(names[i][0], "_"); // the server reserves names starting with '_'
        assert.deepStrictEqual(decodeKey(names[i]), keys[i], `round trip of ${JSON.stringify(keys[i])}`);
      }
      // Random pairs, then every neighbour in the sorted order.
      for (let i = 0; i < 20000; i++) {
        const a = Math.floor(next() * keys.length);
        const b = Math.floor(next() * keys.length);
        assert.equal(
          Math.sign(compareBytes(names[a], names[b])),
          Math.sign(compareKeys(keys[a], keys[b])),
          `${JSON.stringify(keys[a])} vs ${JSON.stringify(keys[b])}`,
        );
      }
      const order = keys.map((_, i) => i);
      const byKey = [...order].sort((a, b) => compareKeys(keys[a], keys[b]) || a - b);
      const byName = [...order].sort((a, b) => compareBytes(names[a], names[b]) || a - b);
      assert.deepEqual(byName, byKey);
    });
  }

  test("parts are compared by code point (UTF-8 byte order), not by UTF-16 code unit", () => {
    // JavaScript's `<` puts "😀" (U+1F600, code units D83D DE00) before U+FF61; code points,
    // UTF-8 bytes and so the names put U+FF61 first.
    assert.ok("😀" < "\uff61");
    assert.ok(encodeKey(["\uff61"]) < encodeKey(["😀"]));
  });
});

describe("the golden vectors every client shares (clients/keys-golden.json)", () => {
  const golden = JSON.parse(
    readFileSync(new URL("../../keys-golden.json", import.meta.url), "utf8"),
  );
  test("each key encodes to its name, and the name decodes to a key of that name", () => {
    for (const { key, name } of golden.keys) {
      assert.equal(encodeKey(key), name, JSON.stringify(key));
      assert.equal(encodeKey(decodeKey(name)), name);
    }
  });
  test("the refused keys are refused", () => {
    for (const key of golden.refused_keys) assert.throws(() => encodeKey(key), JSON.stringify(key));
  });
  test("names that are no key's encoding decode to null", () => {
    for (const name of golden.not_names_of_keys) assert.equal(decodeKey(name), null, name);
  });
});
