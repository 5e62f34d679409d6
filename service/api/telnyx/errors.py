"""The Telnyx surface's error answer: `{"errors": [{code, title, detail, source, meta}]}`.

`source.pointer` names the offending JSON field, `source.parameter` the path, query or header
parameter. A domain error names its field in the domain's terms; FIELDS says what this
surface calls each.
"""

import json

from aiohttp import web

from service.api.telnyx.codes import UNEXPECTED_ERROR, ErrorCode, code_of
from service.domain.errors import DomainError
from service.web.appkeys import REQUEST_ID, SETTINGS
from service.web.errors import MethodNotAllowed, RequestError, TooManyFailures, normalized

# Domain field -> ("pointer" or "parameter", its name on this surface). A field not listed is
# a parameter of the same name, and one that is a JSON pointer ("/checks/0") is that pointer.
FIELDS = {
    "namespace": ("parameter", "id"),
    "name": ("pointer", "/name"),
    "description": ("pointer", "/description"),
    "max_bytes": ("pointer", "/max_bytes"),
    "max_value_size": ("pointer", "/max_value_size"),
    "ttl": ("parameter", "ttl_secs"),
    "if_match": ("parameter", "If-Match"),
    "if_absent": ("parameter", "If-None-Match"),
    "value": (None, None),
    "secret": ("parameter", "name"),
    "secret_value": ("pointer", "/value"),
    "version": ("parameter", "version"),
}


def error_document(
    error: ErrorCode,
    detail: str,
    request_id: str,
    *,
    pointer: str | None = None,
    parameter: str | None = None,
) -> dict:
    """The contract's JSON body for one error."""
    entry: dict = {"code": error.code, "title": error.title, "detail": detail}
    if pointer is not None:
        entry["source"] = {"pointer": pointer}
    elif parameter is not None:
        entry["source"] = {"parameter": parameter}
    entry["meta"] = {"request_id": request_id}
    return {"errors": [entry]}


def _source(err: Exception) -> tuple[str | None, str | None]:
    """(pointer, parameter) of a failure."""
    if isinstance(err, RequestError):
        return err.pointer, err.parameter
    if isinstance(err, DomainError) and err.field is not None:
        if err.field.startswith("/") or err.field == "":
            return err.field, None  # a JSON pointer into the request body
        where, name = FIELDS.get(err.field, ("parameter", err.field))
        return (name, None) if where == "pointer" else (None, name)
    return None, None


class TelnyxErrors:
    """The Telnyx surface's ErrorShape (service/web/errors.py)."""

    def response(self, request: web.Request, err: Exception) -> web.Response:
        err = normalized(request, err)
        error = code_of(err)
        if error is UNEXPECTED_ERROR:
            detail = "An unexpected error occurred."
        else:
            detail = getattr(err, "message", None) or str(err)
        pointer, parameter = _source(err)
        headers = {}
        if error.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if error.status == 503:
            headers["Retry-After"] = str(request.config_dict[SETTINGS].retry_after_seconds)
        if isinstance(err, TooManyFailures):
            headers["Retry-After"] = str(err.retry_after)
        if isinstance(err, MethodNotAllowed) and err.allow is not None:
            headers["Allow"] = err.allow
        request_id = request[REQUEST_ID]
        headers["X-Request-Id"] = request_id
        body = error_document(error, detail, request_id, pointer=pointer, parameter=parameter)
        response = web.json_response(body, status=error.status, headers=headers, dumps=json.dumps)
        if error.status == 408:
            response.force_close()  # the rest of the body may still be on its way
        return response
