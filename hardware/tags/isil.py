"""ISIL compaction: ISO 28560-2 scheme 0 for the owner and ILL institutions (OIDs 3 and 11).

Three code tables; decoding starts in upper mode:

    mode   bits  characters               control codes
    upper  5     "-"=0 A-Z=1-26 ":"=27    28/29 latch/shift lower, 30/31 latch/shift digit
    lower  5     "-"=0 a-z=1-26 "/"=27    28/29 latch/shift upper, 30/31 latch/shift digit
    digit  4     0-9=0-9 "-"=10 ":"=11    12/13 latch/shift upper, 14/15 latch/shift lower

A shift applies to exactly one character; the last byte is padded with 1 bits. The encoder
stays in the current mode while it can, else goes to the first mode (upper, lower, digit) that
has the character: by shift when the character after it fits the current mode (or there is
none), else by latch. Writers may choose differently, so the decoder accepts any valid code
sequence; ``"DE-Heu1"`` encodes to ``21 40 8E 16 BF 1F``.
"""

from __future__ import annotations

from hardware.tags.model import TagDataError

__all__ = ["decode_isil", "encode_isil", "isil_fits"]

_UPPER, _LOWER, _DIGIT = 0, 1, 2
_MODE_NAMES = ("upper", "lower", "digit")
_WIDTH = (5, 5, 4)

# Character for each code per mode; None marks a control code.
_CHARS: tuple[tuple[str | None, ...], ...] = (
    ("-", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ", ":", None, None, None, None),
    ("-", *"abcdefghijklmnopqrstuvwxyz", "/", None, None, None, None),
    (*"0123456789", "-", ":", None, None, None, None),
)
# Control codes per mode: code -> (target mode, is_shift).
_CONTROLS: tuple[dict[int, tuple[int, bool]], ...] = (
    {28: (_LOWER, False), 29: (_LOWER, True), 30: (_DIGIT, False), 31: (_DIGIT, True)},
    {28: (_UPPER, False), 29: (_UPPER, True), 30: (_DIGIT, False), 31: (_DIGIT, True)},
    {12: (_UPPER, False), 13: (_UPPER, True), 14: (_LOWER, False), 15: (_LOWER, True)},
)
# Reverse tables for the encoder: character -> code, and (mode, target, shift) -> code.
_CODES: tuple[dict[str, int], ...] = tuple(
    {c: code for code, c in enumerate(chars) if c is not None} for chars in _CHARS
)
_SWITCH: dict[tuple[int, int, bool], int] = {
    (mode, target, shift): code
    for mode, table in enumerate(_CONTROLS)
    for code, (target, shift) in table.items()
}
_ALL_CHARS = frozenset(c for table in _CODES for c in table)


def isil_fits(text: str) -> bool:
    """Tell whether every character of ``text`` is in one of the ISIL code tables."""
    return _ALL_CHARS.issuperset(text)


def encode_isil(text: str) -> bytes:
    """Encode an ISIL with ISIL compaction."""
    n = 0
    nbits = 0
    mode = _UPPER
    for i, char in enumerate(text):
        code = _CODES[mode].get(char)
        if code is None:
            target = next((m for m in (_UPPER, _LOWER, _DIGIT) if char in _CODES[m]), None)
            if target is None:
                raise TagDataError(f"ISIL {text!r} has character {char!r} at position {i}")
            after = text[i + 1] if i + 1 < len(text) else None
            shift = after is None or after in _CODES[mode]
            n = (n << _WIDTH[mode]) | _SWITCH[mode, target, shift]
            nbits += _WIDTH[mode]
            if not shift:
                mode = target
            code = _CODES[target][char]
            n = (n << _WIDTH[target]) | code
            nbits += _WIDTH[target]
        else:
            n = (n << _WIDTH[mode]) | code
            nbits += _WIDTH[mode]
    pad = -nbits % 8
    return ((n << pad) | ((1 << pad) - 1)).to_bytes((nbits + pad) // 8, "big")


def decode_isil(data: bytes) -> str:
    """Decode ISIL compaction; the 1 bits that pad the last byte are skipped."""
    n = int.from_bytes(data, "big")
    remaining = len(data) * 8
    mode = _UPPER
    shifted: int | None = None
    out: list[str] = []
    while remaining:
        if remaining < 8 and n & ((1 << remaining) - 1) == (1 << remaining) - 1:
            if shifted is not None:
                raise TagDataError(f"ISIL {data.hex(' ').upper()} ends after a shift code")
            break  # padding
        current = mode if shifted is None else shifted
        width = _WIDTH[current]
        if remaining < width:
            raise TagDataError(
                f"ISIL {data.hex(' ').upper()} ends with {remaining} bits that are not padding"
            )
        remaining -= width
        code = (n >> remaining) & ((1 << width) - 1)
        char = _CHARS[current][code]
        if char is not None:
            out.append(char)
            shifted = None
            continue
        if shifted is not None:
            raise TagDataError(
                f"ISIL {data.hex(' ').upper()}: a shift to {_MODE_NAMES[shifted]} is followed "
                f"by control code {code} instead of a character"
            )
        target, shift = _CONTROLS[current][code]
        if shift:
            shifted = target
        else:
            mode = target
    return "".join(out)
