"""Patron-facing text in several languages: gettext catalogues and lazily translated messages.

The controller never holds a translated string for long: it holds :class:`Text` values
(a gettext msgid, an optional plural form, and parameters), and the presenter renders them in
the language chosen *now*. Switching the language therefore re-renders every line, title and
button at once.

Marking: ``N_("English source text {param}", param=value)`` and ``NN_(singular, plural, n)``
build a :class:`Text`; Babel's extractor finds these calls (``N_`` is one of its default
keywords, ``NN_`` is passed as ``NN_:1,2``). The catalogues are
``kiosk/locale/{vi,en}/LC_MESSAGES/libedge.po`` with compiled ``.mo`` beside them; see
:mod:`kiosk.catalogues` for extraction and compilation (a test checks that the ``.mo`` files
match the ``.po`` files and that every marked string is translated in every language).

Placeholders use :meth:`str.format` with names; a parameter may be a string, an int, a
:class:`datetime.date` (written the language's way), a :class:`Money` or another
:class:`Text` (rendered in the same language). A broken translation (a placeholder the
source text lacks) falls back to the source text and is logged, never raised to the screen.
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

__all__ = [
    "DOMAIN",
    "LOCALE_DIR",
    "NN_",
    "N_",
    "CatalogueError",
    "Catalogues",
    "Money",
    "Param",
    "Text",
]

log = logging.getLogger(__name__)

DOMAIN = "libedge"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


class CatalogueError(RuntimeError):
    """A language's compiled catalogue is missing or unreadable; the message names the file."""


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in the currency's smallest unit (VND has no smaller unit than the đồng)."""

    amount: int
    currency: str = "VND"


@dataclass(frozen=True, slots=True)
class Text:
    """A message to be shown in whatever language is current when it is rendered."""

    msgid: str
    plural: str | None = None
    n: int | None = None
    params: tuple[tuple[str, Param], ...] = ()


#: What a placeholder may be bound to.
Param: TypeAlias = str | int | dt.date | Money | Text


def N_(msgid: str, /, **params: Param) -> Text:  # noqa: N802
    """Mark ``msgid`` for translation and bind its placeholders."""
    return Text(msgid, params=tuple(params.items()))


def NN_(  # noqa: N802
    singular: str, plural: str, n: int, /, **params: Param
) -> Text:
    """Mark a message with a plural form chosen by ``n`` (``n`` is also the ``{n}`` param)."""
    bound = {"n": n, **params}
    return Text(singular, plural=plural, n=n, params=tuple(bound.items()))


#: Minor units per currency: how many decimals the smallest unit stands for.
_MINOR_UNITS = {"VND": 0, "JPY": 0, "KRW": 0}
_SYMBOLS = {"vi": {"VND": "đ"}, "en": {}}
#: Thousands separator and decimal mark per language.
_NUMBER_MARKS = {"vi": (".", ","), "en": (",", ".")}


class Catalogues:
    """The compiled gettext catalogues of the kiosk's languages, and rendering with them."""

    def __init__(self, languages: Sequence[str], localedir: Path = LOCALE_DIR) -> None:
        if not languages:
            raise CatalogueError("no language configured for the kiosk")
        self.languages = tuple(languages)
        self._translations: dict[str, gettext.NullTranslations] = {}
        for language in self.languages:
            mo = localedir / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
            try:
                data = mo.read_bytes()
            except OSError as exc:
                raise CatalogueError(
                    f"{mo}: cannot read the {language!r} catalogue: {exc}"
                ) from exc
            try:
                self._translations[language] = gettext.GNUTranslations(io.BytesIO(data))
            except Exception as exc:  # gettext raises OSError, struct.error, ValueError...
                raise CatalogueError(f"{mo}: not a valid gettext catalogue: {exc}") from exc

    def _translation(self, language: str) -> gettext.NullTranslations:
        found = self._translations.get(language)
        if found is None:
            log.error("no catalogue for language %r; using %r", language, self.languages[0])
            return self._translations[self.languages[0]]
        return found

    def gettext(self, language: str, msgid: str) -> str:
        """The translation of one msgid (the msgid itself when the catalogue lacks it)."""
        return self._translation(language).gettext(msgid)

    def render(self, text: Text, language: str) -> str:
        """Render a Text in ``language``, parameters included."""
        translation = self._translation(language)
        if text.plural is not None:
            template = translation.ngettext(text.msgid, text.plural, text.n or 0)
        else:
            template = translation.gettext(text.msgid)
        if not text.params:
            return template
        values = {name: self._param(value, language) for name, value in text.params}
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError) as exc:
            # A translator's typo in a placeholder must not blank the screen.
            log.error(
                "translation of %r in %r is broken (%s); using the source",
                text.msgid,
                language,
                exc,
            )
            source = text.msgid if text.plural is None or text.n == 1 else text.plural
            return source.format(**values)

    def _param(self, value: Param, language: str) -> str | int:
        if isinstance(value, Text):
            return self.render(value, language)
        if isinstance(value, Money):
            return self.format_money(value, language)
        if isinstance(value, dt.date):
            return self.format_date(value, language)
        return value

    @staticmethod
    def format_date(day: dt.date, language: str) -> str:
        """A date as people write it here: day/month/year in both languages."""
        del language  # both languages of the region write dates day first
        return f"{day.day:02d}/{day.month:02d}/{day.year}"

    @staticmethod
    def format_money(money: Money, language: str) -> str:
        """An amount with the language's separators: ``75.000 đ`` / ``75,000 VND``."""
        thousands, decimal = _NUMBER_MARKS.get(language, _NUMBER_MARKS["en"])
        minor = _MINOR_UNITS.get(money.currency, 2)
        whole, fraction = divmod(abs(money.amount), 10**minor) if minor else (abs(money.amount), 0)
        digits = f"{whole:,}".replace(",", thousands)
        if minor:
            digits += f"{decimal}{fraction:0{minor}d}"
        sign = "-" if money.amount < 0 else ""
        symbol = _SYMBOLS.get(language, {}).get(money.currency, money.currency)
        return f"{sign}{digits} {symbol}"

    def render_all(self, texts: Mapping[str, Text], language: str) -> dict[str, str]:
        """Render several Texts at once (for tests and receipts)."""
        return {key: self.render(text, language) for key, text in texts.items()}
