"""Killing the kiosk mid-checkout (SIGKILL) loses no committed event and leaves no item lent
without its security switched, or unsecured without a record.

The simulated FEIG reader runs in the test process on a pty; a child process runs the real
controller over the real driver, a fake agent committing to a real SQLite outbox file, and
the intent journal. The child announces chosen points (before a tag is switched, after it is
switched, after the event is committed) and is killed there; another run is killed at
whatever moment follows its second commit. Afterwards the test checks the outbox, runs
recovery as the restarted kiosk would, and checks the invariants on the tags themselves.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.contract import Checkout, SecurityWriteFailure
from edge_agent.outbox import SqliteOutbox
from hardware.feig import FeigReader
from kiosk.adapters import ReaderPad
from kiosk.fakes import FakeClock, events_in
from kiosk.journal import IntentJournal
from kiosk.recovery import recover
from simulators.reader import SimTag
from tests.test_kiosk_support import (
    SECURITY,
    START,
    TITLES,
    SimPad,
    library,
    sim_pad,
    sim_tag,
)

ROOT = Path(__file__).resolve().parent.parent
ITEMS = list(TITLES)[:4]
DEVICE = "kiosk-1"


# ---------------------------------------------------------------- the child process


def child_main(argv: list[str]) -> None:
    """Run one checkout of the stack on the pad; stop dead at the named point."""
    from kiosk.controller import KioskController
    from kiosk.workers import InlineWorker, post_inline
    from tests.test_kiosk_support import config

    pty_path, workdir, point, at = argv[0], Path(argv[1]), argv[2], int(argv[3])
    pad = ReaderPad(FeigReader(pty_path, timeout=2.0), SECURITY)
    outbox = SqliteOutbox(workdir / "outbox.sqlite")
    agent = library(outbox=outbox)
    journal = IntentJournal(workdir / "intents.sqlite")
    switches = {"n": 0}
    commits = {"n": 0}

    def stop(where: str) -> None:
        print(f"POINT {where}", flush=True)
        sys.stdin.read()  # the parent kills us here
        os._exit(3)

    real_switch, real_append = pad.set_security, agent.append

    def switch(uid: bytes, *, secured: bool) -> object:
        index = switches["n"]
        switches["n"] += 1
        if point == "before-switch" and index == at:
            stop(point)
        result = real_switch(uid, secured=secured)
        if point == "after-switch" and index == at:
            stop(point)
        return result

    def append(payload: object, **kwargs: object) -> object:
        stored = real_append(payload, **kwargs)  # type: ignore[arg-type]
        print(f"COMMITTED {stored.seq} {stored.event_id}", flush=True)
        if isinstance(payload, Checkout):
            index = commits["n"]
            commits["n"] += 1
            if point == "after-commit" and index == at:
                stop(point)
        return stored

    pad.set_security = switch  # type: ignore[method-assign]
    agent.append = append  # type: ignore[method-assign]
    kiosk = KioskController(
        config(),
        pad=pad,
        agent=agent,
        clock=FakeClock(START),
        journal=journal,
        worker=InlineWorker(),
        post=post_inline,
    )
    kiosk.start()
    kiosk.card_presented("P0007")
    kiosk.choose("borrow")
    kiosk.scan_now()
    print("FINISHED", flush=True)


# ---------------------------------------------------------------- the test side


@pytest.fixture
def rig() -> Iterator[SimPad]:
    """A simulated pad on a pty, holding a stack of secured items."""
    with sim_pad() as pad:
        pad.field.place(*[sim_tag(item_id) for item_id in ITEMS])
        yield pad


def _lines(stream: object, out: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        out.put(line.strip())
    out.put("EOF")


def run_child(
    rig: SimPad, workdir: Path, point: str, at: int, *, kill_after_commits: int = 0
) -> list[tuple[int, str]]:
    """Start the child, kill it at the point (or after N commits); return what it committed."""
    code = "import sys; from tests.test_kiosk_crash import child_main; child_main(sys.argv[1:])"
    child = subprocess.Popen(
        [sys.executable, "-c", code, rig.sim.url, str(workdir), point, str(at)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_lines, args=(child.stdout, lines), daemon=True)
    reader.start()
    committed: list[tuple[int, str]] = []
    try:
        while True:
            line = lines.get(timeout=30)
            if line.startswith("COMMITTED"):
                _, seq, event_id = line.split()
                committed.append((int(seq), event_id))
                if kill_after_commits and len(committed) == kill_after_commits:
                    break
            elif line.startswith("POINT"):
                break
            elif line in ("FINISHED", "EOF"):
                pytest.fail(f"the child was not stopped at {point} {at} ({line})")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        reader.join(timeout=10)
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.close()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    return committed


def settle_line(rig: SimPad) -> None:
    """Let the simulator answer what the dead child sent, then drop those answers."""
    assert rig.sim.wait_until(lambda s: s.replies_sent + s.frames_ignored >= s.frames_received, 5)
    fd = os.open(rig.sim.url, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        termios.tcflush(fd, termios.TCIFLUSH)
    finally:
        os.close(fd)


def check_after_restart(rig: SimPad, workdir: Path, committed: list[tuple[int, str]]) -> None:
    """Every committed event is kept; after recovery every unsecured tag is accounted for."""
    settle_line(rig)
    outbox = SqliteOutbox(workdir / "outbox.sqlite")
    journal = IntentJournal(workdir / "intents.sqlite")
    reader = FeigReader(rig.sim.url, timeout=2.0)
    try:
        for seq, event_id in committed:
            stored = outbox.get(DEVICE, seq)
            assert stored is not None, f"committed event {seq} lost"
            assert stored.event_id == event_id
        agent = library(outbox=outbox)
        recover(journal, ReaderPad(reader, SECURITY), agent, FakeClock(START))
        assert journal.count() == 0
        events = events_in(outbox, DEVICE)
        lent = {e.item_id for e in events if isinstance(e, Checkout)}
        failed = {e.tag_uid for e in events if isinstance(e, SecurityWriteFailure)}
        tags: list[SimTag] = rig.field.tags()
        for tag, item_id in zip(tags, ITEMS, strict=True):
            uid = tag.uid.hex().upper()
            if rig.afi(tag) != SECURITY.secured_afi:
                assert item_id in lent or uid in failed, f"{item_id} unsecured, unrecorded"
            if item_id in lent and rig.afi(tag) == SECURITY.secured_afi:
                assert uid in failed, f"{item_id} lent but secured, with no failure recorded"
    finally:
        reader.close()
        journal.close()
        outbox.close()


@pytest.mark.parametrize("at", [0, 2])
@pytest.mark.parametrize("point", ["before-switch", "after-switch", "after-commit"])
def test_killed_at_a_chosen_point(rig: SimPad, tmp_path: Path, point: str, at: int) -> None:
    """SIGKILL before a switch, after it, or after the commit: nothing lost or unaccounted."""
    committed = run_child(rig, tmp_path, point, at)
    check_after_restart(rig, tmp_path, committed)


def test_killed_while_the_stack_is_being_processed(rig: SimPad, tmp_path: Path) -> None:
    """SIGKILL at whatever moment follows the second commit: the same guarantees hold."""
    committed = run_child(rig, tmp_path, "none", 0, kill_after_commits=2)
    assert len(committed) >= 2
    check_after_restart(rig, tmp_path, committed)
