"""The Telnyx surface's error-code table, and which failure gets which code.

10xxx codes are Telnyx's general API codes; 75xxx are this service's own. README.md shows the
same table (a test keeps the two identical).
"""

from dataclasses import dataclass

from service.domain import errors as domain
from service.web import errors as web


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    title: str


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
STORAGE_LIMIT_REACHED = ErrorCode("75012", 409, "Namespace storage limit reached")
PRECONDITION_FAILED = ErrorCode("75007", 412, "Precondition failed")
PAYLOAD_TOO_LARGE = ErrorCode("75004", 413, "Payload too large")
UNSUPPORTED_MEDIA_TYPE = ErrorCode("10014", 415, "Unsupported media type")
EXPECTATION_FAILED = ErrorCode("75009", 417, "Expectation failed")
INVALID_TTL = ErrorCode("75008", 422, "Invalid TTL")
BATCH_REFUSED = ErrorCode("75016", 422, "Batch limits exceeded")
TOO_MANY_REQUESTS = ErrorCode("10011", 429, "Too many requests")
UNEXPECTED_ERROR = ErrorCode("10007", 500, "Unexpected error")
SERVICE_UNAVAILABLE = ErrorCode("75005", 503, "Service unavailable")
REQUEST_TIMEOUT = ErrorCode("10008", 504, "Request timeout")
SECRET_LIMIT_REACHED = ErrorCode("75013", 409, "Secret limit reached")
SECRET_UNREADABLE = ErrorCode("75014", 500, "Secret unreadable")
SECRETS_UNAVAILABLE = ErrorCode("75015", 503, "Secrets unavailable")
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
    STORAGE_LIMIT_REACHED,
    SECRET_LIMIT_REACHED,
    PRECONDITION_FAILED,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    EXPECTATION_FAILED,
    INVALID_TTL,
    BATCH_REFUSED,
    TOO_MANY_REQUESTS,
    UNEXPECTED_ERROR,
    SECRET_UNREADABLE,
    SERVICE_UNAVAILABLE,
    SECRETS_UNAVAILABLE,
    REQUEST_TIMEOUT,
    INSUFFICIENT_STORAGE,
)


class InvalidTtl(web.BadRequest):
    """`ttl_secs` (or the unsupported `ttl`) is not a TTL this surface takes."""


# Each failure's code, found by the exception's class or its nearest listed base.
CODE_OF: dict[type[Exception], ErrorCode] = {
    InvalidTtl: INVALID_TTL,
    web.MissingField: MISSING_PARAMETER,
    web.InvalidId: INVALID_ID,
    web.UnknownRoute: NOT_FOUND,
    web.MethodNotAllowed: METHOD_NOT_ALLOWED,
    web.BodyTooLarge: PAYLOAD_TOO_LARGE,
    web.UnsupportedEncoding: UNSUPPORTED_MEDIA_TYPE,
    web.ExpectationFailed: EXPECTATION_FAILED,
    web.BodyTimeout: BODY_TIMEOUT,
    web.TooManyFailures: TOO_MANY_REQUESTS,
    web.ShuttingDown: SERVICE_UNAVAILABLE,
    web.BodyMemoryExhausted: SERVICE_UNAVAILABLE,
    web.RequestError: BAD_REQUEST,
    domain.InvalidKey: INVALID_KEY,
    domain.InvalidInput: BAD_REQUEST,
    domain.NotFound: NOT_FOUND,
    domain.NamespaceNameTaken: DUPLICATE_RESOURCE,
    domain.NamespaceDeleting: NAMESPACE_DELETING,
    domain.NamespaceNotReady: NAMESPACE_NOT_READY,
    domain.TtlNotSupported: TTL_NOT_SUPPORTED,
    domain.StorageLimitReached: STORAGE_LIMIT_REACHED,
    domain.PreconditionFailed: PRECONDITION_FAILED,
    domain.ValueTooLarge: PAYLOAD_TOO_LARGE,
    domain.ReadTooLarge: PAYLOAD_TOO_LARGE,
    domain.TransactionTooLarge: PAYLOAD_TOO_LARGE,
    domain.BatchRefused: BATCH_REFUSED,
    domain.SecretTooLarge: PAYLOAD_TOO_LARGE,
    domain.SecretLimitReached: SECRET_LIMIT_REACHED,
    domain.SecretUnreadable: SECRET_UNREADABLE,
    domain.SecretsUnavailable: SECRETS_UNAVAILABLE,
    domain.AuthenticationFailed: AUTHENTICATION_FAILED,
    domain.StoreFull: INSUFFICIENT_STORAGE,
    domain.StoreUnavailable: SERVICE_UNAVAILABLE,
    domain.StoreTimeout: REQUEST_TIMEOUT,
}


def code_of(err: Exception) -> ErrorCode:
    for kind in type(err).__mro__:
        code = CODE_OF.get(kind)
        if code is not None:
            return code
    return UNEXPECTED_ERROR
