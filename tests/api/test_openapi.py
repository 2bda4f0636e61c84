"""``api/openapi.py`` on small apps: what it adds to FastAPI's document, what it takes out,
and the mistakes it refuses (the whole server's document: ``test_basix.py`` and
``tests/interop/test_generated_client.py``)."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from switchboard.api import openapi, schemas


class Member(BaseModel):
    user: str
    position: int = 0


class Error(BaseModel):  # the name of one of ours, with another shape
    reason: str


def _app(*routers: APIRouter) -> FastAPI:
    app = FastAPI()
    for router in routers:
        app.include_router(router)
    openapi.install(app)
    return app


def test_operations_name_their_credentials_and_only_those_schemes_are_declared() -> None:
    api = APIRouter()

    @api.post("/admin/api/members", operation_id="admin_add_member")
    async def add_member(member: Member) -> None:
        """FastAPI validates this body itself: its 422 is answered in the envelope."""

    @api.get(
        "/admin/api/members",
        operation_id="admin_list_members",
        openapi_extra=openapi.operation("Done", security=openapi.ADMIN_TOKEN),
    )
    async def list_members() -> None: ...

    document = _app(api).openapi()
    schemes = document["components"]["securitySchemes"]
    assert schemes == {openapi.ADMIN_TOKEN: openapi.SECURITY_SCHEMES[openapi.ADMIN_TOKEN]}
    assert schemes[openapi.ADMIN_TOKEN]["scheme"] == "bearer"
    listing = document["paths"]["/admin/api/members"]["get"]
    assert listing["security"] == [{openapi.ADMIN_TOKEN: []}]
    assert set(listing["responses"]) == {"200", "429"}  # the throttle of auth.py
    adding = document["paths"]["/admin/api/members"]["post"]
    assert "422" not in adding["responses"]
    named = document["components"]["schemas"]
    assert "Member" in named and "HTTPValidationError" not in named
    assert "ValidationError" not in named
    assert set(schemas.COMPONENTS) <= set(named)


def test_a_route_included_after_install_is_documented_too() -> None:
    app = _app()
    assert app.openapi()["paths"] == {}
    late = APIRouter()

    @late.get("/later", operation_id="later", openapi_extra=openapi.operation("Health"))
    async def later() -> None: ...

    app.include_router(late)
    document = app.openapi()
    assert document["paths"]["/later"]["get"]["operationId"] == "later"
    assert openapi.DOMAIN_TOKEN in document["components"]["securitySchemes"]
    assert app.openapi() is document  # completed once, then served as it is


def test_a_schema_name_taken_twice_is_refused() -> None:
    api = APIRouter()

    @api.post("/report", operation_id="report")
    async def report(error: Error) -> None: ...

    with pytest.raises(ValueError, match="'Error'"):
        _app(api).openapi()


def test_an_unknown_security_scheme_is_refused() -> None:
    api = APIRouter()

    @api.get("/x", operation_id="x", openapi_extra=openapi.operation("Done", security="oauth"))
    async def x() -> None: ...

    with pytest.raises(ValueError, match="'oauth'"):
        _app(api).openapi()


def test_operation_documents_the_envelope_and_the_refusals() -> None:
    extra = openapi.call_method("CallGroupRequest", *openapi.GROUP_ERRORS)
    ok = extra["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["oneOf"][1] == {
        "$ref": "#/components/schemas/ErrorAnswer"
    }
    assert "group_not_found" in ok["description"]
    assert set(extra["responses"]) == {"200", "400", "413", "429", "503"}
    assert "Retry-After" in extra["responses"]["503"]["headers"]
    assert extra["security"] == [{openapi.DOMAIN_TOKEN: []}]
    health = openapi.operation("Health", security=None)
    assert health == {
        "responses": {
            "200": {
                "description": "Health",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}
                },
            }
        }
    }
