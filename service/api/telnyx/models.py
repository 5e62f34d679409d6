"""The Telnyx surface's data shapes: what requests may carry and what responses hold."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, StrictBool, StringConstraints

NamespaceName = Annotated[str, StringConstraints(strict=True, pattern=r"^[a-z0-9-]{1,255}$")]
NamespaceStatus = Literal[
    "pending", "provision_ok", "provision_failed", "deleting", "delete_failed"
]

# Fields a client may see but never set.
SERVER_OWNED_FIELDS = frozenset(
    {"id", "record_type", "status", "status_reason", "created_at", "updated_at"}
)


class NamespaceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: NamespaceName
    ttl_support: StrictBool = True


class NamespacePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    record_type: Literal["storage_kv"] = "storage_kv"
    id: UUID
    name: str
    status: NamespaceStatus
    # Extension: why provisioning or deletion failed; null otherwise.
    status_reason: str | None
    ttl_support: bool
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
