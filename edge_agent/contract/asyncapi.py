"""Generate the contract's JSON Schemas and its AsyncAPI 3.0 document from the models.

The committed copies (``docs/schemas/*.json`` and ``docs/asyncapi.yaml``) are outputs of
:func:`export`; a test regenerates them and fails when they differ, so the documents can
never drift from the code that validates messages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .base import SCHEMA_VERSION
from .central import (
    CACHE_NAMES,
    REQUEST_OPS,
    CacheUpdate,
    Command,
    DeliveryReceipt,
    DeviceStatus,
    Request,
    Response,
)
from .events import EVENT_KINDS, Envelope

__all__ = ["MESSAGES", "asyncapi_document", "export", "json_schemas"]

#: Top-level messages: file stem -> model.
MESSAGES: dict[str, type[BaseModel]] = {
    "envelope": Envelope,
    "device-status": DeviceStatus,
    "delivery-receipt": DeliveryReceipt,
    "request": Request,
    "response": Response,
    "cache-update": CacheUpdate,
    "command": Command,
}

_JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schemas() -> dict[str, dict[str, Any]]:
    """One standalone JSON Schema (draft 2020-12) per top-level message."""
    out = {}
    for stem, model in MESSAGES.items():
        schema = model.model_json_schema(mode="validation")
        out[stem] = {
            "$schema": _JSON_SCHEMA_DIALECT,
            "$id": f"https://libedge.invalid/schemas/v{SCHEMA_VERSION}/{stem}.json",
            **schema,
        }
    return out


def _asyncapi_schema(node: Any) -> Any:
    """Adapt pydantic's JSON Schema to an AsyncAPI Schema Object.

    AsyncAPI's ``discriminator`` is the property name (a string), where pydantic writes
    OpenAPI's object form; everything else is a subset AsyncAPI accepts as it is.
    """
    if isinstance(node, dict):
        out = {key: _asyncapi_schema(value) for key, value in node.items()}
        disc = out.get("discriminator")
        if isinstance(disc, dict):
            out["discriminator"] = disc["propertyName"]
        return out
    if isinstance(node, list):
        return [_asyncapi_schema(item) for item in node]
    return node


def _component_schemas() -> dict[str, Any]:
    _, top = models_json_schema(
        [(model, "validation") for model in MESSAGES.values()],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = top.get("$defs", {})
    return {name: _asyncapi_schema(schema) for name, schema in sorted(schemas.items())}


def _param(description: str, enum: tuple[str, ...] | None = None) -> dict[str, Any]:
    param: dict[str, Any] = {"description": description}
    if enum:
        param["enum"] = list(enum)
    return param


def _channel(address: str, description: str, message: str, **params: dict[str, Any]) -> Any:
    parameters = {
        "libraryId": _param("The library's id (site.library_id)."),
        "deviceId": _param("The device's id (site.device_id); also its MQTT username."),
        **params,
    }
    return {
        "address": address,
        "description": description,
        "parameters": parameters,
        "messages": {message: {"$ref": f"#/components/messages/{message}"}},
    }


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the device <-> central contract, from the device's side."""
    root = "libedge/v1/{libraryId}/{deviceId}"
    channels = {
        "deviceEvent": _channel(
            f"{root}/up/event/{{kind}}",
            "Events, QoS 1, from the device's durable outbox; stored once per (deviceId, seq).",
            "envelope",
            kind=_param("The event kind (payload.type).", EVENT_KINDS),
        ),
        "deviceStatus": _channel(
            f"{root}/up/status",
            "Retained device health; the Last Will carries online=false.",
            "deviceStatus",
        ),
        "deviceRequest": _channel(
            f"{root}/up/request/{{op}}",
            "Questions to central (MQTT v5 response topic + correlation data).",
            "request",
            op=_param("The question asked (body.op).", REQUEST_OPS),
        ),
        "deviceResponse": _channel(
            f"{root}/down/response", "Central's answers to the device's requests.", "response"
        ),
        "deliveryReceipt": _channel(
            f"{root}/down/receipt",
            "Central's acknowledgements, sent after its own commit.",
            "deliveryReceipt",
        ),
        "cacheUpdate": _channel(
            f"{root}/down/cache/{{cache}}",
            "Retained caches for offline decisions.",
            "cacheUpdate",
            cache=_param("Which cache.", CACHE_NAMES),
        ),
        "deviceCommand": _channel(f"{root}/down/command", "Staff commands.", "command"),
    }
    messages = {
        "envelope": ("Envelope", "An event in its envelope"),
        "deviceStatus": ("DeviceStatus", "Device status"),
        "request": ("Request", "A request to central"),
        "response": ("Response", "Central's response"),
        "deliveryReceipt": ("DeliveryReceipt", "Delivery receipt"),
        "cacheUpdate": ("CacheUpdate", "Cache update"),
        "command": ("Command", "Staff command"),
    }

    def operation(action: str, channel: str, summary: str) -> dict[str, Any]:
        message = next(iter(channels[channel]["messages"]))
        return {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": summary,
            "messages": [{"$ref": f"#/channels/{channel}/messages/{message}"}],
        }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "libedge device <-> central library system",
            "version": str(SCHEMA_VERSION),
            "description": (
                "What libedge kiosks and gates exchange with the central library system over "
                "MQTT v5. Operations are described from the device's side. Every device owns "
                "the subtree libedge/v1/{libraryId}/{deviceId}: it writes 'up' and reads 'down'."
            ),
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "site": {
                "host": "localhost:1883",
                "protocol": "mqtt",
                "protocolVersion": "5",
                "description": "The broker in front of the central system.",
            }
        },
        "channels": channels,
        "operations": {
            "publishEvent": operation("send", "deviceEvent", "Publish an event from the outbox."),
            "publishStatus": operation("send", "deviceStatus", "Publish the device's status."),
            "askCentral": operation("send", "deviceRequest", "Ask central a question."),
            "receiveResponse": operation("receive", "deviceResponse", "Receive an answer."),
            "receiveReceipt": operation("receive", "deliveryReceipt", "Receive a receipt."),
            "receiveCache": operation("receive", "cacheUpdate", "Receive a cache update."),
            "receiveCommand": operation("receive", "deviceCommand", "Receive a staff command."),
        },
        "components": {
            "messages": {
                key: {
                    "name": schema,
                    "title": title,
                    "contentType": "application/json",
                    "payload": {"$ref": f"#/components/schemas/{schema}"},
                }
                for key, (schema, title) in messages.items()
            },
            "schemas": _component_schemas(),
        },
    }


def render_asyncapi() -> str:
    """The AsyncAPI document as YAML text (stable key order, for a byte-exact comparison)."""
    return yaml.safe_dump(
        asyncapi_document(),
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=False,
    )


def render_schema(schema: dict[str, Any]) -> str:
    """One JSON Schema as text."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def export(directory: Path) -> list[Path]:
    """Write every JSON Schema and the AsyncAPI document into ``directory``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, schema in json_schemas().items():
        path = directory / f"{stem}.schema.json"
        path.write_text(render_schema(schema), encoding="utf-8")
        written.append(path)
    path = directory / "asyncapi.yaml"
    path.write_text(render_asyncapi(), encoding="utf-8")
    written.append(path)
    return written
