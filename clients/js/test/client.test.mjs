// The client against a live server, beyond the document's examples: values, TTL, getMany,
// delete, listing details, transactions' buffering, limits and retries, and errors.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { KvConflictError, KvError, createKv, encodeKey } from "../dist/index.js";
import { env, live, liveKv, run, sleep } from "./live.mjs";

describe("get, set, delete", live, () => {
  const { kv } = liveKv();
  const root = `basic-${run()}`;

  test("set returns the entry; get returns the value", async () => {
    for (const [i, value] of [
      { title: "x", nested: { list: [1, "two", null, true] } },
      ["a", 1],
      "a string",
      42.5,
      false,
      { unicode: "日本 😀 é" },
    ].entries()) {
      const key = [root, "value", i];
      assert.deepEqual(await kv.set(key, value), { key, value });
      assert.deepEqual(await kv.get(key), value);
    }
  });

  test("keys with every kind of part", async () => {
    const key = [root, "", "😀", -1.5, 1e21, true, false, "a/b.c-d=e"];
    await kv.set(key, { ok: 1 });
    assert.deepEqual(await kv.get(key), { ok: 1 });
    const listed = await kv.list({ prefix: [root, ""] });
    assert.deepEqual(listed.items, [{ key, value: { ok: 1 } }]);
  });

  test("a missing key is null; deleting it succeeds", async () => {
    assert.equal(await kv.get([root, "missing"]), null);
    assert.equal(await kv.delete([root, "missing"]), undefined);
    await kv.set([root, "gone"], 1);
    await kv.delete([root, "gone"]);
    assert.equal(await kv.get([root, "gone"]), null);
  });

  test("TTL: ttlInSeconds makes an entry expire", async () => {
    const key = [root, "cache", "weather", "london"];
    await kv.set(key, { temp: 12 }, { ttlInSeconds: 1 });
    await kv.set([root, "cache", "weather", "paris"], { temp: 15 });
    assert.deepEqual(await kv.get(key), { temp: 12 });
    await sleep(2100);
    assert.equal(await kv.get(key), null);
    assert.deepEqual(await kv.getMany([key]), [null]);
    const listed = await kv.list({ prefix: [root, "cache", "weather"] });
    assert.deepEqual(listed.items.map((i) => i.key[3]), ["paris"]);
    assert.equal(listed.total, 1);
    await assert.rejects(kv.set(key, 1, { ttlInSeconds: 0 }), RangeError);
  });

  test("values that are not JSON serializable are refused before any request", async () => {
    const { kv: counted, requests } = liveKv();
    const circular = {};
    circular.self = circular;
    for (const value of [circular, 1n, () => 1, undefined, Symbol("s")]) {
      await assert.rejects(counted.set([root, "bad"], value), /^TypeError: Value is not JSON serializable: /);
    }
    assert.deepEqual(requests, []);
  });

  test("a value over the namespace's limit: Redocly's error, computed from the sizes", async () => {
    const value = { blob: "x".repeat(1_300_000) };
    const size = JSON.stringify(value).length;
    await assert.rejects(kv.set([root, "large"], value), (err) => {
      assert.ok(err instanceof KvError);
      assert.equal(err.status, 413);
      assert.equal(
        err.message,
        `Value size (${(size / 1024).toFixed(2)} KB) exceeds the maximum allowed size of 1 MB (1024 KB)`,
      );
      assert.ok(err.message.includes("exceeds the maximum allowed size"));
      return true;
    });
    assert.equal(await kv.get([root, "large"]), null);
  });
});

describe("getMany", live, () => {
  const { kv, requests } = liveKv();
  const root = `many-${run()}`;

  test("entries in input order, null for missing keys, duplicates answered twice", async () => {
    await kv.set([root, "note-001"], { title: "First note" });
    await kv.set([root, "note-002"], { title: "Second note" });
    const keys = [[root, "note-002"], [root, "note-999"], [root, "note-001"], [root, "note-002"]];
    assert.deepEqual(await kv.getMany(keys), [
      { key: keys[0], value: { title: "Second note" } },
      null,
      { key: keys[2], value: { title: "First note" } },
      { key: keys[3], value: { title: "Second note" } },
    ]);
    assert.deepEqual(await kv.getMany([]), []);
  });

  test("more than 1,000 keys are read 1,000 at a time", async () => {
    const keys = Array.from({ length: 2345 }, (_, i) => [root, "bulk", i]);
    await kv.transaction(async (tx) => {
      for (const i of [0, 999, 1000, 2344]) await tx.set(keys[i], { i });
    });
    const sent = requests.length;
    const entries = await kv.getMany(keys);
    assert.deepEqual(requests.slice(sent), Array(3).fill("POST /batch-read"));
    assert.equal(entries.length, keys.length);
    entries.forEach((entry, i) => {
      assert.deepEqual(entry, [0, 999, 1000, 2344].includes(i) ? { key: keys[i], value: { i } } : null);
    });
  });

  test("values too large for one answer (413) are read in halves", async () => {
    // 17 values of about 1 MiB: over the 16 MiB a batch-read answer holds.
    const keys = Array.from({ length: 17 }, (_, i) => [root, "big", i]);
    const blob = "y".repeat(1024 * 1024 - 32);
    for (const key of keys) await kv.set(key, blob);
    const sent = requests.length;
    const entries = await kv.getMany(keys);
    assert.ok(entries.every((entry, i) => entry && entry.value === blob && entry.key === keys[i]));
    assert.deepEqual(requests.slice(sent), Array(3).fill("POST /batch-read")); // 17, then 9 and 8
    for (const key of keys) await kv.delete(key);
  });
});

describe("list", live, () => {
  const { kv } = liveKv();
  const root = `list-${run()}`;

  test("names that are not encodings are skipped", async () => {
    await kv.set([root, "a"], 1);
    // A name inside the prefix's range that no key encodes to, written without the codec.
    const raw = `${encodeKey([root])}zz`;
    const put = await fetch(`${env.baseUrl}/v2/storage/kvs/${env.namespace}/keys/${raw}`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${env.apiKey}`, "Content-Type": "application/json" },
      body: "2",
    });
    assert.ok(put.ok, String(put.status));
    const listed = await kv.list({ prefix: [root] });
    assert.deepEqual(listed.items, [{ key: [root, "a"], value: 1 }]);
  });

  test("the key equal to the prefix is not listed; {prefix: []} lists from the start", async () => {
    await kv.set([root, "p"], "parent");
    await kv.set([root, "p", "c"], "child");
    const listed = await kv.list({ prefix: [root, "p"] });
    assert.deepEqual(listed.items, [{ key: [root, "p", "c"], value: "child" }]);
    const all = await kv.list({ prefix: [] }, { limit: 1 });
    assert.equal(all.items.length, 1);
    assert.ok(all.total >= 3);
  });

  test("options are checked", async () => {
    for (const limit of [0, 1001, 1.5, NaN]) {
      await assert.rejects(kv.list({ prefix: [root] }, { limit }), RangeError);
    }
    assert.equal((await kv.list({ prefix: [root] }, { limit: 1000 })).cursor, null);
  });
});

describe("transactions", live, () => {
  const { kv, requests } = liveKv();
  const root = `tx-${run()}`;

  test("reads see the transaction's own writes; the last write of a key wins", async () => {
    await kv.set([root, "a"], { v: 0 });
    const seen = await kv.transaction(async (tx) => {
      const before = await tx.get([root, "a"]);
      await tx.set([root, "a"], { v: 1 });
      await tx.set([root, "a"], { v: 2 });
      const after = await tx.get([root, "a"]);
      await tx.set([root, "b"], "b");
      await tx.delete([root, "b"]);
      const [a, b, c] = await tx.getMany([[root, "a"], [root, "b"], [root, "c"]]);
      return { before, after, a, b, c };
    });
    assert.deepEqual(seen, {
      before: { v: 0 },
      after: { v: 2 },
      a: { key: [root, "a"], value: { v: 2 } },
      b: null,
      c: null,
    });
    assert.deepEqual(await kv.getMany([[root, "a"], [root, "b"]]), [{ key: [root, "a"], value: { v: 2 } }, null]);
  });

  test("a value read is a copy: changing it changes neither later reads nor the store", async () => {
    await kv.set([root, "copy"], { list: [1] });
    await kv.transaction(async (tx) => {
      const first = await tx.get([root, "copy"]);
      first.list.push(2);
      assert.deepEqual(await tx.get([root, "copy"]), { list: [1] });
      const value = { n: 1 };
      await tx.set([root, "copy2"], value);
      value.n = 99; // set() took the value as it was
    });
    assert.deepEqual(await kv.get([root, "copy2"]), { n: 1 });
  });

  test("a transaction that neither reads nor writes sends nothing; one that only reads checks", async () => {
    let sent = requests.length;
    assert.equal(await kv.transaction(async () => "nothing"), "nothing");
    assert.deepEqual(requests.slice(sent), []);
    sent = requests.length;
    assert.equal(await kv.transaction(async (tx) => tx.get([root, "nothing"])), null);
    assert.deepEqual(requests.slice(sent), ["POST /batch-read", "POST /transaction"]);
  });

  test("TTL inside a transaction", async () => {
    await kv.transaction(async (tx) => {
      await tx.set([root, "ttl"], "brief", { ttlInSeconds: 1 });
      await tx.set([root, "kept"], "kept");
    });
    assert.equal(await kv.get([root, "ttl"]), "brief");
    await sleep(2100);
    assert.deepEqual(await kv.getMany([[root, "ttl"], [root, "kept"]]), [null, { key: [root, "kept"], value: "kept" }]);
  });

  test("a throw inside the callback aborts without writing and is rethrown", async () => {
    const sent = requests.length;
    const failure = new Error("abort");
    await assert.rejects(
      kv.transaction(async (tx) => {
        await tx.set([root, "never"], 1);
        throw failure;
      }),
      (err) => err === failure,
    );
    assert.deepEqual(requests.slice(sent), []);
    assert.equal(await kv.get([root, "never"]), null);
  });

  test("limits: more than 100 distinct keys read, or 1,000 written, throw before any request", async () => {
    const sent = requests.length;
    await assert.rejects(
      kv.transaction(async (tx) => tx.getMany(Array.from({ length: 101 }, (_, i) => [root, "r", i]))),
      /at most 100 distinct keys/,
    );
    await assert.rejects(
      kv.transaction(async (tx) => {
        for (let i = 0; i < 1001; i++) await tx.set([root, "w", i], i);
      }),
      /at most 1000 distinct keys/,
    );
    assert.deepEqual(requests.slice(sent), []);
    // At the limits it works: 100 reads, 1,000 writes (rewriting a key does not count twice).
    await kv.transaction(async (tx) => {
      await tx.getMany(Array.from({ length: 100 }, (_, i) => [root, "r", i]));
      await tx.get([root, "r", 0]);
      for (let i = 0; i < 1000; i++) await tx.set([root, "w", i], i);
      await tx.set([root, "w", 0], "again");
    });
    assert.equal(await kv.get([root, "w", 0]), "again");
    assert.equal((await kv.list({ prefix: [root, "w"] }, { limit: 1 })).total, 1000);
  });

  test("a conflict is retried with the callback run afresh", async () => {
    await kv.set([root, "contended"], 0);
    let runs = 0;
    const result = await kv.transaction(async (tx) => {
      runs += 1;
      const value = await tx.get([root, "contended"]);
      if (runs < 3) await kv.set([root, "contended"], value + 100); // another writer, in between
      await tx.set([root, "contended"], value + 1);
      return value;
    });
    assert.equal(runs, 3);
    assert.equal(result, 200);
    assert.equal(await kv.get([root, "contended"]), 201);
  });

  test("a conflict on every attempt ends in a KvConflictError after 10 attempts", async () => {
    await kv.set([root, "hot"], 0);
    let runs = 0;
    await assert.rejects(
      kv.transaction(async (tx) => {
        runs += 1;
        const value = await tx.get([root, "hot"]);
        await kv.set([root, "hot"], value + 1);
        await tx.set([root, "other"], "never");
      }),
      (err) => {
        assert.ok(err instanceof KvConflictError && err instanceof KvError);
        assert.equal(err.status, 412);
        assert.equal(err.code, "75007");
        assert.equal(err.attempts, 10);
        assert.match(err.message, /^Transaction conflict/);
        return true;
      },
    );
    assert.equal(runs, 10);
    assert.equal(await kv.get([root, "other"]), null);
  });

  test("too large: a value over the limit gives Redocly's error, values over 10 MiB in all the server's", async () => {
    const value = "z".repeat(1_100_000);
    await assert.rejects(
      kv.transaction(async (tx) => {
        await tx.set([root, "small"], 1);
        await tx.set([root, "large"], value);
      }),
      (err) => {
        assert.ok(err instanceof KvError);
        assert.equal(err.status, 413);
        const size = ((value.length + 2) / 1024).toFixed(2);
        assert.equal(err.message, `Value size (${size} KB) exceeds the maximum allowed size of 1 MB (1024 KB)`);
        return true;
      },
    );
    const part = "z".repeat(1_000_000);
    await assert.rejects(
      kv.transaction(async (tx) => {
        for (let i = 0; i < 11; i++) await tx.set([root, "part", i], part);
      }),
      (err) => err instanceof KvError && err.status === 413 && err.code === "75004" && /at most 10485760 bytes/.test(err.detail),
    );
    assert.deepEqual(await kv.getMany([[root, "small"], [root, "part", 0]]), [null, null]);
  });

  test("the transaction object cannot be used after the callback", async () => {
    let saved;
    await kv.transaction(async (tx) => {
      saved = tx;
    });
    await assert.rejects(saved.set([root, "late"], 1), /transaction has ended/);
    await assert.rejects(saved.get([root, "late"]), /transaction has ended/);
  });
});

describe("errors", live, () => {
  test("a non-2xx answer is a KvError with the server's status, code and detail", async () => {
    const wrongKey = createKv({ ...env, apiKey: "not-a-key" });
    await assert.rejects(wrongKey.get(["x"]), (err) => {
      assert.ok(err instanceof KvError);
      assert.equal(err.status, 401);
      assert.equal(err.code, "10009");
      assert.ok(err.detail.length > 0);
      return true;
    });
    const badNamespace = createKv({ ...env, namespace: "not-a-uuid" });
    await assert.rejects(badNamespace.set(["x"], 1), (err) => err instanceof KvError && err.status === 400 && err.code === "10006");
    // A missing namespace is an error, not a missing key.
    const noNamespace = createKv({ ...env, namespace: "00000000-0000-4000-8000-000000000000" });
    for (const call of [() => noNamespace.get(["x"]), () => noNamespace.getMany([["x"]]), () => noNamespace.list({ prefix: ["x"] })]) {
      await assert.rejects(call(), (err) => err instanceof KvError && err.status === 404 && err.code === "10005");
    }
  });

  test("keys are checked before any request", async () => {
    const { kv, requests } = liveKv();
    await assert.rejects(kv.get([]), TypeError);
    await assert.rejects(kv.set([{}], 1), TypeError);
    await assert.rejects(kv.getMany([["ok"], ["x".repeat(300)]]), RangeError);
    assert.deepEqual(requests, []);
  });
});
