"""The client without its I/O: every operation is an exchange, a generator that yields the
HTTP requests it needs and is sent their answers, and returns the operation's result. The
sync and async clients differ only in how they carry a request to the server (and in how
they call a transaction's callback and wait between its attempts)."""

import base64
import copy
import json
import random
import re
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from kvs_client.errors import KvError, KvProtocolError, KvValueTooLarge
from kvs_client.keys import KvKey, KvKeyPart, decode_key, encode_key

T = TypeVar("T")

MAX_TTL_SECONDS = 9_223_372_036
MAX_LIST_LIMIT = 1000
BATCH_READ_KEYS = 1000
MAX_TRANSACTION_READS = 100
MAX_TRANSACTION_WRITES = 1000
DEFAULT_VALUE_LIMIT = 1024 * 1024
TRANSACTION_ATTEMPTS = 10
FIRST_BACKOFF_SECONDS = 0.01
MAX_BACKOFF_SECONDS = 1.0

JSON_TYPE = "application/json"
_LIMIT_IN_DETAIL = re.compile(r"at most ([0-9]+) bytes")
_OPERATION_POINTER = re.compile(r"/operations/([0-9]+)(?:/.*)?")


@dataclass(frozen=True)
class HttpRequest:
    """A request relative to the namespace's URL (`…/v2/storage/kvs/{id}/`)."""

    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    content_type: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.content_type is None else {"Content-Type": self.content_type}


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    content_type: str | None = None


Exchange = Generator[HttpRequest, HttpResponse, T]


@dataclass(frozen=True)
class KvEntry(Generic[T]):
    """A key (as a tuple) and its value."""

    key: tuple[KvKeyPart, ...]
    value: T


@dataclass(frozen=True)
class KvListResponse(Generic[T]):
    """A page of a listing: its entries in key order, how many keys match the selector from
    this page on (`total`), and the cursor of the next page (None after the last)."""

    items: list[KvEntry[T]]
    total: int
    cursor: str | None


def namespace_url(base_url: str, namespace: str) -> str:
    return f"{base_url.rstrip('/')}/v2/storage/kvs/{quote(str(namespace), safe='')}/"


def headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}", "User-Agent": "kvs-client-python/0.1"}


def error_of(answer: HttpResponse) -> KvError:
    """The KvError for a non-2xx answer, from the first entry of its `errors`."""
    try:
        first = json.loads(answer.body)["errors"][0]
        return KvError(
            answer.status,
            first.get("code"),
            first.get("detail") or first.get("title") or "",
            first.get("source"),
        )
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        text = answer.body.decode("utf-8", "replace").strip()[:500]
        return KvError(answer.status, None, text or "(no error body)")


def _json_document(answer: HttpResponse) -> Any:
    if not 200 <= answer.status < 300:
        raise error_of(answer)
    try:
        return json.loads(answer.body)
    except ValueError as err:
        raise KvProtocolError(f"A {answer.status} answer that is not JSON: {err}") from err


def _is_key_missing(error: KvError) -> bool:
    # A missing namespace is a 404 too; its source is the `id` parameter, a key's is `key`.
    return error.status == 404 and error.source == {"parameter": "key"}


def serialize(value: Any) -> bytes:
    """The compact JSON of a value. TypeError or ValueError (Redocly's message: `Value is not
    JSON serializable: …`) for one JSON cannot carry: an object of another type, a circular
    reference, NaN or an infinity."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as err:
        kind = TypeError if isinstance(err, TypeError) else ValueError
        raise kind(f"Value is not JSON serializable: {err}") from err
    return text.encode("utf-8")


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_json_type(content_type: str | None) -> bool:
    media = _media_type(content_type)
    return media == JSON_TYPE or (media.startswith("application/") and media.endswith("+json"))


def value_of_bytes(content_type: str | None, body: bytes) -> Any:
    """A stored value as the contract's reads present it: parsed JSON for a JSON type, str
    for text/* in UTF-8, else the bytes."""
    if _is_json_type(content_type):
        try:
            return json.loads(body)
        except ValueError:
            return body
    if _media_type(content_type).startswith("text/"):
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            return body
    return body


def value_of_entry(entry: Mapping[str, Any]) -> Any:
    """The value an entry of batch-read or a listing carries in `encoding` and `data`."""
    try:
        encoding, data = entry["encoding"], entry["data"]
    except KeyError as err:
        raise KvProtocolError(f"An entry without {err.args[0]!r}: {dict(entry)!r}") from None
    if encoding == "json":
        return data
    if encoding == "text":
        return data
    if encoding == "base64":
        return base64.b64decode(data)
    raise KvProtocolError(f"An entry's encoding is {encoding!r}.")


def _ttl_param(ttl_in_seconds: int | None) -> dict[str, str]:
    if ttl_in_seconds is None:
        return {}
    if isinstance(ttl_in_seconds, bool) or not isinstance(ttl_in_seconds, int):
        raise TypeError(f"ttl_in_seconds is an int, not {type(ttl_in_seconds).__name__}.")
    if not 1 <= ttl_in_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl_in_seconds is from 1 to {MAX_TTL_SECONDS}, not {ttl_in_seconds}.")
    return {"ttl_secs": str(ttl_in_seconds)}


def _too_large(error: KvError, size: int) -> KvValueTooLarge:
    found = _LIMIT_IN_DETAIL.search(error.detail)
    limit = int(found[1]) if found else DEFAULT_VALUE_LIMIT
    return KvValueTooLarge(error.code, error.detail, size, limit)


def _key_path(name: str) -> str:
    # Names are made of URL-safe characters; `/` stays a `/` (the server takes it in a key),
    # and no segment is `.` or `..` since every part's encoding has a character before its mark.
    return "keys/" + quote(name, safe="/=")


def get(key: KvKey) -> Exchange[Any]:
    """The key's value, or None when it is missing or expired."""
    answer = yield HttpRequest("GET", _key_path(encode_key(key)))
    if answer.status == 200:
        return value_of_bytes(answer.content_type, answer.body)
    error = error_of(answer)
    if _is_key_missing(error):
        return None
    raise error


def set_(key: KvKey, value: Any, ttl_in_seconds: int | None = None) -> Exchange[KvEntry[Any]]:
    """Stores the value as JSON (expiring after `ttl_in_seconds`, when given); the entry.
    Refuses a bad key, TTL or a value JSON cannot carry before any request."""
    name = encode_key(key)
    params = _ttl_param(ttl_in_seconds)
    body = serialize(value)
    answer = yield HttpRequest("PUT", _key_path(name), params, body, JSON_TYPE)
    if answer.status in (200, 201):
        return KvEntry(tuple(key), value)
    error = error_of(answer)
    if error.status == 413:
        raise _too_large(error, len(body))
    raise error


def delete(key: KvKey) -> Exchange[None]:
    """Deletes the key; done also when it did not exist."""
    answer = yield HttpRequest("DELETE", _key_path(encode_key(key)))
    if answer.status in (200, 204):
        return None
    error = error_of(answer)
    if _is_key_missing(error):
        return None
    raise error


def list_query(prefix: KvKey | None, start: KvKey | None, end: KvKey | None) -> dict[str, str]:
    """The listing's bounds for a selector, as the contract translates them: the prefix's
    keys exclude the key equal to the prefix (as in Deno KV), `start` is inclusive and `end`
    exclusive; no selector (or an empty prefix) lists every key."""
    params: dict[str, str] = {}
    lower: str | None = None
    if prefix is not None:
        if not isinstance(prefix, list | tuple):
            raise TypeError(f"A prefix is a list or tuple of parts, not {type(prefix).__name__}.")
        if prefix:
            params["prefix"] = encode_key(prefix)
            # Every part's encoding starts at "0" or above: this is the least name below it.
            lower = params["prefix"] + "0"
    if start is not None:
        encoded = encode_key(start)
        lower = encoded if lower is None else max(lower, encoded)
    if lower is not None:
        params["start"] = lower
    if end is not None:
        params["end"] = encode_key(end)
    return params


def list_(
    prefix: KvKey | None = None,
    start: KvKey | None = None,
    end: KvKey | None = None,
    limit: int = 100,
    reverse: bool = False,
    cursor: str | None = None,
) -> Exchange[KvListResponse[Any]]:
    """One page of the entries the selector picks, in key order (or reversed). Names that
    are not encoded array keys (written by other clients of the raw API) are left out of the
    items; `total` is the server's count."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit is an int, not {type(limit).__name__}.")
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise ValueError(f"limit is from 1 to {MAX_LIST_LIMIT}, not {limit}.")
    params = list_query(prefix, start, end)
    params.update(limit=str(limit), values="true", total="true")
    if reverse:
        params["reverse"] = "true"
    if cursor is not None:
        params["cursor"] = cursor
    document = _json_document((yield HttpRequest("GET", "keys", params)))
    try:
        rows, meta = document["data"], document["meta"]
        total, next_cursor = meta["total"], meta["cursor"] if meta["has_more"] else None
    except (KeyError, TypeError) as err:
        raise KvProtocolError(f"A listing without {err}: {document!r:.500}") from None
    items = []
    for row in rows:
        try:
            key = decode_key(row["key"])
        except ValueError:
            continue
        items.append(KvEntry(key, value_of_entry(row)))
    return KvListResponse(items, total, next_cursor)


def read_entries(names: Sequence[str]) -> Exchange[list[dict[str, Any] | None]]:
    """The batch-read entries of the names, in their order (None for a missing key): in
    requests of at most 1,000 keys, each split in halves while the server finds its values
    too large to answer at once."""
    entries: list[dict[str, Any] | None] = []
    for first in range(0, len(names), BATCH_READ_KEYS):
        entries += yield from _read_batch(names[first : first + BATCH_READ_KEYS])
    return entries


def _read_batch(names: Sequence[str]) -> Exchange[list[dict[str, Any] | None]]:
    body = json.dumps({"keys": list(names)}).encode()
    answer = yield HttpRequest("POST", "batch-read", body=body, content_type=JSON_TYPE)
    if answer.status == 413 and len(names) > 1:
        half = len(names) // 2
        head = yield from _read_batch(names[:half])
        tail = yield from _read_batch(names[half:])
        return head + tail
    document = _json_document(answer)
    entries = document.get("data") if isinstance(document, dict) else None
    if not isinstance(entries, list) or len(entries) != len(names):
        raise KvProtocolError(f"batch-read of {len(names)} keys answered {document!r:.500}")
    return entries


def get_many(keys: Iterable[KvKey]) -> Exchange[list[KvEntry[Any] | None]]:
    """The entries of the keys in their order, None for a missing key."""
    keys = list(keys)
    entries = yield from read_entries([encode_key(key) for key in keys])
    return [
        None if entry is None else KvEntry(tuple(key), value_of_entry(entry))
        for key, entry in zip(keys, entries, strict=True)
    ]


def backoff_seconds(attempt: int) -> float:
    """How long to wait after the attempt-th conflict (0-based): a random fraction ("full
    jitter", so that clients conflicting together do not retry together) of 10 ms doubled
    per attempt, at most 1 s."""
    return random.uniform(0, min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2**attempt))


_DELETED = object()


class TransactionState:
    """One attempt of a transaction: the etag of each key read (None when it was absent),
    checked at commit; the writes, buffered until then (the last write of a key wins, and
    reads see them)."""

    def __init__(self) -> None:
        self._read: dict[str, tuple[str | None, Any]] = {}  # name -> (etag, value)
        self._written: dict[str, tuple[bytes, int | None] | object] = {}
        self._ended = False

    def _check_open(self) -> None:
        if self._ended:
            raise RuntimeError("This transaction has ended; use the one passed to the callback.")

    def get_many(self, keys: Iterable[KvKey]) -> Exchange[list[KvEntry[Any] | None]]:
        """The keys' entries as this transaction sees them: its own writes, else what it
        read before, else read now (in one batch), their etags becoming checks. ValueError
        before reading when more than 100 distinct keys would have been read."""
        self._check_open()
        keys = list(keys)
        names = [encode_key(key) for key in keys]
        unknown = list(
            dict.fromkeys(n for n in names if n not in self._written and n not in self._read)
        )
        if len(self._read) + len(unknown) > MAX_TRANSACTION_READS:
            raise ValueError(
                f"A transaction reads at most {MAX_TRANSACTION_READS} distinct keys; this one "
                f"would read {len(self._read) + len(unknown)}."
            )
        if unknown:
            entries = yield from read_entries(unknown)
            self._check_open()
            for name, entry in zip(unknown, entries, strict=True):
                if entry is None:
                    self._read[name] = (None, None)
                elif not isinstance(entry.get("etag"), str):
                    raise KvProtocolError(f"A batch-read entry without an etag: {entry!r:.500}")
                else:
                    self._read[name] = (entry["etag"], value_of_entry(entry))
        found: list[KvEntry[Any] | None] = []
        for key, name in zip(keys, names, strict=True):
            if name in self._written:
                write = self._written[name]
                value = None if write is _DELETED else json.loads(write[0])  # type: ignore[index]
                found.append(None if write is _DELETED else KvEntry(tuple(key), value))
            else:
                etag, value = self._read[name]
                # A copy: the callback may change what it got, the transaction's view stays.
                found.append(None if etag is None else KvEntry(tuple(key), copy.deepcopy(value)))
        return found

    def _write(self, name: str, write: tuple[bytes, int | None] | object) -> None:
        self._check_open()
        if name not in self._written and len(self._written) >= MAX_TRANSACTION_WRITES:
            raise ValueError(f"A transaction writes at most {MAX_TRANSACTION_WRITES} keys.")
        self._written[name] = write

    def set(self, key: KvKey, value: Any, ttl_in_seconds: int | None = None) -> KvEntry[Any]:
        """Buffers the write (refusing a bad key, TTL or value now); the entry."""
        name = encode_key(key)
        ttl = _ttl_param(ttl_in_seconds)
        self._write(name, (serialize(value), int(ttl["ttl_secs"]) if ttl else None))
        return KvEntry(tuple(key), value)

    def delete(self, key: KvKey) -> None:
        """Buffers the deletion."""
        self._write(encode_key(key), _DELETED)

    def commit(self) -> Exchange[KvError | None]:
        """Sends the checks and writes as one transaction (nothing when there are neither);
        None once committed, the 412's error when a check failed (nothing was written)."""
        self._check_open()
        self._ended = True
        if not self._read and not self._written:
            return None
        checks = [{"key": name, "etag": etag} for name, (etag, _) in self._read.items()]
        operations = []
        sizes = []
        for name, write in self._written.items():
            if write is _DELETED:
                operations.append(json.dumps({"op": "delete", "key": name}).encode())
                sizes.append(0)
                continue
            data, ttl = write  # type: ignore[misc]
            sizes.append(len(data))
            ttl_field = b"" if ttl is None else b',"ttl_secs":%d' % ttl
            # The value's JSON spliced as serialized when it was set: what the callback
            # does to the object afterwards does not change what is written.
            operations.append(
                b'{"op":"set","key":%s,"encoding":"json","content_type":"%s"%s,"data":%s}'
                % (json.dumps(name).encode(), JSON_TYPE.encode(), ttl_field, data)
            )
        body = b'{"checks":%s,"operations":[%s]}' % (
            json.dumps(checks).encode(),
            b",".join(operations),
        )
        answer = yield HttpRequest("POST", "transaction", body=body, content_type=JSON_TYPE)
        if answer.status == 200:
            return None
        error = error_of(answer)
        if error.status == 412:
            return error
        if error.status == 413:
            # One value over its limit names it (`/operations/N/data`); else it is the total.
            pointer = error.source.get("pointer") if isinstance(error.source, dict) else None
            found = _OPERATION_POINTER.fullmatch(str(pointer))
            at = int(found[1]) if found else len(sizes)
            raise _too_large(error, sizes[at] if at < len(sizes) else sum(sizes))
        raise error

    def abort(self) -> None:
        self._ended = True
