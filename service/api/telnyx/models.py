"""The Telnyx surface's data shapes: what requests may carry and what responses hold."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
)

from service.domain.namespaces import MAX_BYTES_LIMIT, MAX_DESCRIPTION_CHARS, MAX_VALUE_SIZE_LIMIT

NamespaceName = Annotated[str, StringConstraints(strict=True, pattern=r"^[a-z0-9-]{1,255}$")]
Description = Annotated[str, StringConstraints(strict=True, max_length=MAX_DESCRIPTION_CHARS)]


def _whole(value: object) -> object:
    # JSON Schema's integers include 2048.0; strings and booleans stay refused.
    return int(value) if isinstance(value, float) and value.is_integer() else value


WholeNumber = Annotated[StrictInt, BeforeValidator(_whole)]
MaxBytes = Annotated[WholeNumber, Field(ge=1, le=MAX_BYTES_LIMIT)]
# The server's ceiling (KVS_MAX_VALUE_SIZE_CEILING) is checked by the domain.
MaxValueSize = Annotated[WholeNumber, Field(ge=1, le=MAX_VALUE_SIZE_LIMIT)]
NamespaceStatus = Literal[
    "pending", "provision_ok", "provision_failed", "deleting", "delete_failed"
]

# Fields a client may see but never set.
SERVER_OWNED_FIELDS = frozenset(
    {"id", "record_type", "status", "status_reason", "usage", "created_at", "updated_at"}
)
# Fields set when a namespace is created, never changed after.
CREATION_FIELDS = frozenset({"name", "ttl_support"})


class NamespaceSettings(BaseModel):
    """Extension: the settings a namespace may be given and changed (null: none)."""

    model_config = ConfigDict(extra="forbid")

    description: Description | None = None
    max_bytes: MaxBytes | None = None
    max_value_size: MaxValueSize | None = None


class NamespaceCreate(NamespaceSettings):
    name: NamespaceName
    ttl_support: StrictBool = True


class NamespaceUpdate(NamespaceSettings):
    """PATCH: the settings named change; the others stay as they are."""


class UsagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    keys: int
    bytes: int


class NamespacePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    record_type: Literal["storage_kv"] = "storage_kv"
    id: UUID
    name: str
    status: NamespaceStatus
    # Extension: why provisioning or deletion failed; null otherwise.
    status_reason: str | None
    ttl_support: bool
    # Extensions: the namespace's settings, and what it holds.
    description: str | None
    max_bytes: int | None
    max_value_size: int | None
    usage: UsagePublic
    created_at: datetime
    updated_at: datetime


class PageMeta(BaseModel):
    page_number: int
    page_size: int
    total_pages: int
    total_results: int


class NamespaceList(BaseModel):
    data: list[NamespacePublic]
    meta: PageMeta


class NamespaceEnvelope(BaseModel):
    data: NamespacePublic
