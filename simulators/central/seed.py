"""The seed file: the catalogue, patrons, loans, holds and loan rules of the simulated library.

A seed is JSON or TOML (chosen by the file's suffix) and is validated strictly: unknown keys,
duplicate ids and references to items or patrons that do not exist are errors naming the
entry. Dates are relative (``due_in_days``), so a seed stays meaningful whenever it is loaded.

``[generate] items = N`` adds N more items drawn deterministically (``random_seed``) from a
pool of Vietnamese and English titles, so a demo has a catalogue of a few hundred items
without a file of a few hundred entries. The package ships ``default_seed.toml``.

PINs: a seed may give a patron a PIN, because the simulated library system must check it.
:class:`PinBook` keeps only a salted PBKDF2 digest of each, in memory; the PIN is never
written to the simulator's database and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import tomllib
from collections.abc import Sequence
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from edge_agent.contract import DeviceKind
from edge_agent.contract.base import describe_errors

from .errors import SeedError

__all__ = [
    "DEFAULT_SEED",
    "PinBook",
    "PinCheck",
    "Seed",
    "SeedDevice",
    "SeedHold",
    "SeedItem",
    "SeedLoan",
    "SeedPatron",
    "SeedPolicy",
    "load_seed",
]

#: The name of the seed shipped inside this package.
DEFAULT_SEED = "default_seed.toml"

_IDENT = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SeedItem(_Strict):
    """One copy of a title, identified by its barcode."""

    item_id: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=500)
    author: str | None = None
    language: Literal["vi", "en"] | None = None
    not_for_loan: bool = Field(False, description="Reference only: never lent.")
    not_for_offline_issue: bool = Field(False, description="A kiosk may not lend it offline.")
    missing: bool = False


class SeedPatron(_Strict):
    """A library card holder."""

    patron_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=100)
    pin: SecretStr | None = Field(None, description="Checked in memory, never stored or logged.")
    language: Literal["vi", "en"] | None = None
    blocked: bool = False
    block_reason: str | None = Field(None, max_length=200)
    fines: int = Field(0, ge=0, description="Outstanding fines in the smallest currency unit.")
    max_loans: int | None = Field(None, ge=0, description="Overrides the policy's max_loans.")


class SeedLoan(_Strict):
    """An item already on loan when the simulation starts."""

    item_id: str
    patron_id: str
    due_in_days: int = Field(description="Negative for an overdue loan.")
    renewals: int = Field(0, ge=0)


class SeedHold(_Strict):
    """A patron's hold on an item; ``ready`` means it waits on the hold shelf."""

    item_id: str
    patron_id: str
    ready: bool = False
    pickup_in_days: int = Field(7, ge=0)


class SeedDevice(_Strict):
    """A device that gets caches pushed before it has ever been seen."""

    device_id: str = Field(pattern=_IDENT)
    kind: DeviceKind = DeviceKind.KIOSK


class SeedPolicy(_Strict):
    """The library's loan rules."""

    loan_days: int = Field(14, ge=1)
    max_loans: int = Field(10, ge=0)
    max_renewals: int = Field(2, ge=0)
    offline_max_items: int = Field(5, ge=0)
    fines_block_threshold: int = Field(
        50_000, ge=1, description="Fines at or above this block borrowing."
    )
    hold_pickup_days: int = Field(7, ge=1)


class SeedGenerate(_Strict):
    """How many items to add deterministically from the built-in title pool."""

    items: int = Field(0, ge=0, le=100_000)
    random_seed: int = 1
    id_prefix: str = Field("31", pattern=r"^[0-9]{0,8}$")


class Seed(_Strict):
    """The whole seed, validated: every reference resolves and every id is unique."""

    library_id: str = Field("demo-library", pattern=_IDENT)
    library_name: str = "Thư viện libedge (mô phỏng)"
    currency: str = Field("VND", pattern=r"^[A-Z]{3}$")
    timezone: str = "Asia/Ho_Chi_Minh"
    policy: SeedPolicy = Field(default_factory=SeedPolicy)
    items: list[SeedItem] = Field(default_factory=list)
    patrons: list[SeedPatron] = Field(default_factory=list)
    loans: list[SeedLoan] = Field(default_factory=list)
    holds: list[SeedHold] = Field(default_factory=list)
    devices: list[SeedDevice] = Field(default_factory=list)
    generate: SeedGenerate = Field(default_factory=SeedGenerate)

    @model_validator(mode="after")
    def _references_resolve(self) -> Seed:
        items = _unique("items", [i.item_id for i in self.items])
        patrons = _unique("patrons", [p.patron_id for p in self.patrons])
        _unique("devices", [d.device_id for d in self.devices])
        _unique("loans", [loan.item_id for loan in self.loans])
        _unique("holds", [f"{h.item_id}/{h.patron_id}" for h in self.holds])
        references: list[tuple[str, Sequence[SeedLoan | SeedHold]]] = [
            ("loans", self.loans),
            ("holds", self.holds),
        ]
        for where, entries in references:
            for n, entry in enumerate(entries):
                if entry.item_id not in items:
                    raise ValueError(f"{where}[{n}]: unknown item_id {entry.item_id!r}")
                if entry.patron_id not in patrons:
                    raise ValueError(f"{where}[{n}]: unknown patron_id {entry.patron_id!r}")
        on_loan = {loan.item_id for loan in self.loans}
        for n, hold in enumerate(self.holds):
            if hold.ready and hold.item_id in on_loan:
                raise ValueError(f"holds[{n}]: item {hold.item_id!r} is on loan, so not ready")
        return self

    def with_generated_items(self) -> Seed:
        """This seed with the ``[generate]`` items added (and ``generate.items`` set to 0)."""
        extra = generate_items(self.generate, {i.item_id for i in self.items})
        return self.model_copy(
            update={"items": [*self.items, *extra], "generate": SeedGenerate(items=0)}
        )

    def fingerprint(self) -> str:
        """A digest of the seed's content (PINs excluded) to tell seeds apart."""
        data = self.model_dump(mode="json", exclude={"patrons": {"__all__": {"pin"}}})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _unique(what: str, ids: list[str]) -> set[str]:
    seen: set[str] = set()
    for value in ids:
        if value in seen:
            raise ValueError(f"{what}: {value!r} appears twice")
        seen.add(value)
    return seen


# ---------------------------------------------------------------- generated catalogue

# (title, author, language): a pool to draw copies from. Real titles, so a demo reads true.
_POOL: tuple[tuple[str, str, Literal["vi", "en"]], ...] = (
    ("Dế Mèn phiêu lưu ký", "Tô Hoài", "vi"),
    ("Truyện Kiều", "Nguyễn Du", "vi"),
    ("Số đỏ", "Vũ Trọng Phụng", "vi"),
    ("Tắt đèn", "Ngô Tất Tố", "vi"),
    ("Chí Phèo", "Nam Cao", "vi"),
    ("Lão Hạc", "Nam Cao", "vi"),
    ("Vợ nhặt", "Kim Lân", "vi"),
    ("Nỗi buồn chiến tranh", "Bảo Ninh", "vi"),
    ("Mắt biếc", "Nguyễn Nhật Ánh", "vi"),
    ("Tôi thấy hoa vàng trên cỏ xanh", "Nguyễn Nhật Ánh", "vi"),
    ("Cho tôi xin một vé đi tuổi thơ", "Nguyễn Nhật Ánh", "vi"),
    ("Đất rừng phương Nam", "Đoàn Giỏi", "vi"),
    ("Những ngôi sao xa xôi", "Lê Minh Khuê", "vi"),
    ("Tuổi thơ dữ dội", "Phùng Quán", "vi"),
    ("Vang bóng một thời", "Nguyễn Tuân", "vi"),
    ("Gió lạnh đầu mùa", "Thạch Lam", "vi"),
    ("Hà Nội băm sáu phố phường", "Thạch Lam", "vi"),
    ("Bỉ vỏ", "Nguyên Hồng", "vi"),
    ("Harry Potter and the Philosopher's Stone", "J. K. Rowling", "en"),
    ("The Little Prince", "Antoine de Saint-Exupéry", "en"),
    ("Pride and Prejudice", "Jane Austen", "en"),
    ("Alice's Adventures in Wonderland", "Lewis Carroll", "en"),
    ("Treasure Island", "Robert Louis Stevenson", "en"),
    ("The Adventures of Tom Sawyer", "Mark Twain", "en"),
    ("Charlotte's Web", "E. B. White", "en"),
    ("Matilda", "Roald Dahl", "en"),
    ("The Hobbit", "J. R. R. Tolkien", "en"),
    ("Robinson Crusoe", "Daniel Defoe", "en"),
    ("Oliver Twist", "Charles Dickens", "en"),
    ("Little Women", "Louisa May Alcott", "en"),
    ("The Jungle Book", "Rudyard Kipling", "en"),
    ("The Secret Garden", "Frances Hodgson Burnett", "en"),
)
# Reference works: in the catalogue but never lent.
_REFERENCE: tuple[tuple[str, str, Literal["vi", "en"]], ...] = (
    ("Từ điển Tiếng Việt", "Hoàng Phê (chủ biên)", "vi"),
    ("Đại Việt sử ký toàn thư", "Ngô Sĩ Liên", "vi"),
    ("Oxford Advanced Learner's Dictionary", "A. S. Hornby", "en"),
)


def generate_items(spec: SeedGenerate, taken: set[str]) -> list[SeedItem]:
    """Draw ``spec.items`` copies from the title pool; the same spec gives the same items."""
    rng = random.Random(spec.random_seed)
    items: list[SeedItem] = []
    number = 0
    while len(items) < spec.items:
        number += 1
        item_id = f"{spec.id_prefix}{number:06d}"
        if item_id in taken:
            continue
        # About one item in twenty is a reference work and one in eight a new arrival that
        # the library keeps out of offline issue; the rest circulate normally.
        roll = rng.random()
        reference = roll < 0.05
        title, author, language = rng.choice(_REFERENCE if reference else _POOL)
        items.append(
            SeedItem(
                item_id=item_id,
                title=title,
                author=author,
                language=language,
                not_for_loan=reference,
                not_for_offline_issue=not reference and roll < 0.175,
            )
        )
    return items


# ---------------------------------------------------------------- loading


def load_seed(path: Path | None = None) -> Seed:
    """Read and validate a seed file (JSON or TOML), or the packaged default when ``None``.

    The returned seed includes its generated items. Raises :class:`SeedError` naming the file
    and what is wrong in it.
    """
    if path is None:
        text = resources.files(__package__).joinpath(DEFAULT_SEED).read_text(encoding="utf-8")
        name, suffix = f"(packaged) {DEFAULT_SEED}", ".toml"
    else:
        name, suffix = str(path), path.suffix.lower()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SeedError(f"seed {name}: cannot be read: {exc}") from exc
    data: Any
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise SeedError(f"seed {name}: use a .json or .toml file")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise SeedError(f"seed {name}: not valid {suffix[1:].upper()}: {exc}") from exc
    try:
        return Seed.model_validate(data).with_generated_items()
    except ValidationError as exc:
        raise SeedError(f"seed {name}: {describe_errors(exc)}") from exc


# ---------------------------------------------------------------- PINs


class PinCheck(StrEnum):
    """The outcome of checking a typed PIN."""

    OK = "ok"
    WRONG = "wrong"
    MISSING = "missing"
    NOT_REQUIRED = "not_required"


class PinBook:
    """Salted PIN digests per patron, in memory only; the PINs themselves are dropped."""

    _ITERATIONS = 20_000

    def __init__(self, patrons: list[SeedPatron]) -> None:
        # One random salt per process: the digests are useless outside this process too.
        self._salt = os.urandom(16)
        self._digests = {
            p.patron_id: self._digest(p.pin.get_secret_value())
            for p in patrons
            if p.pin is not None
        }

    def _digest(self, pin: str) -> bytes:
        return hashlib.pbkdf2_hmac("sha256", pin.encode(), self._salt, self._ITERATIONS)

    def check(self, patron_id: str, pin: SecretStr | None) -> PinCheck:
        """Compare a typed PIN with the patron's, in constant time."""
        expected = self._digests.get(patron_id)
        if expected is None:
            return PinCheck.NOT_REQUIRED
        if pin is None:
            return PinCheck.MISSING
        ok = hmac.compare_digest(expected, self._digest(pin.get_secret_value()))
        return PinCheck.OK if ok else PinCheck.WRONG
