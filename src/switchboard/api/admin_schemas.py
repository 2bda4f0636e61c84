"""The provisioning API's schemas for OpenAPI: the config file's own tables, as pydantic
describes them (``config.DomainConfig`` …), and the answers' envelope."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from switchboard.api.schemas import JsonSchema, ref
from switchboard.config import DomainConfig, GroupConfig, TrunkConfig, UserConfig

_TABLES: tuple[type[BaseModel], ...] = (DomainConfig, GroupConfig, TrunkConfig, UserConfig)
_MODELS: list[tuple[type[BaseModel], Literal["validation"]]] = [
    (model, "validation") for model in _TABLES
]
_, _DEFS = models_json_schema(_MODELS, ref_template="#/components/schemas/{model}")

COMPONENTS: dict[str, JsonSchema] = {
    **_DEFS["$defs"],
    "Directory": {
        "type": "object",
        "description": "the whole directory: the config file's [[domains]] tables",
        "required": ["domains"],
        "properties": {"domains": {"type": "array", "items": ref("DomainConfig")}},
    },
    "Changes": {
        "type": "object",
        "description": "the keys to change, as in the config file's table (PATCH)",
        "additionalProperties": True,
    },
    "GroupMemberRequest": {
        "type": "object",
        "required": ["user"],
        "properties": {
            "user": {"type": "string", "description": "a user of the domain"},
            "position": {
                "type": "integer",
                "minimum": 1,
                "description": "its place in the hunting order (1 = first; default last)",
            },
        },
    },
    "AdminAnswer": {
        "type": "object",
        "description": (
            "result_code 0, the directory's version now, and the resource: domain, user, group,"
            " trunk, a list of them, or deleted (secrets are never answered)"
        ),
        "required": ["result_code", "version"],
        "properties": {
            "result_code": {"type": "integer", "enum": [0]},
            "version": {"type": "integer"},
        },
        "additionalProperties": True,
    },
}
