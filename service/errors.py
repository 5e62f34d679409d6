"""Domain exceptions and the one table that maps them to HTTP status and error code."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    title: str


# The documented error-code table. 10xxx codes are Telnyx's general API codes; 75xxx are this
# service's own. README.md shows the same table (a test keeps the two identical).
BAD_REQUEST = ErrorCode("10015", 400, "Bad request")
INVALID_KEY = ErrorCode("10015", 400, "Invalid key")
MISSING_PARAMETER = ErrorCode("10004", 400, "Missing required parameter")
INVALID_ID = ErrorCode("10006", 400, "Invalid ID")
AUTHENTICATION_FAILED = ErrorCode("10009", 401, "Authentication failed")
NOT_FOUND = ErrorCode("10005", 404, "Resource not found")
METHOD_NOT_ALLOWED = ErrorCode("75001", 405, "Method not allowed")
BODY_TIMEOUT = ErrorCode("75010", 408, "Request body timeout")
DUPLICATE_RESOURCE = ErrorCode("10012", 409, "Duplicate resource")
NAMESPACE_NOT_READY = ErrorCode("75002", 409, "Namespace not ready")
NAMESPACE_DELETING = ErrorCode("75003", 409, "Namespace is being deleted")
TTL_NOT_SUPPORTED = ErrorCode("75006", 409, "TTL not supported")
PRECONDITION_FAILED = ErrorCode("75007", 412, "Precondition failed")
PAYLOAD_TOO_LARGE = ErrorCode("75004", 413, "Payload too large")
UNSUPPORTED_MEDIA_TYPE = ErrorCode("10014", 415, "Unsupported media type")
EXPECTATION_FAILED = ErrorCode("75009", 417, "Expectation failed")
INVALID_TTL = ErrorCode("75008", 422, "Invalid TTL")
TOO_MANY_REQUESTS = ErrorCode("10011", 429, "Too many requests")
UNEXPECTED_ERROR = ErrorCode("10007", 500, "Unexpected error")
SERVICE_UNAVAILABLE = ErrorCode("75005", 503, "Service unavailable")
REQUEST_TIMEOUT = ErrorCode("10008", 504, "Request timeout")
INSUFFICIENT_STORAGE = ErrorCode("75011", 507, "Insufficient storage")

ERROR_CODES: tuple[ErrorCode, ...] = (
    BAD_REQUEST,
    INVALID_KEY,
    MISSING_PARAMETER,
    INVALID_ID,
    AUTHENTICATION_FAILED,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    BODY_TIMEOUT,
    DUPLICATE_RESOURCE,
    NAMESPACE_NOT_READY,
    NAMESPACE_DELETING,
    TTL_NOT_SUPPORTED,
    PRECONDITION_FAILED,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    EXPECTATION_FAILED,
    INVALID_TTL,
    TOO_MANY_REQUESTS,
    UNEXPECTED_ERROR,
    SERVICE_UNAVAILABLE,
    REQUEST_TIMEOUT,
    INSUFFICIENT_STORAGE,
)


class ServiceError(Exception):
    """An error the API answers with its documented status, code and a human sentence."""

    error: ErrorCode = UNEXPECTED_ERROR

    def __init__(
        self, detail: str, *, pointer: str | None = None, parameter: str | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.pointer = pointer
        self.parameter = parameter


class BadRequest(ServiceError):
    error = BAD_REQUEST


class MissingParameter(ServiceError):
    error = MISSING_PARAMETER


class InvalidKey(ServiceError):
    error = INVALID_KEY


class InvalidId(ServiceError):
    error = INVALID_ID


class AuthenticationFailed(ServiceError):
    error = AUTHENTICATION_FAILED


class NotFound(ServiceError):
    error = NOT_FOUND


class NamespaceNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("The namespace does not exist.", parameter="id")


class NamespaceNameTaken(ServiceError):
    error = DUPLICATE_RESOURCE


class NamespaceDeleting(ServiceError):
    error = NAMESPACE_DELETING


class NamespaceNotReady(ServiceError):
    error = NAMESPACE_NOT_READY


class TtlNotSupported(ServiceError):
    error = TTL_NOT_SUPPORTED


class KeyNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("The key does not exist.", parameter="key")


class PreconditionFailed(ServiceError):
    error = PRECONDITION_FAILED


class PayloadTooLarge(ServiceError):
    error = PAYLOAD_TOO_LARGE


class UnsupportedMediaType(ServiceError):
    error = UNSUPPORTED_MEDIA_TYPE


class InvalidTtl(ServiceError):
    error = INVALID_TTL


class ShuttingDown(ServiceError):
    error = SERVICE_UNAVAILABLE


class DatabaseUnavailable(ServiceError):
    error = SERVICE_UNAVAILABLE


class DatabaseTimeout(ServiceError):
    error = REQUEST_TIMEOUT


class DatabaseFull(ServiceError):
    """The database's disk is full: the write was not made; reads still work."""

    error = INSUFFICIENT_STORAGE


# The database failing as a whole rather than one statement: the worker records no error
# against the job it was running (its lease runs out and it is claimed again) and pauses.
DATABASE_DOWN = (DatabaseUnavailable, DatabaseTimeout, DatabaseFull)


class TooManyFailures(ServiceError):
    error = TOO_MANY_REQUESTS

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many failed authentications from this address; retry later.")
        self.retry_after = retry_after


class BodyTimeout(ServiceError):
    error = BODY_TIMEOUT
