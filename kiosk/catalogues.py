"""Developer tool: extract, update, compile and check the kiosk's gettext catalogues (Babel).

::

    python -m kiosk.catalogues update    # sources -> libedge.pot -> vi/en .po (keeps translations)
    python -m kiosk.catalogues compile   # .po -> .mo (the kiosk reads only the .mo files)
    python -m kiosk.catalogues check     # exit 1 naming every missing or stale translation

The kiosk itself never imports this module (nor Babel): it reads the committed ``.mo``
files with the standard library's :mod:`gettext`. The test suite runs :func:`problems`, so a
string marked in the code but not translated, or a ``.mo`` that says other than its ``.po``,
fails CI.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po, write_po

from kiosk.i18n import DOMAIN, LOCALE_DIR

__all__ = [
    "KEYWORDS",
    "compile_mo",
    "extract",
    "main",
    "mo_messages",
    "po_path",
    "problems",
    "read_catalogue",
]

#: The marker functions of :mod:`kiosk.i18n`.
KEYWORDS = {"N_": None, "NN_": (1, 2)}
SOURCE_DIR = Path(__file__).resolve().parent
LANGUAGES = ("vi", "en")


def po_path(language: str, localedir: Path = LOCALE_DIR) -> Path:
    """Where one language's ``.po`` file lives (the ``.mo`` sits beside it)."""
    return localedir / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def extract(source_dir: Path = SOURCE_DIR) -> Catalog:
    """Every marked string of the kiosk's sources, as a template catalogue."""
    template = Catalog(project="libedge", domain=DOMAIN)
    found = extract_from_dir(
        str(source_dir),
        method_map=[("**.py", "python")],
        keywords=KEYWORDS,
        comment_tags=("TRANSLATORS:",),
        strip_comment_tags=True,
    )
    for filename, lineno, message, comments, context in found:
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def read_catalogue(language: str, localedir: Path = LOCALE_DIR) -> Catalog:
    """One language's ``.po`` file."""
    with po_path(language, localedir).open("rb") as handle:
        return read_po(handle, locale=language, domain=DOMAIN)


def compile_mo(catalogue: Catalog) -> bytes:
    """The ``.mo`` bytes of a catalogue (fuzzy entries left out, as msgfmt does)."""
    buffer = io.BytesIO()
    write_mo(buffer, catalogue, use_fuzzy=False)
    return buffer.getvalue()


def mo_messages(data: bytes) -> dict[tuple[object, str | None], object]:
    """What a ``.mo`` file says: each message's translation, keyed by (id, context).

    Two ``.mo`` files that say the same thing compare equal even when different Babel
    releases wrote them: each stamps its own version into the header's Generated-By line,
    and reading a file back regenerates that line from the Babel doing the reading.
    """
    catalogue = read_mo(io.BytesIO(data))
    return {(_frozen(m.id), m.context): _frozen(m.string) for m in catalogue}


def _frozen(text: object) -> object:
    """A plural message's forms as a tuple (Babel gives a list or a tuple), so it hashes."""
    return tuple(text) if isinstance(text, (list, tuple)) else text


def update(localedir: Path = LOCALE_DIR) -> None:
    """Merge the sources' strings into every language's ``.po`` (new ones untranslated)."""
    template = extract()
    for language in LANGUAGES:
        path = po_path(language, localedir)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            catalogue = read_catalogue(language, localedir)
            catalogue.update(template, update_header_comment=False, update_creation_date=False)
        else:
            catalogue = Catalog(locale=language, domain=DOMAIN, project="libedge")
            catalogue.update(template)
        with path.open("wb") as handle:
            write_po(
                handle,
                catalogue,
                width=100,
                omit_header=False,
                sort_output=False,
                ignore_obsolete=True,
                include_previous=False,
            )


def compile_all(localedir: Path = LOCALE_DIR) -> None:
    """Write every language's ``.mo`` beside its ``.po``."""
    for language in LANGUAGES:
        mo = po_path(language, localedir).with_suffix(".mo")
        mo.write_bytes(compile_mo(read_catalogue(language, localedir)))


def problems(localedir: Path = LOCALE_DIR) -> list[str]:
    """Everything wrong with the catalogues, one sentence each (empty when all is well)."""
    template = extract()
    wanted = {message.id for message in template if message.id}
    found: list[str] = []
    for language in LANGUAGES:
        path = po_path(language, localedir)
        try:
            catalogue = read_catalogue(language, localedir)
        except OSError as exc:
            found.append(f"{path}: cannot be read: {exc}")
            continue
        for message in template:
            if not message.id:
                continue
            entry = catalogue.get(message.id)
            if entry is None:
                found.append(f"{path}: {message.id!r} is missing")
            elif entry.fuzzy:
                found.append(f"{path}: {message.id!r} is fuzzy")
            elif not entry.string or (isinstance(entry.string, tuple) and not all(entry.string)):
                found.append(f"{path}: {message.id!r} is not translated")
        stale = [m.id for m in catalogue if m.id and m.id not in wanted]
        found += [f"{path}: {msgid!r} is no longer used" for msgid in stale]
        for error in catalogue.check():
            message, errors = error
            found += [f"{path}: {message.id!r}: {e}" for e in errors]
        mo = path.with_suffix(".mo")
        if not mo.exists() or mo_messages(mo.read_bytes()) != mo_messages(compile_mo(catalogue)):
            found.append(
                f"{mo}: does not match {path.name} (run: python -m kiosk.catalogues compile)"
            )
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of the tool."""
    parser = argparse.ArgumentParser(prog="python -m kiosk.catalogues")
    parser.add_argument("command", choices=("update", "compile", "check"))
    args = parser.parse_args(argv)
    if args.command == "update":
        update()
    elif args.command == "compile":
        compile_all()
    else:
        found = problems()
        for line in found:
            print(line, file=sys.stderr)
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
