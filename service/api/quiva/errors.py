"""quiva.ai's error answer: `{"error": "<word>", "message": "<sentence>"}`.

`error` is one of quiva.ai's words (`validation_error`, `unauthorized`, `not_found`,
`internal_error`) with its status; what quiva.ai's spec has no word for (a wrong method, too
many failed authentications, a database that cannot answer now) has a word of this service's,
listed in openapi/quiva.yaml. `message` (an extension) says what went wrong, in this surface's
terms: buckets and entries.
"""

import json
from dataclasses import dataclass

from aiohttp import web

from service.domain import errors as domain
from service.web import errors as web_errors
from service.web.appkeys import REQUEST_ID, SETTINGS
from service.web.errors import MethodNotAllowed, TooManyFailures, normalized


@dataclass(frozen=True)
class ErrorWord:
    status: int
    word: str


VALIDATION_ERROR = ErrorWord(400, "validation_error")
UNAUTHORIZED = ErrorWord(401, "unauthorized")
NOT_FOUND = ErrorWord(404, "not_found")
METHOD_NOT_ALLOWED = ErrorWord(405, "method_not_allowed")
REQUEST_TIMEOUT = ErrorWord(408, "request_timeout")
TOO_MANY_REQUESTS = ErrorWord(429, "too_many_requests")
INTERNAL_ERROR = ErrorWord(500, "internal_error")
UNAVAILABLE = ErrorWord(503, "unavailable")
TIMEOUT = ErrorWord(504, "timeout")
INSUFFICIENT_STORAGE = ErrorWord(507, "insufficient_storage")

# Each failure's word, found by the exception's class or its nearest listed base. Everything
# a client sent that cannot be done is a validation_error, as quiva.ai's spec has it: an
# entry over the bucket's max_value_size and a full bucket included.
WORD_OF: dict[type[Exception], ErrorWord] = {
    web_errors.UnknownRoute: NOT_FOUND,
    web_errors.MethodNotAllowed: METHOD_NOT_ALLOWED,
    web_errors.BodyTimeout: REQUEST_TIMEOUT,
    web_errors.TooManyFailures: TOO_MANY_REQUESTS,
    web_errors.ShuttingDown: UNAVAILABLE,
    web_errors.BodyMemoryExhausted: UNAVAILABLE,
    web_errors.RequestError: VALIDATION_ERROR,
    domain.InvalidInput: VALIDATION_ERROR,
    domain.NotFound: NOT_FOUND,
    domain.NamespaceNameTaken: VALIDATION_ERROR,
    domain.NamespaceDeleting: NOT_FOUND,
    domain.StorageLimitReached: VALIDATION_ERROR,
    domain.ValueTooLarge: VALIDATION_ERROR,
    domain.AuthenticationFailed: UNAUTHORIZED,
    domain.SecretTooLarge: VALIDATION_ERROR,
    domain.SecretLimitReached: VALIDATION_ERROR,
    domain.SecretUnreadable: INTERNAL_ERROR,
    domain.SecretsUnavailable: UNAVAILABLE,
    domain.StoreFull: INSUFFICIENT_STORAGE,
    domain.StoreUnavailable: UNAVAILABLE,
    domain.StoreTimeout: TIMEOUT,
}

# A bucket that is not provision_ok, by its status: still being provisioned (worth a retry),
# broken, or gone.
_NOT_READY = {
    "pending": (UNAVAILABLE, "The bucket is still being provisioned; retry shortly."),
    "provision_failed": (
        INTERNAL_ERROR,
        "The bucket could not be provisioned; delete it and create it again.",
    ),
    "delete_failed": (INTERNAL_ERROR, "The bucket's deletion failed; delete it again."),
    "deleting": (NOT_FOUND, "The bucket does not exist."),
}


def word_and_message(err: Exception) -> tuple[ErrorWord, str]:
    """The word and message this surface answers a (normalized) failure with."""
    if isinstance(err, domain.NamespaceNotReady):
        return _NOT_READY.get(err.status, (INTERNAL_ERROR, err.message))
    if isinstance(err, domain.NamespaceNotFound | domain.NamespaceDeleting):
        return NOT_FOUND, "The bucket does not exist."
    if isinstance(err, domain.KeyNotFound):
        return NOT_FOUND, "The entry does not exist."
    if isinstance(err, domain.NamespaceNameTaken):
        taken = err.message.replace("namespace", "bucket")
        if err.differing is not None:
            taken = taken.rstrip(".") + "; change it with PUT /storage/kv/{bucket}."
        return VALIDATION_ERROR, taken
    if isinstance(err, domain.ValueTooLarge):
        return VALIDATION_ERROR, f"An entry in this bucket is at most {err.limit} bytes."
    if isinstance(err, domain.StorageLimitReached):
        return VALIDATION_ERROR, (
            f"The bucket is full: it holds {err.usage} bytes of its max_bytes {err.limit}, "
            f"and this entry needs {err.needed} more."
        )
    for kind in type(err).__mro__:
        word = WORD_OF.get(kind)
        if word is not None:
            return word, getattr(err, "message", None) or str(err)
    return INTERNAL_ERROR, "An unexpected error occurred."


class QuivaErrors:
    """The quiva.ai KV surface's ErrorShape (service/web/errors.py)."""

    def body(self, err: Exception, word: ErrorWord, message: str) -> dict:
        return {"error": word.word, "message": message}

    def response(self, request: web.Request, err: Exception) -> web.Response:
        err = normalized(request, err)
        word, message = word_and_message(err)
        headers = {"X-Request-Id": request[REQUEST_ID]}
        if word.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if word.status == 503:
            headers["Retry-After"] = str(request.config_dict[SETTINGS].retry_after_seconds)
        if isinstance(err, TooManyFailures):
            headers["Retry-After"] = str(err.retry_after)
        if isinstance(err, MethodNotAllowed) and err.allow is not None:
            headers["Allow"] = err.allow
        body = self.body(err, word, message)
        response = web.json_response(body, status=word.status, headers=headers, dumps=json.dumps)
        if word.status == 408:
            response.force_close()  # the rest of the body may still be on its way
        return response
