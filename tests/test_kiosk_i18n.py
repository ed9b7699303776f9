"""The kiosk's catalogues: complete, compiled from their .po files, and never showing a code.

Every string marked in the code is translated in Vietnamese and English, the committed .mo
files say exactly what Babel compiles from the .po files, every refusal reason has a
sentence for every action, and a broken or missing catalogue is reported clearly.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path

import babel
import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.contract import RefusalReason
from kiosk import catalogues
from kiosk import messages as msg
from kiosk.i18n import DOMAIN, N_, NN_, CatalogueError, Catalogues, Money
from kiosk.messages import refusal

CATALOGUES = Catalogues(("vi", "en"))
ACTIONS = ("identify", "checkout", "checkin", "renew")


def test_every_marked_string_is_translated_and_compiled() -> None:
    """The sources' strings are all in both .po files, translated, and the .mo files match."""
    assert catalogues.problems() == []


def copy_catalogues(localedir: Path, mo: Callable[[str], bytes]) -> None:
    """Copy each language's .po under ``localedir``, beside the .mo ``mo(language)``."""
    for language in catalogues.LANGUAGES:
        target = catalogues.po_path(language, localedir)
        target.parent.mkdir(parents=True)
        target.write_bytes(catalogues.po_path(language).read_bytes())
        target.with_suffix(".mo").write_bytes(mo(language))


def committed_mo(language: str) -> bytes:
    """The committed .mo of a language."""
    return catalogues.po_path(language).with_suffix(".mo").read_bytes()


def test_the_check_finds_untranslated_and_stale_catalogues(tmp_path: Path) -> None:
    """The check names a missing translation, a fuzzy one and a .mo that lags its .po."""
    copy_catalogues(tmp_path, committed_mo)
    vi = catalogues.po_path("vi", tmp_path)
    text = vi.read_text(encoding="utf-8")
    text = text.replace('msgstr "Mượn sách"', 'msgstr ""', 1)
    text = text.replace("#: messages.py", "#, fuzzy\n#: messages.py", 1)
    vi.write_text(text, encoding="utf-8")
    found = "\n".join(catalogues.problems(tmp_path))
    assert "'Borrow' is not translated" in found
    assert "is fuzzy" in found
    assert "vi/LC_MESSAGES/libedge.mo: does not match libedge.po" in found
    assert "en/LC_MESSAGES" not in found


def test_a_mo_written_by_another_babel_release_still_matches(tmp_path: Path) -> None:
    """Only what a .mo says counts: the writer's Generated-By stamp in its header does not."""
    stamp = f"Generated-By: Babel {babel.__version__}".encode()
    # Same length, so every offset in the file stays valid.
    other = b"Generated-By: Babel " + b"9" * len(babel.__version__)

    def restamped(language: str) -> bytes:
        compiled = catalogues.compile_mo(catalogues.read_catalogue(language))
        assert stamp in compiled
        return compiled.replace(stamp, other)

    copy_catalogues(tmp_path, restamped)
    assert catalogues.problems(tmp_path) == []
    vi_mo = catalogues.po_path("vi", tmp_path).with_suffix(".mo")
    # A changed translation of the same UTF-8 length: the file stays readable but says otherwise.
    vi_mo.write_bytes(vi_mo.read_bytes().replace("Mượn sách".encode(), "Mượn sàch".encode()))
    assert any(
        "vi/LC_MESSAGES/libedge.mo: does not match" in p for p in catalogues.problems(tmp_path)
    )


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("language", ["vi", "en"])
def test_every_refusal_reason_has_a_sentence(action: str, language: str) -> None:
    """No refusal shows its code: each reason renders to a sentence without snake_case words."""
    for reason in RefusalReason:
        sentence = CATALOGUES.render(refusal(action, reason), language)  # type: ignore[arg-type]
        assert reason.value not in sentence
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", sentence), sentence
        assert sentence.endswith((".", "!", "nhé.")), sentence


def test_vietnamese_is_written_with_diacritics_and_warmly() -> None:
    """The Vietnamese catalogue is precomposed Unicode, uses diacritics and a friendly register."""
    vi = catalogues.read_catalogue("vi")
    texts = [m.string for m in vi if m.id]
    flat = [s for t in texts for s in (t if isinstance(t, tuple) else (t,))]
    assert all(unicodedata.is_normalized("NFC", s) for s in flat)
    with_marks = [s for s in flat if any(c in s for c in "ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệ")]
    assert len(with_marks) > 0.8 * len(flat)
    assert sum("nhé" in s for s in flat) >= 20
    assert CATALOGUES.render(msg.CHECKOUT_PROMPT, "vi") == (
        "Bạn hãy đặt sách lên khay. Có thể đặt nhiều cuốn cùng lúc."
    )


def test_parameters_are_rendered_per_language() -> None:
    """Dates are day/month/year, money uses the language's separators, nested texts translate."""
    due = dt.date(2025, 3, 4)
    assert (
        CATALOGUES.render(msg.borrowed(due), "en")
        == "Borrowed. Please bring it back by 04/03/2025."
    )
    assert "04/03/2025" in CATALOGUES.render(msg.borrowed(due), "vi")
    assert CATALOGUES.format_money(Money(1_234_500, "VND"), "vi") == "1.234.500 đ"
    assert CATALOGUES.format_money(Money(1_234_500, "VND"), "en") == "1,234,500 VND"
    assert CATALOGUES.format_money(Money(-1999, "EUR"), "en") == "-19.99 EUR"
    nested = N_("Item {item_id}", item_id=N_("Borrow"))
    assert CATALOGUES.render(nested, "vi") == "Tài liệu Mượn sách"
    assert CATALOGUES.render(
        NN_("The tray works: {n} label on it.", "The tray works: {n} labels on it.", 1), "en"
    ) == ("The tray works: 1 label on it.")


def _compile(tmp_path: Path, language: str, entries: dict[str, str]) -> Path:
    catalog = Catalog(locale=language, domain=DOMAIN)
    for msgid, msgstr in entries.items():
        catalog.add(msgid, msgstr)
    mo = tmp_path / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
    mo.parent.mkdir(parents=True)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    mo.write_bytes(buffer.getvalue())
    return mo


def test_a_broken_translation_falls_back_to_the_source(tmp_path: Path) -> None:
    """A translator's wrong placeholder shows the source text instead of failing the screen."""
    _compile(tmp_path, "vi", {"Hello, {name}!": "Xin chào {ten}!"})
    broken = Catalogues(("vi",), localedir=tmp_path)
    assert broken.render(msg.hello("An"), "vi") == "Hello, An!"


def test_missing_or_garbled_catalogues_are_named(tmp_path: Path) -> None:
    """A missing .mo and a .mo full of garbage raise CatalogueError naming the file."""
    with pytest.raises(CatalogueError, match=r"en/LC_MESSAGES/libedge.mo.*'en'"):
        Catalogues(("en",), localedir=tmp_path)
    garbage = tmp_path / "vi" / "LC_MESSAGES" / f"{DOMAIN}.mo"
    garbage.parent.mkdir(parents=True)
    garbage.write_bytes(b"\x00" * 40)
    with pytest.raises(CatalogueError, match="not a valid gettext catalogue"):
        Catalogues(("vi",), localedir=tmp_path)
    with pytest.raises(CatalogueError, match="no language"):
        Catalogues(())


@given(st.binary(max_size=200))
def test_garbage_mo_never_escapes_as_anything_but_catalogue_error(data: bytes) -> None:
    """Whatever bytes a .mo file holds, loading it succeeds or raises CatalogueError."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        mo = Path(tmp) / "vi" / "LC_MESSAGES" / f"{DOMAIN}.mo"
        mo.parent.mkdir(parents=True)
        mo.write_bytes(data)
        try:
            loaded = Catalogues(("vi",), localedir=Path(tmp))
        except CatalogueError:
            return
        assert isinstance(loaded.render(msg.CHECKING, "vi"), str)


def test_unknown_language_uses_the_first() -> None:
    """Rendering in a language without a catalogue uses the kiosk's first language (logged)."""
    assert CATALOGUES.render(msg.CHECKING, "fr") == CATALOGUES.render(msg.CHECKING, "vi")
