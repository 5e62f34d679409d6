"""quiva.ai's secrets surface at /secrets (openapi/quiva-secrets.yaml): the same secrets as
/v2/secrets, in quiva.ai's shapes. Its errors are `{"error": "<sentence>"}`, with the
statuses of quiva.ai's KV surface (service/api/quiva/errors.py)."""

import orjson
from aiohttp import hdrs, web

from service.api.quiva.errors import NOT_FOUND, ErrorWord, QuivaErrors
from service.domain import secrets
from service.domain.errors import SecretNotFound
from service.settings import Settings
from service.web.appkeys import DATABASE, ERRORS, REQUEST_ID, SECRETS
from service.web.auth import auth_middleware, tenant_of
from service.web.errors import BadRequest, error_middleware
from service.web.front import with_expect_handler
from service.web.parsing import parse_positive_int, read_json_object

PREFIX = "/secrets"
# quiva.ai's default; without reveal a listing may name every secret a tenant may hold.
DEFAULT_LIMIT = 100

# An answer that carries a value is kept by no cache, shared or private.
NO_STORE = {hdrs.CACHE_CONTROL: "no-store"}

routes = web.RouteTableDef()
_SUCCESS = orjson.dumps({"message": "success"})


class SecretErrors(QuivaErrors):
    """quiva.ai's secrets spec gives errors as one sentence; a missing secret's is its
    documented "resource not found"."""

    def body(self, err: Exception, word: ErrorWord, message: str) -> dict:
        return {"error": "resource not found" if word is NOT_FOUND else message}


def _json(body: object, headers: dict | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), headers=headers, content_type="application/json")


def _reveal(query) -> bool:
    raw = query.get("reveal", "false")
    if raw not in ("true", "false", "1", "0"):
        raise BadRequest("'reveal' must be true, false, 1 or 0.", parameter="reveal")
    return raw in ("true", "1")


@routes.get("", allow_head=False)
async def list_secrets(request: web.Request) -> web.Response:
    """listSecrets: the first `limit` secrets by name, with values when `reveal`."""
    store = request.config_dict[SECRETS]
    reveal = _reveal(request.query)
    limit = parse_positive_int(request.query, "limit", default=DEFAULT_LIMIT, cap=store.max_secrets)
    db, tenant_id = request.config_dict[DATABASE], tenant_of(request)
    if reveal:
        found = await store.reveal(db, tenant_id, limit=limit, request_id=request[REQUEST_ID])
        return _json([{"key": s.name, "value": s.value} for s in found], NO_STORE)
    items: list[dict] = []
    after = None
    while len(items) < limit:
        page = await store.list_page(
            db, tenant_id, after=after, limit=min(limit - len(items), secrets.MAX_LIST_LIMIT)
        )
        items.extend({"key": info.name} for info in page.items)
        if not page.has_more:
            break
        after = page.items[-1].name
    return _json(items)


@routes.put("")
async def put_secret(request: web.Request) -> web.Response:
    """putSecret: creates the secret or writes its next version."""
    body = await read_json_object(request)
    for field in ("key", "value"):
        if field not in body:
            raise BadRequest(f"invalid request format: '{field}' is required.")
    if not isinstance(body["key"], str):
        raise BadRequest("invalid request format: 'key' must be a string.")
    name = secrets.validate_name(body["key"])
    value = secrets.validate_value(body["value"])
    await request.config_dict[SECRETS].put(
        request.config_dict[DATABASE], tenant_of(request), name, value
    )
    return web.Response(body=_SUCCESS, content_type="application/json")


@routes.get(r"/{key:[\s\S]*}", allow_head=False)
async def get_secret(request: web.Request) -> web.Response:
    """getSecret: the current value."""
    name = secrets.validate_name(request.match_info["key"])
    secret = await request.config_dict[SECRETS].get(
        request.config_dict[DATABASE], tenant_of(request), name, request_id=request[REQUEST_ID]
    )
    return _json({"key": name, "value": secret.value}, NO_STORE)


@routes.delete(r"/{key:[\s\S]*}")
async def delete_secret(request: web.Request) -> web.Response:
    """deleteSecret: every version; 404 for a secret that does not exist."""
    name = secrets.validate_name(request.match_info["key"])
    deleted = await request.config_dict[SECRETS].delete(
        request.config_dict[DATABASE], tenant_of(request), name
    )
    if not deleted:
        raise SecretNotFound()
    return web.Response(body=_SUCCESS, content_type="application/json")


def create_surface(settings: Settings) -> web.Application:
    """The sub-application to mount at PREFIX."""
    shape = SecretErrors()
    app = web.Application(middlewares=[error_middleware(shape), auth_middleware])
    app[ERRORS] = shape
    app.add_routes(with_expect_handler(routes))
    return app
