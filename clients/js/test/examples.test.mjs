// The examples of Redocly's KV storage reference, their logic unchanged, against a live server:
// notes per user (prefix listing, pagination, reverse order, ranges), the balance transfer,
// the view counter and the secondary index. Each handler below is the document's, with
// `context` reduced to what it uses (the caller's id, the parameters) and its answer returned
// as {status, body}.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { before, describe, test } from "node:test";

import { live, liveKv, run } from "./live.mjs";

const reply = (status, body) => ({ status, body });

// ---- @api/notes.post.ts, @api/notes/[id].get.ts, @api/notes.get.ts (three forms), [id].delete.ts

async function createNote(kv, ownerId, body, id = randomUUID()) {
  if (!ownerId) return reply(401, { error: "Authentication required" });
  const note = { title: body.title, content: body.content, ownerId, createdAt: new Date().toISOString() };
  const entry = await kv.set(["notes", ownerId, id], note);
  if (!entry) return reply(500, { error: "Failed to save note" });
  return reply(201, { id, note });
}

async function getNote(kv, ownerId, id) {
  if (!ownerId) return reply(401, { error: "Authentication required" });
  const note = await kv.get(["notes", ownerId, id]);
  if (!note) return reply(404, { error: "Note not found" });
  return reply(200, { note });
}

async function listAllNotes(kv, ownerId) {
  if (!ownerId) return reply(401, { error: "Authentication required" });
  const result = await kv.list({ prefix: ["notes", ownerId] });
  return reply(200, {
    notes: result.items.map((item) => ({ id: item.key[2], ...item.value })),
    total: result.total,
  });
}

async function listNotesPage(kv, ownerId, { limit = "10", cursor } = {}) {
  if (!ownerId) return reply(401, { error: "Authentication required" });
  const result = await kv.list(
    { prefix: ["notes", ownerId] },
    { limit: Math.min(parseInt(limit, 10), 100), cursor: typeof cursor === "string" ? cursor : undefined },
  );
  return reply(200, {
    notes: result.items.map((item) => item.value),
    total: result.total,
    nextCursor: result.cursor,
    hasMore: result.cursor !== null,
  });
}

async function listNotesReversed(kv, ownerId) {
  if (!ownerId) return reply(401, { error: "Authentication required" });
  const result = await kv.list({ prefix: ["notes", ownerId] }, { limit: 10, reverse: true });
  return reply(200, { notes: result.items });
}

async function deleteNote(kv, ownerId, id) {
  if (!ownerId) return reply(401, { error: "Authentication required" });
  if (!id) return reply(400, { error: "Note ID required" });
  const note = await kv.get(["notes", ownerId, id]);
  if (!note) return reply(404, { error: "Note not found" });
  await kv.delete(["notes", ownerId, id]);
  return reply(200, { message: `Note '${id}' deleted` });
}

describe("notes per user", live, () => {
  const { kv } = liveKv();
  const alice = `alice-${run()}@example.com`;
  const bob = `bob-${run()}@example.com`;
  const ids = Array.from({ length: 25 }, (_, i) => `note-${String(i + 1).padStart(3, "0")}`);

  before(async () => {
    // Out of order, so that the listing's order is the keys', not the writes'.
    for (const id of [...ids].reverse()) {
      const created = await createNote(kv, alice, { title: `Title ${id}`, content: "…" }, id);
      assert.equal(created.status, 201);
    }
    await createNote(kv, bob, { title: "Bob's", content: "private" }, "note-001");
    // A value at the prefix itself is not one of alice's notes.
    await kv.set(["notes", alice], { not: "a note" });
  });

  test("create and get; a note is only found under its owner", async () => {
    const created = await createNote(kv, alice, { title: "Fresh", content: "Note content here" });
    assert.equal(created.status, 201);
    const found = await getNote(kv, alice, created.body.id);
    assert.deepEqual(found, reply(200, { note: created.body.note }));
    assert.equal((await getNote(kv, bob, created.body.id)).status, 404);
    assert.equal((await getNote(kv, undefined, created.body.id)).status, 401);
    await kv.delete(["notes", alice, created.body.id]);
  });

  test("list by prefix: alice's notes only, in key order, with their total", async () => {
    const { status, body } = await listAllNotes(kv, alice);
    assert.equal(status, 200);
    assert.deepEqual(body.notes.map((n) => n.id), ids);
    assert.equal(body.total, 25);
    assert.ok(body.notes.every((n) => n.ownerId === alice && n.title === `Title ${n.id}`));
  });

  test("pagination: limit and cursor until the cursor is null", async () => {
    const pages = [];
    let cursor;
    do {
      const { body } = await listNotesPage(kv, alice, { limit: "10", cursor });
      pages.push(body);
      cursor = body.nextCursor ?? undefined;
    } while (cursor !== undefined);
    assert.deepEqual(pages.map((p) => p.notes.length), [10, 10, 5]);
    assert.deepEqual(pages.map((p) => p.total), [25, 15, 5]); // after the cursor, this page included
    assert.deepEqual(pages.map((p) => p.hasMore), [true, true, false]);
    assert.deepEqual(pages.flatMap((p) => p.notes.map((n) => n.title)), ids.map((id) => `Title ${id}`));
    // The page size is capped at 100, as in the document's handler.
    const { body } = await listNotesPage(kv, alice, { limit: "500" });
    assert.equal(body.notes.length, 25);
    assert.equal(body.nextCursor, null);
  });

  test("reverse order", async () => {
    const { body } = await listNotesReversed(kv, alice);
    assert.deepEqual(body.notes.map((item) => item.key), ids.slice(-10).reverse().map((id) => ["notes", alice, id]));
    const rest = await kv.list({ prefix: ["notes", alice] }, { limit: 10, reverse: true, cursor: undefined });
    const next = await kv.list({ prefix: ["notes", alice] }, { limit: 10, reverse: true, cursor: rest.cursor });
    assert.deepEqual(next.items.map((item) => item.key[2]), ids.slice(5, 15).reverse());
    assert.equal(next.total, 15);
  });

  test("ranges: start inclusive, end exclusive, as in the document's three examples", async () => {
    const [, , , fourth] = ids;
    const example1 = await kv.list({ prefix: ["notes", alice], start: ["notes", alice, "note-002"] });
    assert.deepEqual(example1.items.map((i) => i.key[2]), ids.slice(1));
    assert.equal(example1.total, 24);
    const example2 = await kv.list({ prefix: ["notes", alice], end: ["notes", alice, "note-003"] });
    assert.deepEqual(example2.items.map((i) => i.key[2]), ["note-001", "note-002"]);
    assert.equal(example2.total, 2);
    const example3 = await kv.list({ start: ["notes", alice, "note-002"], end: ["notes", alice, fourth] });
    assert.deepEqual(example3.items.map((i) => i.key[2]), ["note-002", "note-003"]);
  });

  test("delete: 404 for a missing note, then the note is gone", async () => {
    const created = await createNote(kv, alice, { title: "Doomed", content: "" });
    assert.deepEqual(await deleteNote(kv, alice, created.body.id), reply(200, { message: `Note '${created.body.id}' deleted` }));
    assert.equal((await getNote(kv, alice, created.body.id)).status, 404);
    assert.equal((await deleteNote(kv, alice, created.body.id)).status, 404);
  });
});

// ---- hierarchical data and date ranges (kv.list)

describe("hierarchical and date-range listings", live, () => {
  const { kv } = liveKv();
  const org = `acme-${run()}`;
  const logs = `logs-${run()}`;

  async function members(orgId, department) {
    const prefix = department ? ["orgs", orgId, department] : ["orgs", orgId];
    const result = await kv.list({ prefix });
    return {
      members: result.items.map((item) => ({ name: item.key[item.key.length - 1], department: item.key[2], ...item.value })),
      total: result.total,
    };
  }

  async function logsBetween(from, to) {
    const selector = { prefix: [logs] };
    if (from) selector.start = [logs, from];
    if (to) selector.end = [logs, to];
    const result = await kv.list(selector);
    return { logs: result.items.map((item) => ({ timestamp: item.key[1], id: item.key[2], ...item.value })) };
  }

  before(async () => {
    await kv.set(["orgs", org, "engineering", "alice"], { role: "Engineer" });
    await kv.set(["orgs", org, "engineering", "bob"], { role: "Senior Engineer" });
    await kv.set(["orgs", org, "sales", "charlie"], { role: "Sales Rep" });
    await kv.set(["orgs", `${org}x`, "sales", "dave"], { role: "Elsewhere" });
    for (const [at, id] of [
      ["2024-01-14T23:59:59Z", "a0"],
      ["2024-01-15T10:30:00Z", "abc123"],
      ["2024-01-15T14:45:00Z", "def456"],
      ["2024-01-16T00:00:00Z", "z9"],
    ]) {
      await kv.set([logs, at, id], { level: "info" });
    }
  });

  test("members of an organization, and of one department", async () => {
    assert.deepEqual(await members(org), {
      members: [
        { name: "alice", department: "engineering", role: "Engineer" },
        { name: "bob", department: "engineering", role: "Senior Engineer" },
        { name: "charlie", department: "sales", role: "Sales Rep" },
      ],
      total: 3,
    });
    assert.deepEqual((await members(org, "engineering")).members.map((m) => m.name), ["alice", "bob"]);
  });

  test("logs of one day: prefix, start and end together", async () => {
    const { logs: found } = await logsBetween("2024-01-15T00:00:00Z", "2024-01-16T00:00:00Z");
    assert.deepEqual(found, [
      { timestamp: "2024-01-15T10:30:00Z", id: "abc123", level: "info" },
      { timestamp: "2024-01-15T14:45:00Z", id: "def456", level: "info" },
    ]);
    assert.equal((await logsBetween()).logs.length, 4);
    assert.deepEqual((await logsBetween("2024-01-15T14:00:00Z")).logs.map((l) => l.id), ["def456", "z9"]);
  });
});

// ---- @api/transfer.post.ts

async function transfer(kv, callerId, { from, to, amount }) {
  if (!callerId) return reply(401, { error: "Authentication required" });
  if (!from || !to || typeof amount !== "number" || amount <= 0) {
    return reply(400, { error: "Invalid transfer parameters" });
  }
  try {
    const result = await kv.transaction(async (tx) => {
      const fromAccount = await tx.get(["accounts", from]);
      const toAccount = await tx.get(["accounts", to]);
      if (!fromAccount || !toAccount) throw new Error("One or both accounts not found");
      // Prevent BOLA: users can only transfer from accounts they own.
      if (fromAccount.ownerId !== callerId) throw new Error("Not authorized to transfer from this account");
      if (fromAccount.balance < amount) throw new Error("Insufficient balance");
      await tx.set(["accounts", from], { ...fromAccount, balance: fromAccount.balance - amount });
      await tx.set(["accounts", to], { ...toAccount, balance: toAccount.balance + amount });
      return {
        success: true,
        from: { name: fromAccount.name, newBalance: fromAccount.balance - amount },
        to: { name: toAccount.name, newBalance: toAccount.balance + amount },
        amount,
      };
    });
    return reply(200, result);
  } catch (error) {
    if (error instanceof Error && error.message === "Not authorized to transfer from this account") {
      return reply(403, { error: error.message });
    }
    return reply(400, { error: error instanceof Error ? error.message : "Transaction failed" });
  }
}

describe("balance transfer", live, () => {
  const { kv } = liveKv();
  const id = run();
  const alice = `alice-${id}`;
  const bob = `bob-${id}`;
  const balances = async () => [(await kv.get(["accounts", alice])).balance, (await kv.get(["accounts", bob])).balance];

  before(async () => {
    await kv.set(["accounts", alice], { ownerId: "alice@example.com", balance: 100, name: "Alice" });
    await kv.set(["accounts", bob], { ownerId: "bob@example.com", balance: 50, name: "Bob" });
  });

  test("the owner transfers; both balances change together", async () => {
    assert.deepEqual(await transfer(kv, "alice@example.com", { from: alice, to: bob, amount: 30 }), reply(200, {
      success: true,
      from: { name: "Alice", newBalance: 70 },
      to: { name: "Bob", newBalance: 80 },
      amount: 30,
    }));
    assert.deepEqual(await balances(), [70, 80]);
  });

  test("BOLA: transferring from another's account is refused and changes nothing", async () => {
    const before = await balances();
    assert.deepEqual(
      await transfer(kv, "bob@example.com", { from: alice, to: bob, amount: 10 }),
      reply(403, { error: "Not authorized to transfer from this account" }),
    );
    assert.deepEqual(await balances(), before);
  });

  test("insufficient balance, a missing account, bad parameters: refused, nothing changed", async () => {
    const before = await balances();
    assert.deepEqual(
      await transfer(kv, "bob@example.com", { from: bob, to: alice, amount: 1000 }),
      reply(400, { error: "Insufficient balance" }),
    );
    assert.deepEqual(
      await transfer(kv, "bob@example.com", { from: bob, to: `nobody-${id}`, amount: 1 }),
      reply(400, { error: "One or both accounts not found" }),
    );
    assert.deepEqual(await transfer(kv, "bob@example.com", { from: bob, to: alice, amount: -5 }), reply(400, { error: "Invalid transfer parameters" }));
    assert.equal((await transfer(kv, undefined, { from: bob, to: alice, amount: 1 })).status, 401);
    assert.deepEqual(await balances(), before);
  });

  test("concurrent transfers both ways keep the sum and never overdraw", async () => {
    const [a, b] = await balances();
    const outcomes = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        i % 2
          ? transfer(kv, "alice@example.com", { from: alice, to: bob, amount: 7 })
          : transfer(kv, "bob@example.com", { from: bob, to: alice, amount: 5 }),
      ),
    );
    assert.ok(outcomes.every((o) => o.status === 200), JSON.stringify(outcomes.filter((o) => o.status !== 200)));
    assert.deepEqual(await balances(), [a - 6 * 7 + 6 * 5, b + 6 * 7 - 6 * 5]);
  });
});

// ---- @api/articles/[id]/views.post.ts

async function countView(kv, id) {
  const newCount = await kv.transaction(async (tx) => {
    const current = await tx.get(["views", id]);
    const count = (current?.count || 0) + 1;
    await tx.set(["views", id], { count });
    return count;
  });
  return reply(200, { views: newCount });
}

describe("view counter", live, () => {
  const { kv } = liveKv();

  test("N concurrent increments through transactions count exactly N", async () => {
    const article = `article-${run()}`;
    const N = 12;
    const answers = await Promise.all(Array.from({ length: N }, () => countView(kv, article)));
    assert.deepEqual(answers.map((a) => a.body.views).sort((x, y) => x - y), Array.from({ length: N }, (_, i) => i + 1));
    assert.deepEqual(await kv.get(["views", article]), { count: N });
    assert.deepEqual((await countView(kv, article)).body, { views: N + 1 });
  });
});

// ---- @api/users.post.ts and @api/users/by-email/[email].get.ts

async function createUser(kv, body, { failAfterWrites = false } = {}) {
  const id = randomUUID();
  const user = { id, email: body.email, name: body.name };
  await kv.transaction(async (tx) => {
    await tx.set(["users", id], user);
    await tx.set(["usersByEmail", body.email], { id });
    if (failAfterWrites) throw new Error("Simulated failure after both writes");
  });
  return reply(201, { user });
}

async function userByEmail(kv, email) {
  const ref = await kv.get(["usersByEmail", email]);
  if (!ref) return reply(404, { error: "User not found" });
  const user = await kv.get(["users", ref.id]);
  return reply(200, { user });
}

describe("secondary index", live, () => {
  const { kv, requests } = liveKv();

  test("the user and its email index are created together", async () => {
    const email = `john-${run()}@example.com`;
    const { status, body } = await createUser(kv, { email, name: "John Doe" });
    assert.equal(status, 201);
    assert.deepEqual(await kv.get(["users", body.user.id]), body.user);
    assert.deepEqual(await kv.get(["usersByEmail", email]), { id: body.user.id });
    assert.deepEqual(await userByEmail(kv, email), reply(200, { user: body.user }));
    assert.equal((await userByEmail(kv, `nobody-${run()}@example.com`)).status, 404);
  });

  test("a transaction that fails writes neither key", async () => {
    const email = `jane-${run()}@example.com`;
    const sent = requests.length;
    await assert.rejects(createUser(kv, { email, name: "Jane" }, { failAfterWrites: true }), /Simulated failure/);
    assert.deepEqual(requests.slice(sent), []); // nothing was sent
    assert.equal(await kv.get(["usersByEmail", email]), null);
    const users = await kv.list({ prefix: ["users"] }, { limit: 1000 });
    assert.ok(users.items.every((item) => item.value.email !== email));
  });
});
