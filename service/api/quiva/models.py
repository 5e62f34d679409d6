"""What quiva.ai's bucket requests may carry (openapi/quiva.yaml CreateKVBucketRequest and
UpdateKVBucketRequest), and the names this surface takes."""

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from service.api.telnyx.models import Description, WholeNumber
from service.domain.namespaces import MAX_BYTES_LIMIT, MAX_VALUE_SIZE_LIMIT
from service.web.errors import BadRequest

# NATS's bucket names, which quiva.ai's are: letters, digits, `_` and `-`.
_BUCKET = re.compile(r"[A-Za-z0-9_-]{1,255}")

# -1 is NATS's "no limit": on a create, the same as leaving the limit out; on an update, it
# removes the limit.
NO_LIMIT = -1
MaxBytes = Annotated[WholeNumber, Field(ge=NO_LIMIT, le=MAX_BYTES_LIMIT)]
MaxValueSize = Annotated[WholeNumber, Field(ge=NO_LIMIT, le=MAX_VALUE_SIZE_LIMIT)]


def bucket_name(name: str, where: str = "bucket") -> str:
    """The name if it is one NATS takes for a bucket; BadRequest otherwise."""
    if not _BUCKET.fullmatch(name):
        raise BadRequest(
            f"'{where}' must be a bucket name: 1 to 255 characters from a-z A-Z 0-9 _ -.",
            parameter=where,
        )
    return name


class BucketSettings(BaseModel):
    """What both a create and an update may set."""

    model_config = ConfigDict(extra="forbid")

    description: Description = None  # type: ignore[assignment]
    max_bytes: MaxBytes = None  # type: ignore[assignment]
    max_value_size: MaxValueSize = None  # type: ignore[assignment]
    # Refused whenever given (JSON-field indexing is not offered): see refuse_unhonoured.
    indexing: Any = None

    def settings(self) -> dict[str, object]:
        """The namespace settings the request names, NO_LIMIT as None (no limit)."""
        return {
            field: None if value == NO_LIMIT and field != "description" else value
            for field in ("description", "max_bytes", "max_value_size")
            if field in self.model_fields_set
            for value in (getattr(self, field),)
        }


class BucketCreate(BucketSettings):
    bucket: StrictStr
    compression: StrictBool = False
    history: Annotated[WholeNumber, Field(ge=1)] = 1
    replicas: Annotated[WholeNumber, Field(ge=1)] = 1
    storage: Literal["file", "memory"] = "file"


class BucketUpdate(BucketSettings):
    """PUT: the settings named change (a bucket of a new name is created with them)."""


# What quiva.ai's bucket fields ask for that this deployment cannot do, and why; a request
# that asks is refused, naming the field, rather than accepted and ignored.
_UNHONOURED = {
    "indexing": (
        lambda v: True,
        "JSON-field indexing is not offered by this server; leave 'indexing' out.",
    ),
    "compression": (
        lambda v: v is True,
        "Values are stored uncompressed on this server; send 'compression': false or leave it out.",
    ),
    "history": (
        lambda v: v != 1,
        "This server keeps the latest value of each entry only; send 'history': 1 or leave it out.",
    ),
    "replicas": (
        lambda v: v != 1,
        "each bucket is stored once, in this server's PostgreSQL database, whose own "
        "replication is what keeps copies; send 'replicas': 1 or leave it out.",
    ),
    "storage": (
        lambda v: v != "file",
        "buckets are stored on disk, in PostgreSQL; send 'storage': 'file' or leave it out.",
    ),
}


def refuse_unhonoured(spec: BucketSettings) -> None:
    """BadRequest naming the first field the request sets to something not honoured here."""
    for field in spec.model_fields_set:
        check = _UNHONOURED.get(field)
        if check is not None and check[0](getattr(spec, field)):
            raise BadRequest(f"'{field}': {check[1]}", pointer=f"/{field}")
