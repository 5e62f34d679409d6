"""A tenant's secrets: named UTF-8 values, each write a new version, sealed at rest under the
master keys (service/domain/sealing.py). Every API surface that serves secrets uses this one
store; none sees a ciphertext.

What is logged of a secret is its tenant, name and version, never its value: each reveal is
logged so, with the request it answered.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol
from uuid import UUID

import asyncpg

from service.db.pool import Database
from service.db.queries import queries
from service.domain.errors import (
    InvalidInput,
    PreconditionFailed,
    SecretLimitReached,
    SecretNotFound,
    SecretsUnavailable,
    SecretTooLarge,
    SecretUnreadable,
    SecretVersionNotFound,
    StoreUnavailable,
)
from service.domain.keys import is_key
from service.domain.sealing import (
    MasterKeyMissing,
    MasterKeys,
    SealBroken,
    Sealed,
    binding,
    open_sealed,
    seal,
)

log = logging.getLogger(__name__)

MAX_VALUE_BYTES = 64 * 1024
MAX_LIST_LIMIT = 1000
# The most value bytes one reveal of many secrets sends: the answer is held in memory whole.
REVEAL_BYTES = 8 * 1024 * 1024
_ABOVE_ALL_NAMES = "\x7f"
# A write retries when a concurrent write created the secret under it; each retry means
# another write succeeded, so a few always suffice.
_WRITE_ATTEMPTS = 8

AnyVersion = Literal["*"]


class SecretObserver(Protocol):
    """What the store reports to metrics."""

    def secrets_read(self, count: int) -> None: ...

    def secret_written(self) -> None: ...

    def secret_decryption_failed(self, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """A secret's metadata: its current version, that version's revision (the ETag), when
    the secret was created and last written."""

    name: str
    version: int
    revision: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Secret:
    """One version of a secret, opened."""

    info: SecretInfo
    version: int
    revision: int
    value: str
    version_created_at: datetime


@dataclass(frozen=True, slots=True)
class Revealed:
    name: str
    version: int
    value: str


@dataclass(frozen=True, slots=True)
class SecretPage:
    items: list[SecretInfo]
    has_more: bool


def validate_name(name: str) -> str:
    """The name if secrets may have it (the rules of key names); InvalidInput otherwise."""
    if not is_key(name):
        raise InvalidInput(
            "A secret name is 1 to 256 characters from a-z A-Z 0-9 - _ / = .", field="secret"
        )
    if name.startswith("_"):
        raise InvalidInput("Secret names starting with '_' are reserved.", field="secret")
    return name


def validate_value(value: object) -> bytes:
    """A value as the UTF-8 bytes to seal; InvalidInput or SecretTooLarge otherwise."""
    if not isinstance(value, str):
        raise InvalidInput("A secret's value must be a string.", field="secret_value")
    try:
        encoded = value.encode()
    except UnicodeEncodeError:
        raise InvalidInput(
            "A secret's value must be Unicode text: it holds an unpaired surrogate.",
            field="secret_value",
        ) from None
    if len(encoded) > MAX_VALUE_BYTES:
        raise SecretTooLarge(MAX_VALUE_BYTES)
    return encoded


def _info(name: str, row: asyncpg.Record, version: int) -> SecretInfo:
    return SecretInfo(name, version, row["revision"], row["created_at"], row["updated_at"])


def _sealed(row: asyncpg.Record) -> Sealed:
    return Sealed(row["master_key_id"], row["wrapped_key"], row["ciphertext"])


class SecretStore:
    """The secrets of every tenant, sealed under `keys` (None: none configured, and every
    operation raises SecretsUnavailable). Keeps the newest `versions_kept` versions of each
    secret and at most `max_secrets` secrets per tenant."""

    def __init__(
        self,
        keys: MasterKeys | None,
        *,
        versions_kept: int,
        max_secrets: int,
        observer: SecretObserver | None = None,
    ) -> None:
        self.keys = keys
        self.versions_kept = versions_kept
        self.max_secrets = max_secrets
        self._observer = observer

    def _require_keys(self) -> MasterKeys:
        if self.keys is None:
            raise SecretsUnavailable(
                "Secrets are not available on this server: it has no master keys "
                "(KVS_SECRETS_MASTER_KEYS)."
            )
        return self.keys

    def _open(self, tenant_id: UUID, name: str, version: int, sealed: Sealed) -> str:
        """The value of a stored version; SecretsUnavailable or SecretUnreadable, counted."""
        keys = self._require_keys()
        try:
            return open_sealed(keys, binding(tenant_id, name, version), sealed).decode()
        except MasterKeyMissing as err:
            self._failed("missing_key", tenant_id, name, version)
            raise SecretsUnavailable(
                f"The secret is sealed under master key '{err.key_id}', which this server "
                "does not hold; it can be read once that key is configured again."
            ) from None
        except (SealBroken, UnicodeDecodeError):
            self._failed("integrity", tenant_id, name, version)
            raise SecretUnreadable() from None

    def _failed(self, reason: str, tenant_id: UUID, name: str, version: int) -> None:
        log.error(
            "secret decryption failed",
            extra={
                "reason": reason,
                "tenant_id": str(tenant_id),
                "secret_name": name,
                "secret_version": version,
            },
        )
        if self._observer is not None:
            self._observer.secret_decryption_failed(reason)

    def _revealed(self, tenant_id: UUID, request_id: str, name: str, version: int) -> None:
        log.info(
            "secret revealed",
            extra={
                "tenant_id": str(tenant_id),
                "secret_name": name,
                "secret_version": version,
                "request_id": request_id,
            },
        )

    async def put(
        self,
        db: Database,
        tenant_id: UUID,
        name: str,
        value: bytes,
        *,
        if_match: list[int] | AnyVersion | None = None,
        if_absent: bool = False,
    ) -> tuple[bool, SecretInfo]:
        """Stores `value` as the secret's next version: (created, its metadata). Versions
        older than the newest `versions_kept` are destroyed in the same transaction.

        `if_absent` writes only a secret that does not exist; `if_match` only over one of
        those revisions (any, for "*"). Either failing raises PreconditionFailed, and a new
        secret past the tenant's limit SecretLimitReached; nothing is stored then.
        """
        keys = self._require_keys()
        q = queries()
        for _ in range(_WRITE_ATTEMPTS):
            async with db.transaction() as tx:
                current = await tx.fetchrow(q.lock_secret, tenant_id, name)
                if current is None:
                    if if_match is not None:
                        raise PreconditionFailed("The secret does not exist.", field="if_match")
                    sealed = seal(keys, binding(tenant_id, name, 1), value)
                    row = await tx.fetchrow(
                        q.create_secret,
                        tenant_id,
                        name,
                        1,
                        sealed.master_key_id,
                        sealed.wrapped_key,
                        sealed.ciphertext,
                    )
                    if row["revision"] is None:
                        continue  # created meanwhile: look again, now under its lock
                    if row["secrets"] > self.max_secrets:
                        raise SecretLimitReached(self.max_secrets)  # rolls the create back
                    created, version = True, 1
                else:
                    if if_absent:
                        raise PreconditionFailed("The secret exists.", field="if_absent")
                    if if_match not in (None, "*") and current["revision"] not in if_match:
                        raise PreconditionFailed(
                            "The secret's current version does not match.", field="if_match"
                        )
                    version = current["version"] + 1
                    sealed = seal(keys, binding(tenant_id, name, version), value)
                    row = await tx.fetchrow(
                        q.add_secret_version,
                        tenant_id,
                        name,
                        version,
                        sealed.master_key_id,
                        sealed.wrapped_key,
                        sealed.ciphertext,
                        self.versions_kept,
                    )
                    created = False
            if self._observer is not None:
                self._observer.secret_written()
            return created, _info(name, row, version)
        raise StoreUnavailable("The secret is being written by others at this moment; retry.")

    async def get(
        self,
        db: Database,
        tenant_id: UUID,
        name: str,
        *,
        request_id: str,
        version: int | None = None,
    ) -> Secret:
        """The current version of the secret (or `version`), opened; the reveal is logged."""
        self._require_keys()
        row = await db.fetchrow(queries().get_secret, tenant_id, name, version)
        if row is None:
            raise SecretNotFound()
        if row["version"] is None:
            raise SecretVersionNotFound(version or 0, row["current_version"], self.versions_kept)
        value = self._open(tenant_id, name, row["version"], _sealed(row))
        info = SecretInfo(
            name, row["current_version"], row["revision"], row["created_at"], row["updated_at"]
        )
        self._revealed(tenant_id, request_id, name, row["version"])
        if self._observer is not None:
            self._observer.secrets_read(1)
        return Secret(info, row["version"], row["revision"], value, row["version_created_at"])

    async def list_page(
        self,
        db: Database,
        tenant_id: UUID,
        *,
        prefix: str = "",
        after: str | None = None,
        limit: int = MAX_LIST_LIMIT,
    ) -> SecretPage:
        """One page of the tenant's secrets' metadata in name order, no values."""
        self._require_keys()
        high = prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else _ABOVE_ALL_NAMES
        rows = await db.fetch(
            queries().list_secrets, tenant_id, prefix, after or "", high, limit + 1
        )
        items = [_info(r["name"], r, r["version"]) for r in rows[:limit]]
        return SecretPage(items, len(rows) > limit)

    async def reveal(
        self, db: Database, tenant_id: UUID, *, limit: int, request_id: str
    ) -> list[Revealed]:
        """The first `limit` secrets by name with their current values; each reveal is
        logged. InvalidInput (field `limit`) when their values pass REVEAL_BYTES."""
        self._require_keys()
        rows = await db.fetch(queries().reveal_secrets, tenant_id, limit)
        if rows and rows[-1]["running_bytes"] > REVEAL_BYTES:
            fits = sum(1 for r in rows if r["running_bytes"] <= REVEAL_BYTES)
            raise InvalidInput(
                f"The values of the first {limit} secrets are over {REVEAL_BYTES} bytes; "
                f"ask for at most {max(fits, 1)} with 'limit'.",
                field="limit",
            )
        revealed = [
            Revealed(
                r["name"], r["version"], self._open(tenant_id, r["name"], r["version"], _sealed(r))
            )
            for r in rows
        ]
        for secret in revealed:
            self._revealed(tenant_id, request_id, secret.name, secret.version)
        if self._observer is not None:
            self._observer.secrets_read(len(revealed))
        return revealed

    async def delete(
        self,
        db: Database,
        tenant_id: UUID,
        name: str,
        *,
        if_match: list[int] | AnyVersion | None = None,
    ) -> bool:
        """Deletes the secret and every version of it; whether it existed. With `if_match`,
        only over one of those revisions (any, for "*"), else PreconditionFailed."""
        self._require_keys()
        revisions = None if if_match in (None, "*") else if_match
        deleted = await db.fetchval(
            queries().delete_secret, tenant_id, name, if_match is not None, revisions
        )
        if if_match is not None and not deleted:
            raise PreconditionFailed(
                "The secret's current version does not match.", field="if_match"
            )
        return bool(deleted)


async def master_key_usage(db: Database) -> dict[str, int]:
    """How many data keys each master key wraps (keys that wrap none are not listed)."""
    rows = await db.fetch(queries().master_key_usage)
    return {r["master_key_id"]: r["data_keys"] for r in rows}


@dataclass(frozen=True)
class Rotation:
    """A rotation (`kvs secrets rotate`): re-wrapping every data key under one master key."""

    id: int
    target_key_id: str
    requested_at: datetime
    finished_at: datetime | None
    passes: int
    rewrapped: int
    unreadable: int
    last_error: str | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> "Rotation":
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


async def request_rotation(db: Database, target_key_id: str) -> tuple[bool, Rotation]:
    """Asks the worker to re-wrap every data key under `target_key_id`: (whether this call
    started it, the rotation under way). A rotation under way is never replaced."""
    row = await db.fetchrow(queries().request_rotation, target_key_id)
    return row["started"], Rotation.of(row)


async def latest_rotation(db: Database) -> Rotation | None:
    row = await db.fetchrow(queries().latest_rotation)
    return None if row is None else Rotation.of(row)
