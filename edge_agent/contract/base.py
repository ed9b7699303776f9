"""Shared pieces of the contract: the schema version, identifiers, strict decoding.

Every message on the wire is a pydantic model that forbids unknown keys and carries
``schema_version``; :func:`decode` turns bytes into a model or raises :class:`ContractError`
whose message names each wrong field by its path (``payload.item_id: Field required``).
A schema version this software does not know is rejected, never guessed.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "SCHEMA_VERSION",
    "ContractError",
    "DeviceId",
    "ItemId",
    "LibraryId",
    "PatronId",
    "TagUid",
    "Versioned",
    "WireModel",
    "decode",
    "describe_errors",
]

#: The version of this contract. A change that a consumer of version 1 could misread bumps it.
SCHEMA_VERSION = 1

_IDENT = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
LibraryId = Annotated[str, Field(pattern=_IDENT, description="Library id, as in topics.")]
DeviceId = Annotated[str, Field(pattern=_IDENT, description="Device id; its MQTT username.")]
ItemId = Annotated[
    str, Field(min_length=1, max_length=64, description="Primary item identifier (barcode).")
]
PatronId = Annotated[str, Field(min_length=1, max_length=64, description="Library card number.")]
TagUid = Annotated[
    str,
    Field(pattern=r"^[0-9A-F]{16}$", description="ISO 15693 UID, 16 hex digits, MSB first."),
]


class ContractError(ValueError):
    """A message does not follow the contract; the text names every wrong field."""


class WireModel(BaseModel):
    """Base of every model on the wire: unknown keys are errors and values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Versioned(WireModel):
    """A top-level message: it says which version of the contract it follows."""

    schema_version: int = Field(SCHEMA_VERSION, description="Contract version; only 1 exists.")

    @field_validator("schema_version", mode="before")
    @classmethod
    def _known_version(cls, value: Any) -> Any:
        # Checked before anything else so that a message from a newer contract gets this
        # clear refusal instead of a list of confusing field errors.
        if value != SCHEMA_VERSION:
            raise ValueError(
                f"unsupported schema_version {value!r}; this software understands {SCHEMA_VERSION}"
            )
        return value


M = TypeVar("M", bound=BaseModel)


def describe_errors(exc: ValidationError) -> str:
    """One line naming every wrong field by its dotted path."""
    parts = []
    for err in exc.errors(include_url=False):
        path = ".".join(str(p) for p in err["loc"]) or "(message)"
        parts.append(f"{path}: {err['msg']}")
    return "; ".join(parts)


def decode(model: type[M], data: bytes | str) -> M:
    """Parse JSON bytes into ``model`` or raise ContractError naming the wrong fields."""
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        raise ContractError(f"{model.__name__}: {describe_errors(exc)}") from exc
