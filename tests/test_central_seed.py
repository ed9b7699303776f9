"""Seed files of the central simulator: loading, validation errors, generated items, PINs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from simulators.central.errors import SeedError
from simulators.central.seed import PinBook, PinCheck, SeedPatron, load_seed
from tests.test_central_common import SEED, write_seed


def test_packaged_seed_covers_the_demo_cases() -> None:
    """The default seed has the required titles, a few hundred items and every patron case."""
    seed = load_seed()
    titles = {item.title for item in seed.items}
    for title in (
        "Dế Mèn phiêu lưu ký",
        "Truyện Kiều",
        "Số đỏ",
        "Harry Potter and the Philosopher's Stone",
    ):
        assert title in titles
    assert 200 <= len(seed.items) <= 1000
    assert len({item.item_id for item in seed.items}) == len(seed.items)
    patrons = {p.patron_id: p for p in seed.patrons}
    assert any(p.blocked for p in patrons.values())
    assert any(p.fines >= seed.policy.fines_block_threshold for p in patrons.values())
    assert any(p.pin is not None for p in patrons.values())
    assert any(p.pin is None and not p.blocked for p in patrons.values())
    assert any(h.ready for h in seed.holds)
    assert any(not h.ready for h in seed.holds)
    assert any(item.not_for_loan for item in seed.items)
    assert any(item.not_for_offline_issue for item in seed.items)
    assert {p.language for p in patrons.values()} >= {"vi", "en"}


def test_generated_items_are_deterministic_and_depend_on_the_random_seed(tmp_path: Path) -> None:
    """The same [generate] section gives the same items; another random seed gives others."""
    spec = {"items": 50, "random_seed": 7, "id_prefix": "77"}
    first = load_seed(write_seed(tmp_path, "a", generate=spec))
    again = load_seed(write_seed(tmp_path, "b", generate=spec))
    other = load_seed(write_seed(tmp_path, "c", generate={**spec, "random_seed": 8}))
    assert len(first.items) == len(SEED["items"]) + 50
    assert first.items == again.items
    assert [i.title for i in first.items] != [i.title for i in other.items]
    assert all(i.item_id.startswith("77") for i in first.items[len(SEED["items"]) :])


def test_toml_and_json_seeds_load_the_same(tmp_path: Path) -> None:
    """A TOML seed and its JSON twin give equal seeds."""
    toml = tmp_path / "s.toml"
    toml.write_text(
        'library_id = "x-lib"\n[[items]]\nitem_id = "A1"\ntitle = "Số đỏ"\n'
        '[[patrons]]\npatron_id = "P1"\nname = "An"\n',
        encoding="utf-8",
    )
    as_json = tmp_path / "s.json"
    as_json.write_text(
        json.dumps(
            {
                "library_id": "x-lib",
                "items": [{"item_id": "A1", "title": "Số đỏ"}],
                "patrons": [{"patron_id": "P1", "name": "An"}],
            }
        ),
        encoding="utf-8",
    )
    assert load_seed(toml) == load_seed(as_json)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"loans": [{"item_id": "NOPE", "patron_id": "P-FREE", "due_in_days": 1}]}, "NOPE"),
        ({"holds": [{"item_id": "I-SHELF", "patron_id": "GHOST"}]}, "GHOST"),
        ({"items": [*SEED["items"], {"item_id": "I-SHELF", "title": "again"}]}, "appears twice"),
        ({"policy": {"loan_days": 0}}, "policy.loan_days"),
        ({"surprise": 1}, "surprise"),
        (
            {"holds": [{"item_id": "I-LOAN", "patron_id": "P-HOLDER", "ready": True}]},
            "is on loan",
        ),
    ],
)
def test_invalid_seed_is_refused_naming_the_entry(
    tmp_path: Path, change: dict[str, object], expected: str
) -> None:
    """A seed with a bad reference, a duplicate, a bad value or an unknown key names it."""
    path = write_seed(tmp_path, "test-library", **change)
    with pytest.raises(SeedError) as caught:
        load_seed(path)
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.json", "{not json", "not valid JSON"),
        ("bad.toml", "x = = 1", "not valid TOML"),
        ("seed.yaml", "a: 1", ".json or .toml"),
        ("bin.json", b"\xff\xfe\x00", "cannot be read"),
    ],
)
def test_unreadable_seed_files_are_refused(
    tmp_path: Path, name: str, text: str | bytes, expected: str
) -> None:
    """Broken syntax, an unknown suffix and bad encoding each get their own message."""
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(SeedError, match=expected):
        load_seed(path)


def test_missing_seed_file_is_refused(tmp_path: Path) -> None:
    """A seed path that does not exist is an error naming the path."""
    with pytest.raises(SeedError, match=r"nowhere\.json"):
        load_seed(tmp_path / "nowhere.json")


def test_pin_book_checks_pins_without_keeping_them() -> None:
    """Right, wrong, missing and not-required PINs are told apart; the PIN is not kept."""
    book = PinBook(
        [
            SeedPatron(patron_id="A", name="An", pin=SecretStr("2468")),
            SeedPatron(patron_id="B", name="Bình"),
        ]
    )
    assert book.check("A", SecretStr("2468")) is PinCheck.OK
    assert book.check("A", SecretStr("2469")) is PinCheck.WRONG
    assert book.check("A", None) is PinCheck.MISSING
    assert book.check("B", None) is PinCheck.NOT_REQUIRED
    assert book.check("B", SecretStr("1")) is PinCheck.NOT_REQUIRED
    assert "2468" not in repr(vars(book))


def test_fingerprint_ignores_pins_but_not_content(tmp_path: Path) -> None:
    """Seeds differing only in a PIN share a fingerprint; a different title changes it."""
    base = load_seed(write_seed(tmp_path, "a"))
    patrons = [dict(p) for p in SEED["patrons"]]
    patrons[0]["pin"] = "0000"
    other_pin = load_seed(write_seed(tmp_path, "a", patrons=patrons))
    items = [dict(i) for i in SEED["items"]]
    items[0]["title"] = "Changed"
    other_title = load_seed(write_seed(tmp_path, "a", items=items))
    assert base.fingerprint() == other_pin.fingerprint()
    assert base.fingerprint() != other_title.fingerprint()
