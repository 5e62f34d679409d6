"""Redocly's KV storage examples (the notes API, the transfer, the secondary index, the view
counter) in Python with the same logic, once for `Kv` and once for `AsyncKv`. Each handler
answers (status, body) as the example's API function does."""

import uuid
from datetime import UTC, datetime
from typing import Any

from kvs_client import AsyncKv, AsyncTransaction, Kv, Transaction

Answer = tuple[int, dict[str, Any]]


def _now() -> str:
    return datetime.now(UTC).isoformat()


# -- the notes API (kv.set, kv.get, kv.list, kv.getMany, kv.delete) ------------------------


def create_note(kv: Kv, owner_id: str | None, body: dict, note_id: str | None = None) -> Answer:
    if not owner_id:
        return 401, {"error": "Authentication required"}
    note_id = note_id or str(uuid.uuid4())
    note = {
        "title": body["title"],
        "content": body["content"],
        "ownerId": owner_id,
        "createdAt": _now(),
    }
    entry = kv.set(["notes", owner_id, note_id], note)
    if not entry:
        return 500, {"error": "Failed to save note"}
    return 201, {"id": note_id, "note": note}


def get_note(kv: Kv, owner_id: str, note_id: str) -> Answer:
    note = kv.get(["notes", owner_id, note_id])
    if not note:
        return 404, {"error": "Note not found"}
    return 200, {"note": note}


def list_notes(kv: Kv, owner_id: str) -> Answer:
    result = kv.list(prefix=["notes", owner_id])
    notes = [{"id": item.key[2], **item.value} for item in result.items]
    return 200, {"notes": notes, "total": result.total}


def list_notes_page(kv: Kv, owner_id: str, limit: str = "10", cursor: str | None = None) -> Answer:
    result = kv.list(prefix=["notes", owner_id], limit=min(int(limit), 100), cursor=cursor)
    return 200, {
        "notes": [item.value for item in result.items],
        "total": result.total,
        "nextCursor": result.cursor,
        "hasMore": result.cursor is not None,
    }


def list_notes_reversed(kv: Kv, owner_id: str) -> Answer:
    result = kv.list(prefix=["notes", owner_id], limit=10, reverse=True)
    return 200, {"notes": result.items}


def members(kv: Kv, org_id: str, department: str | None = None) -> Answer:
    prefix = ["orgs", org_id, department] if department else ["orgs", org_id]
    result = kv.list(prefix=prefix)
    found = [
        {"name": item.key[-1], "department": item.key[2], **item.value} for item in result.items
    ]
    return 200, {"members": found, "total": result.total}


def logs(kv: Kv, start: str | None = None, end: str | None = None) -> Answer:
    selector: dict[str, Any] = {"prefix": ["logs"]}
    if start:
        selector["start"] = ["logs", start]
    if end:
        selector["end"] = ["logs", end]
    result = kv.list(**selector)
    found = [{"timestamp": item.key[1], "id": item.key[2], **item.value} for item in result.items]
    return 200, {"logs": found}


def notes_batch(kv: Kv, ids: Any) -> Answer:
    if not ids or not isinstance(ids, list):
        return 400, {"error": "ids array is required"}
    notes = kv.get_many([["notes", i] for i in ids])
    result = [
        {"id": i, "found": note is not None, "note": (note.value if note else None) or None}
        for i, note in zip(ids, notes, strict=True)
    ]
    return 200, {"notes": result}


def delete_note(kv: Kv, owner_id: str, note_id: str) -> Answer:
    note = kv.get(["notes", owner_id, note_id])
    if not note:
        return 404, {"error": "Note not found"}
    kv.delete(["notes", owner_id, note_id])
    return 200, {"message": f"Note '{note_id}' deleted"}


def weather(kv: Kv, city: str, fetch) -> Answer:
    cached = kv.get(["cache", "weather", city])
    if cached:
        return 200, {"source": "cache", "data": cached}
    data = fetch(city)
    kv.set(["cache", "weather", city], data, ttl_in_seconds=1800)
    return 200, {"source": "api", "data": data}


# -- kv.transaction: the transfer, the secondary index, the counter -----------------------

NOT_AUTHORIZED = "Not authorized to transfer from this account"


def _refused(err: Exception) -> Answer:
    if str(err) == NOT_AUTHORIZED:
        return 403, {"error": str(err)}
    return 400, {"error": str(err) or "Transaction failed"}


def transfer(kv: Kv, caller_id: str | None, body: dict) -> Answer:
    source, target, amount = body.get("from"), body.get("to"), body.get("amount")
    if not caller_id:
        return 401, {"error": "Authentication required"}
    if not source or not target or not isinstance(amount, int | float) or amount <= 0:
        return 400, {"error": "Invalid transfer parameters"}

    def move(tx: Transaction) -> dict:
        from_account = tx.get(["accounts", source])
        to_account = tx.get(["accounts", target])
        if not from_account or not to_account:
            raise RuntimeError("One or both accounts not found")
        # Prevent BOLA: users can only transfer from accounts they own.
        if from_account["ownerId"] != caller_id:
            raise RuntimeError(NOT_AUTHORIZED)
        if from_account["balance"] < amount:
            raise RuntimeError("Insufficient balance")
        tx.set(["accounts", source], {**from_account, "balance": from_account["balance"] - amount})
        tx.set(["accounts", target], {**to_account, "balance": to_account["balance"] + amount})
        return {
            "success": True,
            "from": {"name": from_account["name"], "newBalance": from_account["balance"] - amount},
            "to": {"name": to_account["name"], "newBalance": to_account["balance"] + amount},
            "amount": amount,
        }

    try:
        return 200, kv.transaction(move)
    except Exception as err:
        return _refused(err)


def create_user(kv: Kv, body: dict, fail_after_writes: bool = False) -> Answer:
    user_id = str(uuid.uuid4())
    user = {"id": user_id, "email": body["email"], "name": body["name"]}

    def index(tx: Transaction) -> None:
        tx.set(["users", user_id], user)
        tx.set(["usersByEmail", body["email"]], {"id": user_id})
        if fail_after_writes:
            raise RuntimeError("failed after both writes")

    kv.transaction(index)
    return 201, {"user": user}


def user_by_email(kv: Kv, email: str) -> Answer:
    ref = kv.get(["usersByEmail", email])
    if not ref:
        return 404, {"error": "User not found"}
    return 200, {"user": kv.get(["users", ref["id"]])}


def count_view(kv: Kv, article_id: str) -> Answer:
    def increment(tx: Transaction) -> int:
        current = tx.get(["views", article_id])
        count = ((current or {}).get("count") or 0) + 1
        tx.set(["views", article_id], {"count": count})
        return count

    return 200, {"views": kv.transaction(increment)}


# -- the same, with AsyncKv -----------------------------------------------------------------


async def create_note_async(
    kv: AsyncKv, owner_id: str | None, body: dict, note_id: str | None = None
) -> Answer:
    if not owner_id:
        return 401, {"error": "Authentication required"}
    note_id = note_id or str(uuid.uuid4())
    note = {
        "title": body["title"],
        "content": body["content"],
        "ownerId": owner_id,
        "createdAt": _now(),
    }
    entry = await kv.set(["notes", owner_id, note_id], note)
    if not entry:
        return 500, {"error": "Failed to save note"}
    return 201, {"id": note_id, "note": note}


async def get_note_async(kv: AsyncKv, owner_id: str, note_id: str) -> Answer:
    note = await kv.get(["notes", owner_id, note_id])
    if not note:
        return 404, {"error": "Note not found"}
    return 200, {"note": note}


async def list_notes_async(kv: AsyncKv, owner_id: str) -> Answer:
    result = await kv.list(prefix=["notes", owner_id])
    notes = [{"id": item.key[2], **item.value} for item in result.items]
    return 200, {"notes": notes, "total": result.total}


async def list_notes_page_async(
    kv: AsyncKv, owner_id: str, limit: str = "10", cursor: str | None = None
) -> Answer:
    result = await kv.list(prefix=["notes", owner_id], limit=min(int(limit), 100), cursor=cursor)
    return 200, {
        "notes": [item.value for item in result.items],
        "total": result.total,
        "nextCursor": result.cursor,
        "hasMore": result.cursor is not None,
    }


async def list_notes_reversed_async(kv: AsyncKv, owner_id: str) -> Answer:
    result = await kv.list(prefix=["notes", owner_id], limit=10, reverse=True)
    return 200, {"notes": result.items}


async def notes_batch_async(kv: AsyncKv, ids: Any) -> Answer:
    if not ids or not isinstance(ids, list):
        return 400, {"error": "ids array is required"}
    notes = await kv.get_many([["notes", i] for i in ids])
    result = [
        {"id": i, "found": note is not None, "note": (note.value if note else None) or None}
        for i, note in zip(ids, notes, strict=True)
    ]
    return 200, {"notes": result}


async def delete_note_async(kv: AsyncKv, owner_id: str, note_id: str) -> Answer:
    note = await kv.get(["notes", owner_id, note_id])
    if not note:
        return 404, {"error": "Note not found"}
    await kv.delete(["notes", owner_id, note_id])
    return 200, {"message": f"Note '{note_id}' deleted"}


async def transfer_async(kv: AsyncKv, caller_id: str | None, body: dict) -> Answer:
    source, target, amount = body.get("from"), body.get("to"), body.get("amount")
    if not caller_id:
        return 401, {"error": "Authentication required"}
    if not source or not target or not isinstance(amount, int | float) or amount <= 0:
        return 400, {"error": "Invalid transfer parameters"}

    async def move(tx: AsyncTransaction) -> dict:
        from_account = await tx.get(["accounts", source])
        to_account = await tx.get(["accounts", target])
        if not from_account or not to_account:
            raise RuntimeError("One or both accounts not found")
        # Prevent BOLA: users can only transfer from accounts they own.
        if from_account["ownerId"] != caller_id:
            raise RuntimeError(NOT_AUTHORIZED)
        if from_account["balance"] < amount:
            raise RuntimeError("Insufficient balance")
        await tx.set(
            ["accounts", source], {**from_account, "balance": from_account["balance"] - amount}
        )
        await tx.set(
            ["accounts", target], {**to_account, "balance": to_account["balance"] + amount}
        )
        return {
            "success": True,
            "from": {"name": from_account["name"], "newBalance": from_account["balance"] - amount},
            "to": {"name": to_account["name"], "newBalance": to_account["balance"] + amount},
            "amount": amount,
        }

    try:
        return 200, await kv.transaction(move)
    except Exception as err:
        return _refused(err)


async def create_user_async(kv: AsyncKv, body: dict, fail_after_writes: bool = False) -> Answer:
    user_id = str(uuid.uuid4())
    user = {"id": user_id, "email": body["email"], "name": body["name"]}

    async def index(tx: AsyncTransaction) -> None:
        await tx.set(["users", user_id], user)
        await tx.set(["usersByEmail", body["email"]], {"id": user_id})
        if fail_after_writes:
            raise RuntimeError("failed after both writes")

    await kv.transaction(index)
    return 201, {"user": user}


async def user_by_email_async(kv: AsyncKv, email: str) -> Answer:
    ref = await kv.get(["usersByEmail", email])
    if not ref:
        return 404, {"error": "User not found"}
    return 200, {"user": await kv.get(["users", ref["id"]])}


async def count_view_async(kv: AsyncKv, article_id: str) -> Answer:
    async def increment(tx: AsyncTransaction) -> int:
        current = await tx.get(["views", article_id])
        count = ((current or {}).get("count") or 0) + 1
        await tx.set(["views", article_id], {"count": count})
        return count

    return 200, {"views": await kv.transaction(increment)}
