"""What the domain refuses, in its own terms: no HTTP status, header or vendor code.

Each exception's `field` names the offending input as the domain calls it (`namespace`, `key`,
`name`, `ttl`, `if_match`, `if_absent`, `prefix`…); every API surface renders it in its own
terms (a path parameter, a header, a JSON pointer) and gives the exception its own code.
"""


class DomainError(Exception):
    """A refusal the caller can act on; the message is one sentence for a person."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    """A value the domain cannot take (a key bound with other characters, say)."""


class InvalidKey(InvalidInput):
    def __init__(self, message: str) -> None:
        super().__init__(message, field="key")


class NotFound(DomainError):
    pass


class NamespaceNotFound(NotFound):
    """No such namespace for this tenant: another tenant's looks exactly the same."""

    def __init__(self) -> None:
        super().__init__("The namespace does not exist.", field="namespace")


class KeyNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("The key does not exist.", field="key")


class NamespaceNameTaken(DomainError):
    """A live namespace has the name (`differing`: and another value of that setting)."""

    def __init__(self, name: str, *, differing: str | None = None) -> None:
        other = "" if differing is None else f", with another {differing}"
        super().__init__(f"A namespace named '{name}' exists already{other}.", field="name")
        self.differing = differing


class NamespaceDeleting(DomainError):
    def __init__(self, namespace_id: object) -> None:
        super().__init__(f"Namespace {namespace_id} is being deleted.", field="namespace")


class NamespaceNotReady(DomainError):
    def __init__(self, status: str) -> None:
        super().__init__(
            f"The namespace is {status}; keys can be used once it is provision_ok.",
            field="namespace",
        )
        self.status = status


class TtlNotSupported(DomainError):
    def __init__(self, field: str = "ttl") -> None:
        super().__init__("This namespace was created without TTL support.", field=field)


class PreconditionFailed(DomainError):
    """A conditional write or delete whose condition (`if_match` or `if_absent`) failed."""


class ValueTooLarge(DomainError):
    def __init__(self, limit: int, field: str = "value") -> None:
        super().__init__(f"A value in this namespace is at most {limit} bytes.", field=field)
        self.limit = limit


class ReadTooLarge(DomainError):
    """A batch read whose values total more than one answer may hold; nothing was read."""

    def __init__(self, found: int, limit: int) -> None:
        super().__init__(
            f"The values found total {found} bytes, more than the {limit} one answer holds; "
            "read fewer keys at a time.",
            field="/keys",
        )
        self.found, self.limit = found, limit


class BatchRefused(DomainError):
    """A batch read or transaction outside the rules (too many keys, checks or operations; a
    key twice); `field` is a JSON pointer into the request."""


class TransactionTooLarge(DomainError):
    """A transaction whose values total more than a transaction may carry."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"A transaction's values total at most {limit} bytes.", field="/operations"
        )
        self.limit = limit


class CheckFailed(PreconditionFailed):
    """A transaction's check (`index`, from 0) did not hold; nothing was written."""

    def __init__(self, index: int, key: str, expected: int | None) -> None:
        state = "exists" if expected is None else f'is no longer at etag "{expected}"'
        super().__init__(
            f"Check {index} failed: key '{key}' {state}; nothing was written.",
            field=f"/checks/{index}",
        )
        self.index = index


class StorageLimitReached(DomainError):
    """A write would take the namespace's value bytes over its max_bytes; nothing changed."""

    def __init__(self, usage: int, needed: int, limit: int) -> None:
        super().__init__(
            f"Namespace storage limit reached: the namespace holds {usage} bytes of its "
            f"max_bytes {limit}, and this write needs {needed} more.",
            field="namespace",
        )
        self.usage, self.needed, self.limit = usage, needed, limit


class SecretNotFound(NotFound):
    """No such secret for this tenant: another tenant's looks exactly the same."""

    def __init__(self) -> None:
        super().__init__("The secret does not exist.", field="secret")


class SecretVersionNotFound(NotFound):
    def __init__(self, version: int, current: int, kept: int) -> None:
        if version > current:
            message = f"The secret has no version {version}: its current version is {current}."
        else:
            message = f"Version {version} of the secret was destroyed: the last {kept} are kept."
        super().__init__(message, field="version")


class SecretTooLarge(DomainError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"A secret's value is at most {limit} bytes of UTF-8.", field="secret_value"
        )
        self.limit = limit


class SecretLimitReached(DomainError):
    """The tenant holds as many secrets as it may; nothing was stored."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"Secret limit reached: a tenant holds at most {limit} secrets; delete one first.",
            field="secret",
        )
        self.limit = limit


class SecretsUnavailable(DomainError):
    """Secrets cannot be sealed or opened here now: no master keys are configured, or not
    the one a secret needs. Nothing was read or stored."""


class SecretUnreadable(DomainError):
    """A stored secret failed to open: its row was altered or moved from another. Its value
    is never returned."""

    def __init__(self) -> None:
        super().__init__(
            "The secret's stored value failed its integrity check and cannot be read; "
            "it was altered or copied from another secret. Write it again.",
            field="secret",
        )


class AuthenticationFailed(DomainError):
    """The credentials name no tenant: malformed, unknown or revoked."""


class StoreUnavailable(DomainError):
    """The database cannot be reached right now; nothing was done. Retry shortly."""


class StoreTimeout(DomainError):
    """The database did not answer in time; a write's outcome is unknown."""


class StoreFull(StoreUnavailable):
    """The database's disk is full: the write was not made; reads still work."""


# The database failing as a whole rather than one statement: the worker records no error
# against the job it was running (its lease runs out and it is claimed again) and pauses.
STORE_DOWN = (StoreUnavailable, StoreTimeout)
