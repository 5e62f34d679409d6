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
MISSING_PARAMETER = ErrorCode("10004", 400, "Missing required parameter")
INVALID_ID = ErrorCode("10006", 400, "Invalid ID")
AUTHENTICATION_FAILED = ErrorCode("10009", 401, "Authentication failed")
NOT_FOUND = ErrorCode("10005", 404, "Resource not found")
METHOD_NOT_ALLOWED = ErrorCode("75001", 405, "Method not allowed")
DUPLICATE_RESOURCE = ErrorCode("10012", 409, "Duplicate resource")
NAMESPACE_DELETING = ErrorCode("75003", 409, "Namespace is being deleted")
PAYLOAD_TOO_LARGE = ErrorCode("75004", 413, "Payload too large")
UNEXPECTED_ERROR = ErrorCode("10007", 500, "Unexpected error")
SERVICE_UNAVAILABLE = ErrorCode("75005", 503, "Service unavailable")
REQUEST_TIMEOUT = ErrorCode("10008", 504, "Request timeout")

ERROR_CODES: tuple[ErrorCode, ...] = (
    BAD_REQUEST,
    MISSING_PARAMETER,
    INVALID_ID,
    AUTHENTICATION_FAILED,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    DUPLICATE_RESOURCE,
    NAMESPACE_DELETING,
    PAYLOAD_TOO_LARGE,
    UNEXPECTED_ERROR,
    SERVICE_UNAVAILABLE,
    REQUEST_TIMEOUT,
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


class DatabaseUnavailable(ServiceError):
    error = SERVICE_UNAVAILABLE


class DatabaseTimeout(ServiceError):
    error = REQUEST_TIMEOUT
