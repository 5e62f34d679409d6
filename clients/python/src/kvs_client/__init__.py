"""Python client of the KV namespace service, in the shape of Redocly's KV storage: array
keys (`encode_key`/`decode_key` give the names the service stores), listings by prefix and
range, batch reads and optimistic transactions. `Kv` blocks, `AsyncKv` is for asyncio; both
are the same core (kvs_client._core) over httpx."""

from kvs_client._core import KvEntry, KvListResponse
from kvs_client.aio import AsyncKv, AsyncTransaction
from kvs_client.errors import KvConflict, KvError, KvProtocolError, KvValueTooLarge
from kvs_client.keys import KvKey, KvKeyPart, decode_key, encode_key
from kvs_client.sync import Kv, Transaction

__all__ = [
    "AsyncKv",
    "AsyncTransaction",
    "Kv",
    "KvConflict",
    "KvEntry",
    "KvError",
    "KvKey",
    "KvKeyPart",
    "KvListResponse",
    "KvProtocolError",
    "KvValueTooLarge",
    "Transaction",
    "decode_key",
    "encode_key",
]
