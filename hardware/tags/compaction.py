"""ISO 28560-2 compaction schemes for text: integer, numeric, 5-bit, 6-bit, 7-bit and UTF-8.

Each scheme is a pair of pure functions over bytes. The decoders are exact: they accept only
the one encoding their encoder produces for a value (no stray padding bits, no extra bytes, no
leading zero bytes in an integer), so for every scheme and every input ``data``,
``encode(decode(data)) == data`` whenever ``decode`` succeeds. Anything else raises
:class:`~hardware.tags.model.TagDataError` saying what is wrong; the element decoder adds where.

The bit-packed schemes (5, 6, 7 bits per character, MSB first) unpack the whole field as one
integer and map character codes with ``bytes.translate``, so there is no per-bit Python loop.
ISIL compaction (scheme 0 on OIDs 3 and 11) is stateful and lives in :mod:`hardware.tags.isil`.
"""

from __future__ import annotations

import re
from enum import IntEnum

from hardware.tags.model import TagDataError

__all__ = [
    "Compaction",
    "choose_compaction",
    "decode_5bit",
    "decode_6bit",
    "decode_7bit",
    "decode_integer",
    "decode_numeric",
    "decode_text",
    "decode_utf8",
    "encode_5bit",
    "encode_6bit",
    "encode_7bit",
    "encode_integer",
    "encode_numeric",
    "encode_text",
    "encode_utf8",
    "fits",
]


class Compaction(IntEnum):
    """Compaction scheme numbers as they appear in bits 6-4 of a precursor."""

    APPLICATION = 0
    INTEGER = 1
    NUMERIC = 2
    FIVE_BIT = 3
    SIX_BIT = 4
    SEVEN_BIT = 5
    OCTET = 6
    UTF8 = 7


SCHEME_NAMES: dict[int, str] = {
    0: "application-defined",
    1: "integer",
    2: "numeric",
    3: "5-bit",
    4: "6-bit",
    5: "7-bit",
    6: "octet string",
    7: "UTF-8",
}

# ASCII-only character classes (``[0-9]`` in a str pattern is the literal range 0x30-0x39,
# unlike ``str.isdigit`` which also accepts other scripts' digits).
_INTEGER_RE = re.compile(r"0|[1-9][0-9]*")
_NUMERIC_RE = re.compile(r"[0-9]+")
_FIVE_RE = re.compile(r"[\x41-\x5f]+")
_SIX_RE = re.compile(r"[\x20-\x5f]+")
_SEVEN_RE = re.compile(r"[\x00-\x7e]+")

# Code -> character byte for decoding; character byte -> code for encoding.
_FIVE_DECODE = bytes((v & 0x1F) | 0x40 for v in range(256))
_SIX_DECODE = bytes((v if v & 0x20 else v | 0x40) & 0x7F for v in range(256))
_FIVE_ENCODE = bytes(v & 0x1F for v in range(256))
_SIX_ENCODE = bytes(v & 0x3F for v in range(256))

# 6-bit padding is the leading bits of 100000, keyed by the number of pad bits.
_SIX_PAD = {2: 0b10, 4: 0b1000, 6: 0b100000}


def _hex(data: bytes) -> str:
    return data.hex(" ").upper() if data else "(none)"


def _unpack(data: bytes, width: int) -> tuple[list[int], int, int]:
    """Split ``data`` into ``width``-bit codes, MSB first; return codes, leftover bits, count."""
    count, rest = divmod(len(data) * 8, width)
    n = int.from_bytes(data, "big")
    leftover = n & ((1 << rest) - 1)
    n >>= rest
    mask = (1 << width) - 1
    codes = [(n >> shift) & mask for shift in range((count - 1) * width, -1, -width)]
    return codes, leftover, rest


def _pack(codes: bytes, width: int, pad: int, pad_bits: int) -> bytes:
    """Join ``width``-bit codes MSB first, then ``pad_bits`` bits of ``pad``, into bytes."""
    n = 0
    for code in codes:
        n = (n << width) | code
    total = len(codes) * width + pad_bits
    return ((n << pad_bits) | pad).to_bytes(total // 8, "big")


# ---------------------------------------------------------------- integer and numeric


def encode_integer(text: str) -> bytes:
    """Encode decimal digits without a leading zero as a big-endian integer in the fewest bytes."""
    if text == "":
        return b""
    if not _INTEGER_RE.fullmatch(text):
        raise TagDataError(f"integer compaction needs digits without a leading zero, not {text!r}")
    value = int(text)
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def decode_integer(data: bytes) -> str:
    """Decode a big-endian integer to its decimal digits."""
    if not data:
        return ""
    if data[0] == 0 and len(data) > 1:
        raise TagDataError(f"integer {_hex(data)} has a leading zero byte")
    return str(int.from_bytes(data, "big"))


def encode_numeric(text: str) -> bytes:
    """Encode decimal digits as BCD, high nibble first; an odd count ends with nibble F."""
    if text == "":
        return b""
    if not _NUMERIC_RE.fullmatch(text):
        raise TagDataError(f"numeric compaction needs decimal digits, not {text!r}")
    return bytes.fromhex(text + "f" if len(text) % 2 else text)


def decode_numeric(data: bytes) -> str:
    """Decode BCD digits; a final nibble F marks an odd count."""
    digits = data.hex()
    if digits.endswith("f"):
        digits = digits[:-1]
    if digits and not digits.isdigit():
        raise TagDataError(f"numeric data {_hex(data)} has a nibble that is not a digit")
    return digits


# ---------------------------------------------------------------- 5-, 6- and 7-bit codes


def encode_5bit(text: str) -> bytes:
    """Encode characters 0x41-0x5F (A-Z and [ ] ^ _ and backslash) in 5 bits, padded with 0s."""
    if text == "":
        return b""
    if not _FIVE_RE.fullmatch(text):
        raise TagDataError(f"5-bit compaction holds only characters A-Z [ \\ ] ^ _, not {text!r}")
    codes = text.encode("ascii").translate(_FIVE_ENCODE)
    pad_bits = -len(codes) * 5 % 8
    return _pack(codes, 5, 0, pad_bits)


def decode_5bit(data: bytes) -> str:
    """Decode 5-bit characters; a final all-zero code within the last byte is padding."""
    codes, leftover, rest = _unpack(data, 5)
    if leftover:
        raise TagDataError(f"5-bit data {_hex(data)} has padding bits that are not 0")
    # Code 0 is no character (0x40 is outside the set), so it can only be padding, and only
    # if the padding stays inside the last byte.
    if codes and codes[-1] == 0 and rest + 5 < 8:
        codes.pop()
    if 0 in codes:
        raise TagDataError(f"5-bit data {_hex(data)} holds code 0, which is no character")
    return bytes(codes).translate(_FIVE_DECODE).decode("ascii")


def _six_bit_ambiguous(text: str) -> bool:
    # A final space ending exactly on a byte boundary would read back as the padding group.
    return len(text) % 4 == 0 and text.endswith(" ")


def encode_6bit(text: str) -> bytes:
    """Encode characters 0x20-0x5F in 6 bits each, padded with the leading bits of 100000."""
    if text == "":
        return b""
    if not _SIX_RE.fullmatch(text):
        raise TagDataError(f"6-bit compaction holds only characters 0x20-0x5F, not {text!r}")
    if _six_bit_ambiguous(text):
        raise TagDataError(
            f"6-bit compaction cannot hold {text!r}: its final space would read back as padding"
        )
    codes = text.encode("ascii").translate(_SIX_ENCODE)
    pad_bits = -len(codes) * 6 % 8
    return _pack(codes, 6, _SIX_PAD[pad_bits] if pad_bits else 0, pad_bits)


def decode_6bit(data: bytes) -> str:
    """Decode 6-bit characters; a final group 0x20 ending exactly at the end is padding."""
    codes, leftover, rest = _unpack(data, 6)
    if rest:
        if leftover != _SIX_PAD[rest]:
            raise TagDataError(
                f"6-bit data {_hex(data)} ends with padding bits {leftover:0{rest}b}, "
                f"not {_SIX_PAD[rest]:0{rest}b}"
            )
    elif codes and codes[-1] == 0x20:
        codes.pop()
    return bytes(codes).translate(_SIX_DECODE).decode("ascii")


def encode_7bit(text: str) -> bytes:
    """Encode characters 0x00-0x7E in 7 bits each, padded with 1 bits."""
    if text == "":
        return b""
    if not _SEVEN_RE.fullmatch(text):
        raise TagDataError(f"7-bit compaction holds only characters 0x00-0x7E, not {text!r}")
    codes = text.encode("ascii")
    pad_bits = -len(codes) * 7 % 8
    return _pack(codes, 7, (1 << pad_bits) - 1, pad_bits)


def decode_7bit(data: bytes) -> str:
    """Decode 7-bit characters; a final group 1111111 ending exactly at the end is padding."""
    codes, leftover, rest = _unpack(data, 7)
    if leftover != (1 << rest) - 1:
        raise TagDataError(f"7-bit data {_hex(data)} has padding bits that are not 1")
    if not rest and codes and codes[-1] == 0x7F:
        codes.pop()
    if 0x7F in codes:
        raise TagDataError(f"7-bit data {_hex(data)} holds code 0x7F, which is no character")
    return bytes(codes).decode("ascii")


# ---------------------------------------------------------------- UTF-8


def encode_utf8(text: str) -> bytes:
    """Encode text as UTF-8."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TagDataError(f"text {text!r} cannot be encoded as UTF-8: {exc.reason}") from None


def decode_utf8(data: bytes) -> str:
    """Decode UTF-8 text (strictly: no invalid or overlong sequences, no surrogates)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TagDataError(
            f"text {_hex(data)} is not valid UTF-8 at byte {exc.start}: {exc.reason}"
        ) from None


# ---------------------------------------------------------------- dispatch


_ENCODERS = {
    Compaction.INTEGER: encode_integer,
    Compaction.NUMERIC: encode_numeric,
    Compaction.FIVE_BIT: encode_5bit,
    Compaction.SIX_BIT: encode_6bit,
    Compaction.SEVEN_BIT: encode_7bit,
    Compaction.OCTET: encode_utf8,
    Compaction.UTF8: encode_utf8,
}

# Indexed by scheme number; octet strings that must be text are read as UTF-8.
_DECODERS = (
    None,
    decode_integer,
    decode_numeric,
    decode_5bit,
    decode_6bit,
    decode_7bit,
    decode_utf8,
    decode_utf8,
)


def encode_text(text: str, scheme: Compaction) -> bytes:
    """Encode text with one compaction scheme (not ISIL; octet string means UTF-8 bytes)."""
    encoder = _ENCODERS.get(scheme)
    if encoder is None:
        raise TagDataError(f"compaction scheme {scheme} is not a text scheme")
    return encoder(text)


def decode_text(data: bytes, scheme: int) -> str:
    """Decode text stored with one compaction scheme (1-7; octet strings are read as UTF-8)."""
    decoder = _DECODERS[scheme] if 0 <= scheme < 8 else None
    if decoder is None:
        raise TagDataError(
            f"text in {SCHEME_NAMES.get(scheme, str(scheme))} compaction cannot be read"
        )
    return decoder(data)


def fits(text: str, scheme: Compaction) -> bool:
    """Tell whether ``text`` (non-empty) can be stored exactly in ``scheme``."""
    if scheme is Compaction.INTEGER:
        return _INTEGER_RE.fullmatch(text) is not None
    if scheme is Compaction.NUMERIC:
        return _NUMERIC_RE.fullmatch(text) is not None
    if scheme is Compaction.FIVE_BIT:
        return _FIVE_RE.fullmatch(text) is not None
    if scheme is Compaction.SIX_BIT:
        return _SIX_RE.fullmatch(text) is not None and not _six_bit_ambiguous(text)
    if scheme is Compaction.SEVEN_BIT:
        return _SEVEN_RE.fullmatch(text) is not None
    return scheme in (Compaction.OCTET, Compaction.UTF8)


_PREFERENCE = (
    Compaction.INTEGER,
    Compaction.NUMERIC,
    Compaction.FIVE_BIT,
    Compaction.SIX_BIT,
    Compaction.SEVEN_BIT,
)


def choose_compaction(text: str) -> Compaction:
    """Pick the first scheme that holds ``text``: integer, numeric, 5-, 6-, 7-bit, else UTF-8."""
    for scheme in _PREFERENCE:
        if fits(text, scheme):
            return scheme
    return Compaction.UTF8
