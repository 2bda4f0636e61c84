"""The OpenAPI document (``/openapi.json``, ``/docs``), written for client generators such as
openapi-python-client: a generated client's functions, classes and authentication come out
of it, so its names are ours, not FastAPI's path-derived ones.

The conventions every router follows, the admin API under ``/admin/api/`` included:

- An operation's ``operationId`` is the name of the method it is, given to the route
  decorator: ``operation_id="call_group"``, ``"hangup"`` (the admin API's:
  ``"admin_list_users"`` …). FastAPI's own (``call_group_basix_api_call_group_post``) would
  become a generated client's function names; ``tests/api/test_basix.py`` refuses them.
- A schema is named after what it is (``CallGroupRequest``, ``CallAnswer``, ``Error``) and
  lives in ``components.schemas``, referred to by ``$ref``. A handler that reads its raw body
  (so that errors stay in the envelope) describes itself with ``operation()``, which names
  schemas of a table in ``COMPONENT_TABLES`` (``schemas.COMPONENTS``: the Basix methods); a
  handler that takes pydantic models gets them named by FastAPI after their classes.
- An operation says which credentials it needs: ``operation(security=DOMAIN_TOKEN)`` (HTTP
  Basic ``DOMAIN:API_TOKEN``, the default) or ``ADMIN_TOKEN`` (HTTP Bearer, the admin API);
  ``install`` declares the schemes that operations use.
- FastAPI's request validation errors are answered in the envelope (HTTP 200,
  ``invalid_parameter``, by ``app.py``), never with 422: its 422 answers are left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from fastapi import FastAPI

from switchboard.api import admin_schemas, schemas
from switchboard.api.auth import API_THROTTLE
from switchboard.api.params import MAX_DIGITS
from switchboard.api.schemas import JsonSchema, ref

DOMAIN_TOKEN = "domainToken"
ADMIN_TOKEN = "adminToken"
SECURITY_SCHEMES: Mapping[str, JsonSchema] = {
    DOMAIN_TOKEN: {
        "type": "http",
        "scheme": "basic",
        "description": (
            "user: the domain's name; password: its API token (API §1). An address that "
            f"fails {API_THROTTLE.max_failures} times within {API_THROTTLE.window:g} s is refused "
            f"for {API_THROTTLE.block_seconds:g} s (429, too_many_failures). "
            "ws_cti (a WebSocket, not in this document) takes the same credentials, or "
            "user ws_ticket with a ticket from gen_ws_ticket as password."
        ),
    },
    ADMIN_TOKEN: {
        "type": "http",
        "scheme": "bearer",
        "description": "the server's admin token, for the admin API under /admin/api/",
    },
}
COMPONENT_TABLES: tuple[Mapping[str, JsonSchema], ...] = (
    schemas.COMPONENTS,
    admin_schemas.COMPONENTS,
)
_UNREADABLE = (
    f"invalid_json: the body is not JSON; invalid_parameter: a number in it has more than "
    f"{MAX_DIGITS} digits"
)
_THROTTLED = "too_many_failures: this address failed to authenticate too often"
_RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}},
}


def install(app: FastAPI) -> None:
    """Serve ``app``'s OpenAPI document completed by ``complete`` (FastAPI's documented way:
    replace ``app.openapi``). FastAPI builds its document when first asked for (and again
    once routes are added): each new one is completed once."""
    fastapi_document = app.openapi
    completed: JsonSchema | None = None

    def document() -> JsonSchema:
        nonlocal completed
        built = fastapi_document()
        if built is not completed:
            completed = complete(built)
        return completed

    app.openapi = document  # type: ignore[method-assign]


def complete(document: JsonSchema) -> JsonSchema:
    """FastAPI's document with our component schemas and security schemes, without 422s."""
    components = document.setdefault("components", {})
    _add_schemas(components.setdefault("schemas", {}))
    _drop_validation_errors(document)
    used = {
        name for op in _operations(document) for need in op.get("security", ()) for name in need
    }
    declared = components.setdefault("securitySchemes", {})
    for name in sorted(used - declared.keys()):
        if name not in SECURITY_SCHEMES:
            raise ValueError(f"security scheme {name!r} is not in SECURITY_SCHEMES")
        declared[name] = SECURITY_SCHEMES[name]
    if not declared:
        del components["securitySchemes"]
    return document


def operation(
    answer: str,
    *,
    body: str | None = None,
    security: str | None = DOMAIN_TOKEN,
    errors: Sequence[str] = (),
    refusals: Mapping[int, str] = MappingProxyType({}),
    headers: Sequence[JsonSchema] = (),
) -> JsonSchema:
    """``openapi_extra`` of a handler that reads its own body, in Basix's envelope: the body
    and the HTTP 200 answer by schema name, the answer or ``ErrorAnswer`` when it has
    ``errors`` (the ids it may answer), ``ErrorAnswer`` for each refusal (status: why), and
    for 400 and 413 when it takes a body and 429 when it checks credentials (a source that
    keeps failing is throttled, ``auth.py``)."""
    refused = {
        **({400: _UNREADABLE, 413: "body_too_large"} if body else {}),
        **({429: _THROTTLED} if security is not None else {}),
        **refusals,
    }
    success = ref(answer)
    described = answer
    if errors:
        success = {"oneOf": [ref(answer), ref("ErrorAnswer")]}
        described = f"{answer}, or ErrorAnswer with error.id one of: {', '.join(errors)}"
    responses = {"200": _response(described, success)}
    for status, why in sorted(refused.items()):
        responses[str(status)] = _response(why, ref("ErrorAnswer"))
        if status in (429, 503):
            responses[str(status)]["headers"] = _RETRY_AFTER
    extra: JsonSchema = {"responses": responses}
    if body is not None:
        extra["requestBody"] = {"required": True, "content": _json(ref(body))}
    if security is not None:
        extra["security"] = [{security: []}]
    if headers:
        extra["parameters"] = list(headers)
    return extra


IDEMPOTENCY_KEY: JsonSchema = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "a retried request with the same key within 24 h gets the first answer "
    "and starts nothing",
    "schema": {"type": "string", "maxLength": 255},
}
_CALL_ERRORS = (
    "authentication_required",
    "invalid_json",
    "missing_parameter",
    "invalid_parameter",
    "invalid_destination",
    "channel_limit_reached",
)
GROUP_ERRORS = ("group_not_found", "conflicting_group_selectors")
USER_ERRORS = ("user_not_found", "conflicting_user_selectors")


def call_method(body: str, *selector_errors: str) -> JsonSchema:
    """A Basix call method (API §2, §2c): answers the new channels' uuids; takes an
    ``Idempotency-Key``; refused with 503 while the server is overloaded."""
    return operation(
        "CallAnswer",
        body=body,
        errors=(*_CALL_ERRORS, *selector_errors),
        refusals={503: "overloaded: the server takes no new call for now"},
        headers=(IDEMPOTENCY_KEY,),
    )


def channel_command(body: str, *errors: str) -> JsonSchema:
    """A command on a live channel of the caller's domain (API §2b): answers ``Done``."""
    common = ("authentication_required", "invalid_json", "missing_parameter")
    return operation("Done", body=body, errors=(*common, "channel_not_found", *errors))


def _response(description: str, schema: JsonSchema) -> JsonSchema:
    return {"description": description, "content": _json(schema)}


def _json(schema: JsonSchema) -> JsonSchema:
    return {"application/json": {"schema": schema}}


def _add_schemas(named: dict[str, JsonSchema]) -> None:
    for table in COMPONENT_TABLES:
        for name, schema in table.items():
            if named.setdefault(name, schema) != schema:
                raise ValueError(f"two schemas are named {name!r}: rename one")


def _drop_validation_errors(document: JsonSchema) -> None:
    for op in _operations(document):
        op.get("responses", {}).pop("422", None)
    # FastAPI's schemas of a 422, the first referring to the second: kept if still used.
    for fastapi_schema in ("HTTPValidationError", "ValidationError"):
        if f'"{ref(fastapi_schema)["$ref"]}"' not in json.dumps(document):
            document["components"]["schemas"].pop(fastapi_schema, None)


def _operations(document: JsonSchema) -> Iterator[dict[str, Any]]:
    for path_item in document.get("paths", {}).values():
        yield from path_item.values()
