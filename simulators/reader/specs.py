"""How a tag is described in a scenario file or a control message, validated with pydantic.

A tag is given either by the library item it carries (``item_id`` plus optional ISO 28560
fields, encoded with :mod:`hardware.tags`) or raw (``uid`` and ``memory`` as hex). Registers
(``afi``, ``dsfid``, ``eas``) and locks may be set in both forms. Hex strings may contain
spaces or colons. A bad description fails with a message naming the field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from simulators.reader.tags import SimTag

__all__ = ["SpecError", "TagSpec", "describe_validation_error", "parse_hex"]


class SpecError(ValueError):
    """A tag, step or control message is malformed; the message names what is wrong."""


def parse_hex(text: str, what: str) -> bytes:
    """Parse hex digits (spaces, colons and dashes allowed); raise SpecError naming ``what``."""
    cleaned = "".join(ch for ch in text if ch not in " :-\t\n")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise SpecError(f"{what} is not hex: {text!r}") from None


def describe_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """Turn pydantic's error list into one line per problem: ``where: what``."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        where = f"{prefix}.{where}" if prefix and where else (prefix or where)
        lines.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
    return "; ".join(lines)


class TagSpec(BaseModel):
    """A virtual tag: a library item (``item_id``) or raw memory (``uid`` + ``memory``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item_id: str | None = Field(default=None, min_length=1)
    model: Literal["2", "3"] = "2"
    isil: str | None = None
    title: str | None = None
    shelf_location: str | None = None
    type_of_usage: int | None = Field(default=None, ge=0, le=255)
    set_info: tuple[int, int] | None = None
    secured: bool = True

    uid: str | None = None
    memory: str | None = None
    block_size: int | None = Field(default=None, ge=1, le=32)
    block_count: int | None = Field(default=None, ge=1, le=256)

    afi: int | None = Field(default=None, ge=0, le=255)
    dsfid: int | None = Field(default=None, ge=0, le=255)
    eas: bool | None = None
    locked_blocks: list[int] = Field(default_factory=list)
    afi_locked: bool = False
    dsfid_locked: bool = False
    eas_locked: bool = False

    @field_validator("uid")
    @classmethod
    def _uid_is_8_bytes(cls, value: str | None) -> str | None:
        if value is None:
            return None
        raw = parse_hex(value, "uid")
        if len(raw) != 8:
            raise ValueError(f"uid must be 8 bytes (16 hex digits), got {len(raw)} bytes")
        return raw.hex().upper()

    @field_validator("memory")
    @classmethod
    def _memory_is_hex(cls, value: str | None) -> str | None:
        return None if value is None else parse_hex(value, "memory").hex().upper()

    @model_validator(mode="after")
    def _one_form(self) -> TagSpec:
        if self.item_id is None and self.uid is None:
            raise ValueError("a tag needs item_id (a library item) or uid (raw memory)")
        if self.item_id is not None and self.memory is not None:
            raise ValueError("give either item_id or memory, not both")
        return self

    def build(self) -> SimTag:
        """Create the tag this spec describes; SpecError if the content does not fit the chip."""
        uid = bytes.fromhex(self.uid) if self.uid is not None else None
        try:
            if self.item_id is not None:
                tag = self._build_item(uid)
            else:
                assert uid is not None  # guaranteed by _one_form
                tag = SimTag(
                    uid=uid,
                    memory=bytearray.fromhex(self.memory or ""),
                    block_size=self.block_size or 4,
                    block_count=self.block_count or 28,
                )
            if self.afi is not None:
                tag.afi = self.afi
            if self.dsfid is not None:
                tag.dsfid = self.dsfid
            if self.eas is not None:
                tag.eas = self.eas
            tag.afi_locked, tag.dsfid_locked = self.afi_locked, self.dsfid_locked
            tag.eas_locked = self.eas_locked
            tag.locked_blocks = set(self.locked_blocks)
            tag.__post_init__()  # re-check the locks against the memory size
        except ValueError as exc:
            raise SpecError(f"tag {self.item_id or self.uid}: {exc}") from exc
        return tag

    def _build_item(self, uid: bytes | None) -> SimTag:
        assert self.item_id is not None
        fields: dict[str, Any] = {}
        for name in ("shelf_location", "type_of_usage", "set_info"):
            value = getattr(self, name)
            if value is not None:
                fields[name] = value
        if self.block_size is not None:
            fields["block_size"] = self.block_size
        if self.block_count is not None:
            fields["block_count"] = self.block_count
        return SimTag.from_item(
            self.item_id,
            model=self.model,
            isil=self.isil,
            title=self.title,
            secured=self.secured,
            uid=uid,
            **fields,
        )

    @classmethod
    def parse(cls, data: Any, where: str = "tag") -> TagSpec:
        """Validate plain data (from JSON, YAML or TOML) into a spec; SpecError names the field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SpecError(describe_validation_error(exc, where)) from None
