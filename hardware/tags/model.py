"""Typed values for library RFID tags: data models, item data, security state and the Tag.

Everything here is plain data with no I/O. The codecs in :mod:`hardware.tags.iso28560_2` and
:mod:`hardware.tags.iso28560_3` turn tag memory into :class:`ItemData` and back;
:func:`hardware.tags.decode.decode_tag` wraps the result, the chip registers and the security
state into a :class:`Tag`.

Exceptions: :class:`TagDataError` (a ``ValueError``) is the only error the codecs raise; its
message says what is wrong and where (byte offset, OID, compaction scheme).

``ItemData.type_of_usage`` is always the ISO 28560-1 byte, whatever model the tag uses: the
primary qualifier in the high nibble, the secondary qualifier in the low nibble (0x13 =
circulating, not for offline issue). An ISO 28560-3 tag stores only the primary qualifier, so it
decodes to ``primary << 4`` (a -3 "circulating" tag gives 0x10).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

__all__ = [
    "DataModel",
    "ItemData",
    "Oid",
    "SecurityConfig",
    "SecurityState",
    "SetInfo",
    "Tag",
    "TagDataError",
    "UsagePrimary",
    "security_state",
]


class TagDataError(ValueError):
    """A codec could not decode or encode tag data; the message says what and where."""


class DataModel(StrEnum):
    """Which data model a tag's user memory follows."""

    ISO28560_2 = "iso28560-2"
    ISO28560_3 = "iso28560-3"
    BLANK = "blank"
    UNKNOWN = "unknown"


class SecurityState(StrEnum):
    """Whether an item may leave the library, as its tag says."""

    SECURED = "secured"
    UNSECURED = "unsecured"
    UNKNOWN = "unknown"


class Oid(IntEnum):
    """ISO 28560-1 relative object identifiers of the data elements (usable as ``other`` keys)."""

    PRIMARY_ITEM_ID = 1
    CONTENT_PARAMETER = 2
    OWNER_INSTITUTION = 3
    SET_INFORMATION = 4
    TYPE_OF_USAGE = 5
    SHELF_LOCATION = 6
    ONIX_MEDIA_FORMAT = 7
    MARC_MEDIA_FORMAT = 8
    SUPPLIER_ID = 9
    ORDER_NUMBER = 10
    ILL_BORROWING_INSTITUTION = 11
    ILL_TRANSACTION_NUMBER = 12
    GS1_PRODUCT_ID = 13
    ALTERNATIVE_UNIQUE_ITEM_ID = 14
    LOCAL_DATA_A = 15
    LOCAL_DATA_B = 16
    TITLE = 17
    PRODUCT_ID_LOCAL = 18
    MEDIA_FORMAT_OTHER = 19
    SUPPLY_CHAIN_STAGE = 20
    SUPPLIER_INVOICE_NUMBER = 21
    ALTERNATIVE_ITEM_ID = 22
    ALTERNATIVE_OWNER_INSTITUTION = 23
    SUBSIDIARY_OF_OWNER = 24
    ALTERNATIVE_ILL_BORROWING_INSTITUTION = 25
    LOCAL_DATA_C = 26


class UsagePrimary(IntEnum):
    """Primary qualifier of the type of usage (high nibble of the ISO 28560-1 byte)."""

    ACQUISITION = 0
    CIRCULATING = 1
    NOT_FOR_CIRCULATION = 2
    NO_INFORMATION = 6
    DISCARDED = 7
    PATRON_CARD = 8
    LIBRARY_EQUIPMENT = 9


# Secondary qualifiers of a circulating item that an offline kiosk must honour.
_NOT_OFFLINE_ISSUE = frozenset({3, 5})
_NOT_OFFLINE_RETURN = frozenset({4, 5})


@dataclass(frozen=True, slots=True)
class SetInfo:
    """Set information of a multi-part item: ``SetInfo(parts=12, part=3)`` is part 3 of 12."""

    parts: int
    part: int

    def __str__(self) -> str:
        return f"part {self.part} of {self.parts}"


@dataclass(frozen=True, slots=True)
class ItemData:
    """What a library tag says about its item (ISO 28560-1 data elements).

    ``other`` holds further data elements by relative OID (see :class:`Oid`): a ``str`` for
    text, ``bytes`` for an octet string or application-defined data. ``extension`` holds the
    extension blocks that follow an ISO 28560-3 basic block, raw, with trailing 0x00 removed
    (empty for ISO 28560-2). The content parameter (OID 2) is derived, so it is not stored.
    """

    primary_item_id: str
    owner_institution: str | None = None
    set_info: SetInfo | None = None
    type_of_usage: int | None = None
    shelf_location: str | None = None
    title: str | None = None
    other: Mapping[int, str | bytes] = field(default_factory=dict)
    extension: bytes = b""

    def __hash__(self) -> int:
        # ``other`` is a mapping, which is unhashable; hash its items so tags can go in sets.
        return hash(
            (
                self.primary_item_id,
                self.owner_institution,
                self.set_info,
                self.type_of_usage,
                self.shelf_location,
                self.title,
                frozenset(self.other.items()),
                self.extension,
            )
        )

    @property
    def primary_usage(self) -> int | None:
        """Return the primary qualifier of the type of usage (0-15), or None if absent."""
        return None if self.type_of_usage is None else self.type_of_usage >> 4

    @property
    def secondary_usage(self) -> int | None:
        """Return the secondary qualifier of the type of usage (0-15), or None if absent."""
        return None if self.type_of_usage is None else self.type_of_usage & 0x0F

    @property
    def is_circulating(self) -> bool:
        """Tell whether the tag marks the item as one for circulation (lending)."""
        return self.primary_usage == UsagePrimary.CIRCULATING

    @property
    def is_not_for_circulation(self) -> bool:
        """Tell whether the tag marks the item as not for circulation (reference only)."""
        return self.primary_usage == UsagePrimary.NOT_FOR_CIRCULATION

    @property
    def is_patron_card(self) -> bool:
        """Tell whether the tag is a patron (library) card rather than an item."""
        return self.primary_usage == UsagePrimary.PATRON_CARD

    @property
    def is_library_equipment(self) -> bool:
        """Tell whether the tag marks library equipment (a laptop, a projector)."""
        return self.primary_usage == UsagePrimary.LIBRARY_EQUIPMENT

    @property
    def is_discarded(self) -> bool:
        """Tell whether the tag marks the item as discarded (withdrawn from stock)."""
        return self.primary_usage == UsagePrimary.DISCARDED

    @property
    def not_for_offline_issue(self) -> bool:
        """Tell whether an offline kiosk must refuse to lend this item (secondary 3 or 5)."""
        return self.is_circulating and self.secondary_usage in _NOT_OFFLINE_ISSUE

    @property
    def not_for_offline_return(self) -> bool:
        """Tell whether an offline kiosk must refuse to take this item back (secondary 4 or 5)."""
        return self.is_circulating and self.secondary_usage in _NOT_OFFLINE_RETURN


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    """How one library marks an item as secured: AFI values and/or the NXP EAS bit.

    Libraries differ (0x07/0xC2 is common, 0x07/0x21 in Danish installations, 0xD7/0xDA on older
    3M tags), so the values are configuration, not constants.
    """

    secured_afi: int = 0x07
    unsecured_afi: int = 0xC2
    use_afi: bool = True
    use_eas: bool = False

    def __post_init__(self) -> None:
        for name in ("secured_afi", "unsecured_afi"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise ValueError(f"{name} {value!r} is not a byte (0-255)")
        if self.use_afi and self.secured_afi == self.unsecured_afi:
            raise ValueError(
                f"secured_afi and unsecured_afi are both 0x{self.secured_afi:02X}; "
                "the gate could not tell a lent item from one on the shelf"
            )


def _afi_state(afi: int | None, config: SecurityConfig) -> SecurityState:
    if afi == config.secured_afi:
        return SecurityState.SECURED
    if afi == config.unsecured_afi:
        return SecurityState.UNSECURED
    return SecurityState.UNKNOWN


def security_state(afi: int | None, eas: bool | None, config: SecurityConfig) -> SecurityState:
    """Tell whether an item may leave, from its AFI and EAS bit under a library's configuration.

    With both mechanisms in use, checkout switches both, so the item is unsecured only when
    every mechanism says so; one saying "secured" is enough to secure it (a half-done checkout
    must still alarm). An AFI that is neither configured value, or a register that was not
    read (None), gives no answer; with no answer from any mechanism the state is UNKNOWN.
    """
    states: list[SecurityState] = []
    if config.use_afi:
        states.append(_afi_state(afi, config))
    if config.use_eas:
        if eas is None:
            states.append(SecurityState.UNKNOWN)
        else:
            states.append(SecurityState.SECURED if eas else SecurityState.UNSECURED)
    if SecurityState.SECURED in states:
        return SecurityState.SECURED
    if states and all(s is SecurityState.UNSECURED for s in states):
        return SecurityState.UNSECURED
    return SecurityState.UNKNOWN


@dataclass(frozen=True, slots=True)
class Tag:
    """One library tag as read: chip registers, decoded item data and security state.

    ``item`` is None for a BLANK or UNKNOWN tag; ``problem`` then says (for UNKNOWN) why the data
    could not be read, in words staff understand. ``raw`` is the user memory exactly as read.
    """

    uid: bytes
    model: DataModel
    item: ItemData | None
    security: SecurityState
    afi: int | None
    dsfid: int | None
    eas: bool | None
    raw: bytes
    problem: str | None = None

    @property
    def uid_hex(self) -> str:
        """Return the UID as upper-case hex, MSB first ("E0168...")."""
        return self.uid.hex().upper()

    @property
    def primary_item_id(self) -> str | None:
        """Return the item identifier (barcode) on the tag, or None when there is none."""
        return None if self.item is None else self.item.primary_item_id
