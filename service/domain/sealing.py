"""Envelope encryption for secret values, with AES-256-GCM (the `cryptography` package).

Each value is sealed under a data key of its own, 256 random bits; the data key is sealed
("wrapped") under a master key. Both seals are bound, as associated data, to the value's
owner: its tenant, name and version (and the wrap to its master key's id too), so a ciphertext
moved to another row fails to open rather than reading as another secret. A sealed blob is
the 12-byte random nonce followed by the AEAD output (ciphertext and 16-byte tag).

Master keys come from the setting KVS_SECRETS_MASTER_KEYS, `id:base64,id:base64,…`: the first
wraps new data keys, every one unwraps. Nothing here puts key material, a value or a
ciphertext into an exception's message or a repr.
"""

import base64
import binascii
import os
import re
from dataclasses import dataclass, field
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

_NONCE_BYTES = 12
_KEY_BYTES = 32
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class InvalidMasterKeys(ValueError):
    """The master-key setting cannot be read; the message never quotes it."""


class MasterKeyMissing(Exception):
    """A data key is wrapped by a master key this process does not hold."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"master key {key_id!r} is not configured")
        self.key_id = key_id


class SealBroken(Exception):
    """A seal failed to open: the blob was altered, or belongs to another row."""


@dataclass(frozen=True)
class MasterKey:
    id: str
    aead: AESGCM = field(repr=False)


class MasterKeys:
    """The configured master keys, in the setting's order: `current` wraps new data keys."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise InvalidMasterKeys("no master key is given")
        self._keys = {key_id: MasterKey(key_id, AESGCM(material)) for key_id, material in keys}
        self.current = self._keys[keys[0][0]]

    @classmethod
    def parse(cls, text: str) -> "MasterKeys":
        """The keys of a setting `id:base64,…`; InvalidMasterKeys saying which entry is wrong
        (by position, never by content)."""
        keys: list[tuple[str, bytes]] = []
        for position, entry in enumerate(filter(None, (e.strip() for e in text.split(","))), 1):
            key_id, sep, encoded = entry.partition(":")
            if not sep or not _KEY_ID.fullmatch(key_id):
                raise InvalidMasterKeys(
                    f"master key {position} is not 'id:base64' with an id of 1 to 64 "
                    "characters from A-Z a-z 0-9 . _ -"
                )
            try:
                material = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidMasterKeys(f"master key {key_id!r} is not valid base64") from None
            if len(material) != _KEY_BYTES:
                raise InvalidMasterKeys(
                    f"master key {key_id!r} is {len(material)} bytes; AES-256 takes 32"
                )
            if any(key_id == known for known, _ in keys):
                raise InvalidMasterKeys(f"master key id {key_id!r} is given twice")
            keys.append((key_id, material))
        return cls(keys)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def get(self, key_id: str) -> MasterKey:
        """The master key of that id; MasterKeyMissing when it is not configured."""
        key = self._keys.get(key_id)
        if key is None:
            raise MasterKeyMissing(key_id)
        return key


def new_master_key(key_id: str) -> str:
    """A fresh master key as one entry of the setting: `id:base64`."""
    if not _KEY_ID.fullmatch(key_id):
        raise InvalidMasterKeys("a master key id is 1 to 64 characters from A-Z a-z 0-9 . _ -")
    return f"{key_id}:{base64.b64encode(os.urandom(_KEY_BYTES)).decode()}"


@dataclass(frozen=True, slots=True)
class Sealed:
    """A sealed value as it is stored: never the plaintext."""

    master_key_id: str
    wrapped_key: bytes = field(repr=False)
    ciphertext: bytes = field(repr=False)


def binding(tenant_id: UUID, name: str, version: int) -> bytes:
    """The associated data that ties a seal to its row. Names never hold NUL."""
    return b"kvs-secret\x00v1\x00%s\x00%d\x00%s" % (tenant_id.bytes, version, name.encode())


def _seal(aead: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + aead.encrypt(nonce, plaintext, aad)


def _open(aead: AESGCM, blob: bytes, aad: bytes) -> bytes:
    try:
        return aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], aad)
    except (InvalidTag, ValueError):
        raise SealBroken() from None


def _wrap_aad(aad: bytes, key_id: str) -> bytes:
    return aad + b"\x00wrap\x00" + key_id.encode()


def seal(keys: MasterKeys, aad: bytes, plaintext: bytes) -> Sealed:
    """`plaintext` sealed under a new data key, wrapped by the current master key."""
    data_key = AESGCM.generate_key(bit_length=256)
    master = keys.current
    return Sealed(
        master.id,
        _seal(master.aead, data_key, _wrap_aad(aad, master.id)),
        _seal(AESGCM(data_key), plaintext, aad),
    )


def unwrap(keys: MasterKeys, aad: bytes, sealed: Sealed) -> bytes:
    """The data key of `sealed`; MasterKeyMissing or SealBroken."""
    master = keys.get(sealed.master_key_id)
    return _open(master.aead, sealed.wrapped_key, _wrap_aad(aad, master.id))


def open_sealed(keys: MasterKeys, aad: bytes, sealed: Sealed) -> bytes:
    """The plaintext of `sealed`; MasterKeyMissing or SealBroken, never other bytes."""
    return _open(AESGCM(unwrap(keys, aad, sealed)), sealed.ciphertext, aad)


def rewrap(keys: MasterKeys, aad: bytes, sealed: Sealed, target: MasterKey) -> Sealed:
    """`sealed` with its data key wrapped by `target` instead; the value's seal is left as
    it is (a rotation reads no value)."""
    data_key = unwrap(keys, aad, sealed)
    wrapped = _seal(target.aead, data_key, _wrap_aad(aad, target.id))
    return Sealed(target.id, wrapped, sealed.ciphertext)


def configured_keys(setting: SecretStr | None) -> MasterKeys | None:
    """The master keys of KVS_SECRETS_MASTER_KEYS; None when it is unset or empty."""
    if setting is None or not setting.get_secret_value().strip():
        return None
    return MasterKeys.parse(setting.get_secret_value())
