"""What the on-screen keypad accepts, apart from Kivy (so it can be tested without a window).

The keypad takes a card number (digits, and capital letters where the library's card
numbers have them) or a PIN (digits only). Only ASCII counts: Python calls many other
characters digits, and neither the central system nor a check digit knows them.
"""

from __future__ import annotations

__all__ = ["KEYPAD_MAX", "typed"]

#: Longest text the keypad takes (card numbers are at most 20 characters, PINs 12).
KEYPAD_MAX = 20


def typed(entered: str, key: str, *, letters: bool) -> str:
    """What the keypad holds after a character key: digits always, A-Z only with ``letters``."""
    if len(entered) >= KEYPAD_MAX or len(key) != 1 or not key.isascii():
        return entered
    if key.isdigit() or (letters and key.isupper()):
        return entered + key
    return entered
