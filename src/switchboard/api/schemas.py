"""OpenAPI schemas of the Basix-compatible call methods (``api.basix``): their bodies, the
envelope of their answers and errors (API §1, §2, §2c)."""

from __future__ import annotations

from typing import Any

from switchboard.api.selectors import GROUP_SELECTORS, USER_SELECTORS

ENVELOPE_ERROR = {
    "type": "object",
    "properties": {
        "result_code": {"type": "integer", "enum": [500]},
        "error": {
            "type": "object",
            "properties": {"id": {"type": "string"}, "description": {"type": "string"}},
        },
    },
}
DESTINATION_SCHEMA = {
    "oneOf": [
        {"type": "string", "example": "{name=James Hudson}0312341234"},
        {
            "type": "object",
            "required": ["called_number"],
            "properties": {
                "called_number": {"type": "string"},
                "calling_number": {"type": "string"},
                "end_user": {
                    "type": "object",
                    "properties": {
                        key: {"type": ["string", "integer"]}
                        for key in ("id", "name", "organization", "avatar", "prefecture")
                    },
                },
            },
        },
    ]
}
CALL_GROUP_BODY = {
    "type": "object",
    "properties": {
        **{key: {"type": ["string", "integer"]} for key in GROUP_SELECTORS},
        "destination": DESTINATION_SCHEMA,
        "answer_timeout": {"type": "integer", "minimum": 1, "maximum": 3600},
        "member_answer_timeout": {"type": "integer", "minimum": 1, "maximum": 3600},
        "calling_name": {"type": "string", "maxLength": 64},
        "callback_url": {"type": "string", "format": "uri"},
        "call_events_url": {"type": "string", "format": "uri"},
        "strategy": {"type": "string", "enum": ["hunt", "ring"]},
    },
    "required": ["destination"],
}


CALL_USER_BODY = {
    "type": "object",
    "properties": {
        **{key: {"type": ["string", "integer"]} for key in (*USER_SELECTORS, *GROUP_SELECTORS)},
        "group_resolver": {"type": "string", "enum": ["*"]},
        "destination": DESTINATION_SCHEMA,
        "answer_timeout": {"type": "integer", "minimum": 1, "maximum": 3600, "default": 180},
        "auto_answer": {"type": "boolean", "default": False},
        "calling_name": {"type": "string", "maxLength": 64},
        "callback_url": {"type": "string", "format": "uri"},
        "call_events_url": {"type": "string", "format": "uri"},
    },
    "required": ["destination"],
}


CALL_EXTERNAL_BODY = {
    "type": "object",
    "properties": {
        **{key: {"type": ["string", "integer"]} for key in GROUP_SELECTORS},
        "target": DESTINATION_SCHEMA,
        "destination": {"type": "string", "description": "a user, group or extension"},
        "answer_timeout": {"type": "integer", "minimum": 1, "maximum": 3600, "default": 180},
        "calling_name": {"type": "string", "maxLength": 64},
        "callback_url": {"type": "string", "format": "uri"},
        "call_events_url": {"type": "string", "format": "uri"},
    },
    "required": ["target", "destination"],
}
INITIATE_CALL_BODY = {
    "type": "object",
    "properties": {
        "user_name": {"type": "string"},
        "pstn_number": {"type": "string"},
        "destination": DESTINATION_SCHEMA,
        "ani": {"type": "string", "description": "caller ID toward the PSTN"},
        "group_name": {"type": "string"},
        "answer_timeout": {"type": "integer", "minimum": 1, "maximum": 3600, "default": 180},
        "calling_name": {"type": "string", "maxLength": 64},
        "callback_url": {"type": "string", "format": "uri"},
        "call_events_url": {"type": "string", "format": "uri"},
    },
    "required": ["destination"],
}


CALL_GROUP_ANSWER = {
    "type": "object",
    "properties": {
        "result_code": {"type": "integer", "enum": [0]},
        "uuids": {"type": "array", "items": {"type": "string"}},
    },
}

DONE = {"type": "object", "properties": {"result_code": {"type": "integer", "enum": [0]}}}
HANGUP_BODY = {
    "type": "object",
    "required": ["uuid"],
    "properties": {"uuid": {"type": "string"}},
}
TRANSFER_BODY = {
    "type": "object",
    "required": ["uuid"],
    "properties": {
        "uuid": {"type": "string", "description": "the channel released; its peer moves"},
        "user_id": {"type": ["integer", "string"]},
        "user_name": {"type": "string"},
        "destination": DESTINATION_SCHEMA,
    },
}
PARK_BODY = {
    "type": "object",
    "required": ["uuid"],
    "properties": {
        "uuid": {"type": "string", "description": "the channel released; its peer waits"},
        "timeout": {"type": "integer", "minimum": 1, "maximum": 3600, "default": 60},
    },
}


def documented(body: dict[str, Any], success: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI for handlers that read the raw body: the Basix envelope, success or error."""
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {
            "200": {
                "description": "result_code 0 on success, 500 with error.id otherwise",
                "content": {"application/json": {"schema": {"oneOf": [success, ENVELOPE_ERROR]}}},
            }
        },
    }
