"""Shared rigs for the kiosk tests (this module holds no tests of its own).

- :func:`sim_pad`: the simulated FEIG reader on a real pty, the real driver, and the kiosk's
  :class:`~kiosk.adapters.ReaderPad` on top — what the kiosk has on a real pad.
- :func:`library`: a :class:`~kiosk.fakes.MemoryAgent` seeded with patrons and items that
  cover every case (PIN, blocked, limit, hold, not for loan, English speaker).
- :func:`make_kiosk`: a controller over those ports, synchronous (InlineWorker) or with a
  real worker thread and a :class:`~kiosk.workers.PostQueue` the test thread drains.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from edge_agent.config import OfflinePolicy
from edge_agent.outbox import Outbox
from hardware.feig import FeigReader
from hardware.tags import SecurityConfig
from kiosk.adapters import ReaderPad
from kiosk.config import KioskConfig
from kiosk.controller import KioskController
from kiosk.fakes import FakeClock, FakeItem, FakePatron, MemoryAgent, MemoryMailer, MemoryPrinter
from kiosk.flows import FINAL
from kiosk.journal import IntentJournal
from kiosk.ports import ItemPad, Reloader
from kiosk.presenter import ViewModel
from kiosk.workers import InlineWorker, PostQueue, ThreadWorker, post_inline
from simulators.reader import FeigSimulator, RFField, SimTag

SECURITY = SecurityConfig(secured_afi=0x07, unsecured_afi=0xC2)
HOME_ISIL = "VN-HaNL"
TODAY = dt.date(2025, 3, 10)
START = dt.datetime(2025, 3, 10, 2, 0, tzinfo=dt.UTC)  # 09:00 in Hà Nội
WAIT = 10.0  # generous; a healthy run never waits this long

TITLES = {
    "3100001": "Dế Mèn phiêu lưu ký",
    "3100002": "Truyện Kiều",
    "3100003": "Số đỏ",
    "3100004": "Harry Potter and the Philosopher's Stone",
    "3100005": "Tắt đèn",
    "3100006": "Nỗi buồn chiến tranh",
    "3100007": "Cho tôi xin một vé đi tuổi thơ",
    "3100008": "Lược sử thời gian",
    "3100009": "Matilda",
    "3100010": "Bỉ vỏ",
}
ON_HOLD = "3100020"  # waiting for P0007
NOT_FOR_LOAN = "3100021"  # reference only
SET_ITEM = "3100030"  # a book with two CDs: three parts


def library(outbox: Outbox | None = None, **kwargs: object) -> MemoryAgent:
    """A fake agent with a small library behind it."""
    patrons = [
        FakePatron("P0001", "Nguyễn Văn An", pin="1234", language="vi"),
        FakePatron("P0002", "Trần Thị Bình", blocked=True, language="vi"),
        FakePatron("P0004", "Emma Wilson", pin="0000", language="en"),
        FakePatron("P0005", "Phạm Quốc Dũng", max_loans=2, language="vi"),
        FakePatron("P0006", "Hoàng Thị Em", language="vi", fines=5000),
        FakePatron("P0007", "John Smith", language="en"),
    ]
    items = [FakeItem(item_id, title) for item_id, title in TITLES.items()]
    items += [FakeItem(f"31000{n}", f"Sách số {n}") for n in range(11, 20)]
    items += [
        FakeItem(ON_HOLD, "Truyện cổ Grimm", holds=["P0007"]),
        FakeItem(NOT_FOR_LOAN, "Từ điển Tiếng Việt", not_for_loan=True),
        FakeItem(SET_ITEM, "Tiếng Anh cho mọi người (sách + 2 CD)"),
    ]
    return MemoryAgent(patrons, items, outbox=outbox, today=TODAY, **kwargs)  # type: ignore[arg-type]


def config(**changes: object) -> KioskConfig:
    """The kiosk configuration of the tests (short timers; Vietnamese first)."""
    base = KioskConfig(
        library_name="Thư viện thử nghiệm",
        home_isil=HOME_ISIL,
        inactivity_timeout_s=60.0,
        offline=OfflinePolicy(max_items_per_patron=3, loan_days=14),
        security=SECURITY,
        scan_interval_s=0.2,
        attract_scan_interval_s=0.5,
        countdown_from_s=20.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def sim_tag(item_id: str, **kwargs: object) -> SimTag:
    """A secured tag of our library for ``item_id`` (ISO 28560-2)."""
    options: dict[str, object] = {"isil": HOME_ISIL, "secured": True}
    options.update(kwargs)
    return SimTag.from_item(item_id, **options)  # type: ignore[arg-type]


@dataclass
class SimPad:
    """A simulated reader on a pty with the real driver and the kiosk's pad adapter."""

    field: RFField
    sim: FeigSimulator
    reader: FeigReader
    pad: ReaderPad

    def afi(self, tag: SimTag) -> int:
        """The AFI a tag holds right now."""
        with self.field.lock:
            return tag.afi


@contextmanager
def sim_pad(security: SecurityConfig = SECURITY) -> Iterator[SimPad]:
    """A simulated FEIG reader on a real pty, opened by the real driver."""
    field_ = RFField()
    sim = FeigSimulator(field_, air_time=False)
    try:
        path = sim.start_pty()
        reader = FeigReader(path, timeout=2.0)
    except BaseException:
        sim.stop()
        raise
    try:
        yield SimPad(field_, sim, reader, ReaderPad(reader, security, name="simulated pad"))
    finally:
        reader.close()
        sim.stop()


@dataclass
class Kiosk:
    """A controller and everything around it."""

    controller: KioskController
    agent: MemoryAgent
    clock: FakeClock
    journal: IntentJournal
    printer: MemoryPrinter | None
    mailer: MemoryMailer | None
    post: PostQueue | None
    worker: InlineWorker | ThreadWorker
    views: list[ViewModel] = field(default_factory=list)

    @property
    def view(self) -> ViewModel:
        """The controller's current view model."""
        return self.controller.view

    def run_until(self, predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
        """Drain posted results until ``predicate`` holds (synchronous kiosks: check it)."""
        if self.post is None:
            return predicate()
        return self.post.run_until(predicate, timeout)

    def settle(self, timeout: float = WAIT) -> None:
        """Let every job finish and every result arrive."""
        if isinstance(self.worker, ThreadWorker):
            assert self.worker.wait_idle(timeout), "the kiosk worker did not go idle"
        if self.post is not None:
            self.post.run_pending()

    def scan(self) -> None:
        """Read the pad now and wait until every line is final (no set left waiting counts)."""
        self.controller.scan_now()
        self.settle()
        assert self.run_until(self.lines_final), [line.status for line in self.view.lines]

    def lines_final(self) -> bool:
        """Whether the pad has been read and no line is still being checked."""
        return (
            not self.controller.scanner.in_flight
            and not self.view.busy
            and all(line.status in FINAL or line.status == "waiting" for line in self.view.lines)
        )

    def identify(self, card: str, pin: str | None = None) -> None:
        """Present a card (and PIN) and wait for the choice screen."""
        assert self.controller.card_presented(card)
        if pin is not None:
            self.settle()
            assert self.controller.pin_entered(pin)
        self.settle()
        assert self.run_until(lambda: self.view.screen == "choose"), self.view

    def close(self) -> None:
        """Stop the worker and close the journal."""
        self.worker.close()
        self.journal.close()


def make_kiosk(
    tmp_path: Path,
    pad: ItemPad,
    *,
    agent: MemoryAgent | None = None,
    kiosk_config: KioskConfig | None = None,
    threaded: bool = False,
    printer: bool = True,
    mailer: bool = False,
    journal: IntentJournal | None = None,
    clock: FakeClock | None = None,
    reloader: Reloader | None = None,
) -> Kiosk:
    """A controller over ``pad`` and a fake library; call ``close()`` (or use the fixture)."""
    agent = agent if agent is not None else library()
    clock = clock or FakeClock(START)
    journal = journal or IntentJournal(tmp_path / "kiosk" / "intents.sqlite")
    the_printer = MemoryPrinter() if printer else None
    the_mailer = MemoryMailer() if mailer else None
    worker: InlineWorker | ThreadWorker
    if threaded:
        worker, post = ThreadWorker(), PostQueue()
    else:
        worker, post = InlineWorker(), None
    controller = KioskController(
        kiosk_config or config(),
        pad=pad,
        agent=agent,
        clock=clock,
        journal=journal,
        worker=worker,
        post=post if post is not None else post_inline,
        printer=the_printer,
        mailer=the_mailer,
        on_reload=reloader,
    )
    kiosk = Kiosk(controller, agent, clock, journal, the_printer, the_mailer, post, worker)
    controller.subscribe(kiosk.views.append)
    controller.start()
    kiosk.settle()
    return kiosk
