"""quiva.ai's answer bodies: `{"message": "success"}`, and the read envelope
`{"body": …, "metadata": …}` with buckets and entries in its shapes (openapi/quiva.yaml)."""

import base64
import time
from datetime import datetime

import orjson
from aiohttp import web

from service.domain.keys import effective_value_limit
from service.domain.namespaces import Namespace
from service.domain.values import Encoding, encoding_of

SUCCESS = orjson.dumps({"message": "success"})
BACKING_STORE = "PostgreSQL"
# The one revision of each entry this server keeps, and NATS's "no limit".
HISTORY = 1
UNLIMITED = -1


def success() -> web.Response:
    return web.Response(body=SUCCESS, content_type="application/json")


def envelope(body: dict, metadata: dict, started: float) -> web.Response:
    """The read envelope; `metadata.duration` is the time since `started` (perf_counter)."""
    metadata["duration"] = duration(time.perf_counter() - started)
    return web.Response(
        body=orjson.dumps({"body": body, "metadata": metadata}, option=orjson.OPT_UTC_Z),
        content_type="application/json",
    )


def duration(seconds: float) -> str:
    """A duration the way quiva.ai's gateway (Go) writes one: `850µs`, `3.2ms`, `1.5s`."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3)):
        if seconds >= scale:
            return f"{seconds / scale:.3f}".rstrip("0").rstrip(".") + unit
    return f"{seconds * 1e6:.0f}µs"


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def entry(key: str, value: bytes, content_type: str) -> dict:
    """An entry as quiva.ai reads one: `{"key", "value"}`, the value a JSON object.

    A JSON object stored with a JSON Content-Type is the value itself, byte for byte as stored.
    Any other value (written through /v2) is carried in an object that says what it is,
    `{"content_type", "encoding": "json" | "text" | "base64", "data"}`, and the entry says
    `"wrapped": true` (an extension), so that no stored value is ever mistaken for another.
    """
    encoding = encoding_of(value, content_type)
    if encoding is Encoding.OBJECT:
        return {"key": key, "value": orjson.Fragment(value)}
    if encoding is Encoding.JSON:
        data: object = orjson.Fragment(value)
    elif encoding is Encoding.TEXT:
        data = bytes(value).decode("utf-8")
    else:
        data = base64.b64encode(value).decode("ascii")
    carried = {"content_type": content_type, "encoding": encoding.value, "data": data}
    return {"key": key, "value": carried, "wrapped": True}


def bucket_list_item(ns: Namespace, cluster: str) -> dict:
    return {
        "name": ns.name,
        "description": ns.description or "",
        "entry_total": ns.usage.keys,
        "created": rfc3339(ns.created_at),
        "metadata": {"id": str(ns.id), "status": ns.status},
        "placement": {"cluster": cluster, "tags": []},
    }


def bucket_details(ns: Namespace, cluster: str, value_ceiling: int) -> dict:
    """The bucket in the shape of NATS's KV status, config and stream info, filled from the
    namespace (docs/COMPATIBILITY.md says what each field carries here)."""
    max_bytes = UNLIMITED if ns.max_bytes is None else ns.max_bytes
    value_limit = effective_value_limit(ns.max_value_size, value_ceiling)
    keys, stored = ns.usage.keys, ns.usage.bytes
    return {
        "status": {
            "backing_store": BACKING_STORE,
            "bucket": ns.name,
            "description": ns.description or "",
            "bytes": stored,
            "history": HISTORY,
            "ttl": 0,
            "is_compressed": False,
        },
        "config": {
            "bucket": ns.name,
            "max_bytes": max_bytes,
            "max_value_size": value_limit,
            "history": HISTORY,
            "num_replicas": 1,
        },
        "stream_info": {
            "cluster": {"name": cluster, "leader": "primary", "replicas": []},
            "config": {
                "name": f"KV_{ns.name}",
                "subjects": [f"$KV.{ns.name}.>"],
                "retention": "Limits",
                "storage": "file",
                "num_replicas": 1,
                # A write past max_bytes is refused: NATS's "discard new".
                "discard": "new",
                "max_bytes": max_bytes,
                "max_msg_size": value_limit,
                "max_msgs": UNLIMITED,
                "max_msgs_per_subject": HISTORY,
                "max_age": 0,
                "max_consumers": UNLIMITED,
                "duplicate_window": 0,
                "allow_direct": True,
                "allow_rollup_hdrs": True,
                "deny_delete": True,
                "mirror_direct": False,
                "compression": "none",
                "metadata": {"id": str(ns.id), "status": ns.status},
            },
            "created": rfc3339(ns.created_at),
            "state": {
                "messages": keys,
                "bytes": stored,
                "first_seq": 0,
                "last_seq": 0,
                "consumer_count": 0,
                "num_subjects": keys,
                "num_deleted": 0,
            },
        },
    }
