"""The provisioning API (ours): the directory changed live under ``/admin/api/``.

Authenticated by ``Authorization: Bearer <server.admin_token>`` (off without a token),
throttled with the domain tokens' throttle. Resources are the config file's tables, in the
file's own shape and with its rules and error messages (``config.validate_config``):

- ``/directory``: every domain with everything in it (GET; PUT replaces it all);
- ``/domains``, ``/domains/{domain}``: a domain's own settings (its users, groups and
  trunks are sub-resources; POST may create them with it);
- ``/domains/{domain}/users|groups|trunks`` and ``…/{name}``: GET, POST (create), PUT
  (replace), PATCH (change the keys given), DELETE;
- ``/domains/{domain}/groups/{group}/members``: POST ``{"user", "position"}`` puts a
  member in the hunt order (1 = first; default last), DELETE ``…/members/{user}``.

Secrets (``api_token``, ``callback_secret``, ``sip_password``, a trunk's ``password``) are
write-only: never answered, and kept when a PUT or PATCH leaves them out. Every change is
stored, then in force for the next call (``directory_sync``); a call in progress keeps what
it started with. Answers: HTTP 200 with ``result_code`` 0 and the resource, or the Basix
error envelope with an HTTP status saying why (400 ``invalid_config`` with the file's
message, 401, 404 ``not_found``, 409 ``already_exists``, 429).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from switchboard.api import openapi
from switchboard.api.auth import ApiAuth
from switchboard.api.basix import json_object
from switchboard.api.errors import ApiError, error_response
from switchboard.config import Config, ConfigError, directory_data, with_domains
from switchboard.directory import Directory
from switchboard.directory_sync import DirectorySync

log = logging.getLogger("switchboard.api")

SECRETS = {
    "domain": ("api_token", "callback_secret"),
    "users": ("sip_password",),
    "groups": (),
    "trunks": ("password",),
}
KINDS = ("users", "groups", "trunks")
_NOUN = {"users": "user", "groups": "group", "trunks": "trunk"}
Data = dict[str, Any]


class Services(Protocol):
    api_auth: ApiAuth
    directory: Directory
    directory_sync: DirectorySync
    admin_token: str | None


_REFUSED = {
    401: "authentication_required: no or a wrong admin token (or the API is off)",
    404: "not_found: no such domain, entry or member",
}
_WRITE_REFUSED = {
    **_REFUSED,
    400: "invalid_config (the config file's rule and message), invalid_parameter, invalid_json",
}


def _doc(body: str | None = None, *, creates: bool = False) -> dict[str, Any]:
    """The OpenAPI description of an admin operation (``openapi.operation``)."""
    refusals = dict(_WRITE_REFUSED if body is not None else _REFUSED)
    if creates:
        refusals[409] = "already_exists: an entry of that name exists"
    return openapi.operation(
        "AdminAnswer", body=body, security=openapi.ADMIN_TOKEN, refusals=refusals
    )


def router(services: Services) -> APIRouter:
    api = APIRouter(prefix="/admin/api", tags=["provisioning"])

    def authorise(request: Request) -> None:
        source = request.client.host if request.client else "unknown"
        auth = services.api_auth
        auth.check_not_blocked(source)
        token = services.admin_token
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = token or "x" * 32
        if (
            scheme.lower() != "bearer"
            or not hmac.compare_digest(given.encode(), expected.encode())
            or token is None
        ):
            auth.failed(source, "admin API")
            raise ApiError("authentication_required", "Bearer ADMIN_TOKEN is required", 401)

    async def read(request: Request, answer: Callable[[Config], Data]) -> JSONResponse:
        try:
            authorise(request)
            return _ok(services, answer(services.directory.config))
        except ApiError as error:
            return error_response(error)

    async def write(
        request: Request, edit: Callable[[list[Data], Data], Data], *, body: bool = True
    ) -> JSONResponse:
        """Apply ``edit(domains, body)`` (TOML-shaped tables, changed in place; it answers
        the changed resource) to the directory in force, validated as the file is."""
        try:
            authorise(request)
            given = await json_object(request) if body else {}
            answered: list[Data] = []

            def change(config: Config) -> Config:
                domains = directory_data(config)
                answered.append(edit(domains, given))
                try:
                    return with_domains(config, domains, "directory")
                except ConfigError as exc:
                    raise ApiError("invalid_config", str(exc), 400) from None

            await services.directory_sync.change(change)
            return _ok(services, answered[0])
        except ApiError as error:
            return error_response(error)

    # -- the whole directory ----------------------------------------------------------------

    @api.get("/directory", operation_id="admin_get_directory", openapi_extra=_doc())
    async def get_directory(request: Request) -> JSONResponse:
        """Every domain with its users, groups and trunks (secrets left out)."""
        return await read(request, lambda c: {"domains": [_shown(d) for d in directory_data(c)]})

    @api.put("/directory", operation_id="admin_replace_directory", openapi_extra=_doc("Directory"))
    async def replace_directory(request: Request) -> JSONResponse:
        """Replace the whole directory (``{"domains": [...]}``, as the file's tables)."""

        def edit(domains: list[Data], body: Data) -> Data:
            wanted = body.get("domains")
            if not isinstance(wanted, list) or not all(isinstance(d, dict) for d in wanted):
                raise ApiError("invalid_parameter", "domains must be a list of tables", 400)
            old = {d.get("name"): d for d in domains}
            for domain in wanted:
                _keep_secrets(domain, old.get(domain.get("name")), "domain")
                before = old.get(domain.get("name"), {})
                for kind in KINDS:
                    mine = {e.get("name"): e for e in before.get(kind, [])}
                    for entry in domain.get(kind, []):
                        if isinstance(entry, dict):
                            _keep_secrets(entry, mine.get(entry.get("name")), kind)
            domains[:] = wanted
            return {"domains": [_shown(d) for d in wanted]}

        return await write(request, edit)

    # -- domains -----------------------------------------------------------------------------

    @api.get("/domains", operation_id="admin_list_domains", openapi_extra=_doc())
    async def list_domains(request: Request) -> JSONResponse:
        return await read(request, lambda c: {"domains": [_settings(d) for d in directory_data(c)]})

    @api.post(
        "/domains",
        operation_id="admin_create_domain",
        openapi_extra=_doc("DomainConfig", creates=True),
    )
    async def create_domain(request: Request) -> JSONResponse:
        """A new domain (its users, groups and trunks may come with it)."""

        def edit(domains: list[Data], body: Data) -> Data:
            name = str(body.get("name", "")).lower()
            if any(d.get("name") == name for d in domains):
                raise ApiError("already_exists", f"domain {name!r} exists", 409)
            domains.append(body)
            return {"domain": _settings(body)}

        return await write(request, edit)

    @api.get("/domains/{domain}", operation_id="admin_get_domain", openapi_extra=_doc())
    async def get_domain(request: Request, domain: str) -> JSONResponse:
        return await read(
            request, lambda c: {"domain": _settings(_domain(directory_data(c), domain))}
        )

    @api.put(
        "/domains/{domain}",
        operation_id="admin_replace_domain",
        openapi_extra=_doc("DomainConfig"),
    )
    async def replace_domain(request: Request, domain: str) -> JSONResponse:
        """Replace a domain's own settings; its users, groups and trunks stay."""
        return await write(request, lambda ds, body: _set_domain(ds, domain, body, replace=True))

    @api.patch(
        "/domains/{domain}",
        operation_id="admin_update_domain",
        openapi_extra=_doc("Changes"),
    )
    async def update_domain(request: Request, domain: str) -> JSONResponse:
        return await write(request, lambda ds, body: _set_domain(ds, domain, body, replace=False))

    @api.delete("/domains/{domain}", operation_id="admin_delete_domain", openapi_extra=_doc())
    async def delete_domain(request: Request, domain: str) -> JSONResponse:
        def edit(domains: list[Data], _body: Data) -> Data:
            domains.remove(_domain(domains, domain))
            return {"deleted": domain.lower()}

        return await write(request, edit, body=False)

    # -- users, groups, trunks ---------------------------------------------------------------

    def entries(kind: str) -> None:
        noun = _NOUN[kind]

        async def list_entries(request: Request, domain: str) -> JSONResponse:
            return await read(
                request,
                lambda c: {
                    kind: [_hide(e, kind) for e in _domain(directory_data(c), domain).get(kind, [])]
                },
            )

        async def create_entry(request: Request, domain: str) -> JSONResponse:
            def edit(domains: list[Data], body: Data) -> Data:
                table = _domain(domains, domain).setdefault(kind, [])
                name = body.get("name")
                if any(e.get("name") == name for e in table):
                    raise ApiError("already_exists", f"{noun} {name!r} exists in {domain}", 409)
                if kind != "trunks" and "id" not in body:  # the next free id, for convenience
                    body["id"] = max((int(e.get("id", 0)) for e in table), default=0) + 1
                table.append(body)
                return {noun: _hide(body, kind)}

            return await write(request, edit)

        async def get_entry(request: Request, domain: str, name: str) -> JSONResponse:
            return await read(
                request,
                lambda c: {noun: _hide(_entry(_domain_of(c, domain), kind, name), kind)},
            )

        async def replace_entry(request: Request, domain: str, name: str) -> JSONResponse:
            return await write(
                request, lambda ds, body: _set_entry(ds, domain, kind, name, body, replace=True)
            )

        async def update_entry(request: Request, domain: str, name: str) -> JSONResponse:
            return await write(
                request, lambda ds, body: _set_entry(ds, domain, kind, name, body, replace=False)
            )

        async def delete_entry(request: Request, domain: str, name: str) -> JSONResponse:
            def edit(domains: list[Data], _body: Data) -> Data:
                table = _domain(domains, domain)
                table[kind].remove(_entry(table, kind, name))
                if kind == "users":  # a user leaves the groups it was a member of
                    for group in table.get("groups", []):
                        if name in group.get("members", []):
                            group["members"].remove(name)
                return {"deleted": name}

            return await write(request, edit, body=False)

        base = f"/domains/{{domain}}/{kind}"
        item = f"{base}/{{name}}"
        table = f"{noun.capitalize()}Config"
        routes = (
            (base, list_entries, "GET", f"admin_list_{kind}", _doc()),
            (base, create_entry, "POST", f"admin_create_{noun}", _doc(table, creates=True)),
            (item, get_entry, "GET", f"admin_get_{noun}", _doc()),
            (item, replace_entry, "PUT", f"admin_replace_{noun}", _doc(table)),
            (item, update_entry, "PATCH", f"admin_update_{noun}", _doc("Changes")),
            (item, delete_entry, "DELETE", f"admin_delete_{noun}", _doc()),
        )
        for path, endpoint, method, name, doc in routes:
            api.add_api_route(
                path, endpoint, methods=[method], operation_id=name, openapi_extra=doc
            )

    for kind in KINDS:
        entries(kind)

    # -- group members, in hunting order -------------------------------------------------------

    @api.post(
        "/domains/{domain}/groups/{group}/members",
        operation_id="admin_add_member",
        openapi_extra=_doc("GroupMemberRequest"),
    )
    async def add_member(request: Request, domain: str, group: str) -> JSONResponse:
        """``{"user": NAME, "position": N}``: N = 1 hunts it first (default: last); a
        member already there moves."""

        def edit(domains: list[Data], body: Data) -> Data:
            entry = _entry(_domain(domains, domain), "groups", group)
            user, position = body.get("user"), body.get("position")
            if not isinstance(user, str):
                raise ApiError("invalid_parameter", "user must be a user name", 400)
            members: list[str] = [m for m in entry.get("members", []) if m != user]
            if position is None:
                position = len(members) + 1
            if isinstance(position, bool) or not isinstance(position, int) or position < 1:
                raise ApiError("invalid_parameter", "position must be 1 or more", 400)
            members.insert(position - 1, user)
            entry["members"] = members
            return {"group": entry}

        return await write(request, edit)

    @api.delete(
        "/domains/{domain}/groups/{group}/members/{user}",
        operation_id="admin_remove_member",
        openapi_extra=_doc(),
    )
    async def remove_member(request: Request, domain: str, group: str, user: str) -> JSONResponse:
        def edit(domains: list[Data], _body: Data) -> Data:
            entry = _entry(_domain(domains, domain), "groups", group)
            if user not in entry.get("members", []):
                raise ApiError("not_found", f"{user!r} is not a member of {group!r}", 404)
            entry["members"].remove(user)
            return {"group": entry}

        return await write(request, edit, body=False)

    return api


def _ok(services: Services, answer: Data) -> JSONResponse:
    return JSONResponse({"result_code": 0, "version": services.directory_sync.version, **answer})


def _domain(domains: list[Data], name: str) -> Data:
    found = next((d for d in domains if d.get("name") == name.lower()), None)
    if found is None:
        raise ApiError("not_found", f"no domain {name!r}", 404)
    return found


def _domain_of(config: Config, name: str) -> Data:
    return _domain(directory_data(config), name)


def _entry(domain: Data, kind: str, name: str) -> Data:
    found: Data | None = next((e for e in domain.get(kind, []) if e.get("name") == name), None)
    if found is None:
        raise ApiError("not_found", f"no {_NOUN[kind]} {name!r} in {domain['name']}", 404)
    return found


def _set_domain(domains: list[Data], name: str, body: Data, *, replace: bool) -> Data:
    domain = _domain(domains, name)
    if any(kind in body for kind in KINDS):
        raise ApiError("invalid_parameter", "users, groups and trunks have their own paths", 400)
    nested = {kind: domain[kind] for kind in KINDS if kind in domain}
    updated = dict(body) if replace else {**domain, **body}
    _keep_secrets(updated, domain, "domain")
    updated.setdefault("name", domain["name"])
    domain.clear()
    domain.update(updated, **nested)
    return {"domain": _settings(domain)}


def _set_entry(
    domains: list[Data], domain: str, kind: str, name: str, body: Data, *, replace: bool
) -> Data:
    table = _domain(domains, domain)
    entry = _entry(table, kind, name)
    updated = dict(body) if replace else {**entry, **body}
    _keep_secrets(updated, entry, kind)
    updated.setdefault("name", name)
    renamed = updated["name"] != name
    entry.clear()
    entry.update(updated)
    if renamed and kind == "users":  # the hunt order follows the user's new name
        for group in table.get("groups", []):
            group["members"] = [
                updated["name"] if m == name else m for m in group.get("members", [])
            ]
    return {_NOUN[kind]: _hide(entry, kind)}


def _keep_secrets(updated: Data, before: Data | None, kind: str) -> None:
    for key in SECRETS[kind]:
        if key not in updated and before is not None and key in before:
            updated[key] = before[key]


def _hide(entry: Data, kind: str) -> Data:
    return {key: value for key, value in entry.items() if key not in SECRETS[kind]}


def _settings(domain: Data) -> Data:
    return {k: v for k, v in _hide(domain, "domain").items() if k not in KINDS}


def _shown(domain: Data) -> Data:
    shown = _hide(domain, "domain")
    for kind in KINDS:
        if kind in domain:
            shown[kind] = [_hide(entry, kind) for entry in domain[kind]]
    return shown
