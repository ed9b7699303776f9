"""The demo's kiosk window plumbing: the script's bridge to the UI thread, screenshots, ``off``.

:class:`~simulators.demo.kiosk_window.UiBridge` is tested against a real second thread that
plays Kivy's part (it runs what is posted to it, in order). The Kivy window itself runs in
tests/test_demo.py's end-to-end demo; here the controller-only mode (``--kiosk-window off``)
gets a short run of its own.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from simulators.demo.kiosk_window import (
    LATEST,
    InlineUi,
    LatestScreenshot,
    UiBridge,
    WindowClosedError,
    has_display,
    prepare_kivy,
)

LIBEDGE = str(Path(sys.executable).with_name("libedge"))


class UiThread:
    """A thread standing in for Kivy's: runs posted callables one at a time, in order."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="fake-ui")
        self.ident: int | None = None
        self.thread.start()

    def post(self, fn: Callable[[], None]) -> None:
        """What KioskApp.post is: run ``fn`` on the UI thread soon."""
        self.jobs.put(fn)

    def _loop(self) -> None:
        self.ident = threading.get_ident()
        while (job := self.jobs.get()) is not None:
            job()

    def stop(self) -> None:
        """Finish what is queued, then end the thread."""
        self.jobs.put(None)
        self.thread.join(10)


@pytest.fixture
def ui() -> Iterator[tuple[UiBridge, UiThread]]:
    """A bridge onto a running stand-in UI thread (5 s per step)."""
    thread = UiThread()
    bridge = UiBridge(thread.post, 5.0)
    yield bridge, thread
    bridge.close()
    thread.stop()


def test_call_runs_on_the_ui_thread_and_returns_its_result(
    ui: tuple[UiBridge, UiThread],
) -> None:
    """A step runs on the UI thread; its value, or its exception, comes back to the caller."""
    bridge, thread = ui
    assert bridge.call(threading.get_ident) == thread.ident != threading.get_ident()

    def fail() -> None:
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        bridge.call(fail)
    assert bridge.call(lambda: 42) == 42  # the UI thread survived the exception


def test_until_wakes_on_each_result_posted_to_the_controller(
    ui: tuple[UiBridge, UiThread],
) -> None:
    """until() re-checks when a worker's result reaches the UI thread, and only then."""
    bridge, _thread = ui
    state = {"screen": "identifying"}
    checks: list[str] = []
    controller_post = bridge.wrap(_thread.post)
    worker_may_answer = threading.Event()

    def predicate() -> bool:
        checks.append(state["screen"])
        if len(checks) == 1:
            worker_may_answer.set()  # first look done: now the result arrives
        return state["screen"] == "choose"

    def worker() -> None:
        assert worker_may_answer.wait(5)
        controller_post(lambda: state.update(screen="choose"))

    answering = threading.Thread(target=worker)
    answering.start()
    assert bridge.until(predicate, 5.0)
    answering.join(5)
    # One look before the result, one after it: no polling in between.
    assert checks == ["identifying", "choose"]


def test_until_gives_up_at_its_deadline(ui: tuple[UiBridge, UiThread]) -> None:
    """A condition that never holds is False after the timeout, looked at once more then."""
    bridge, _thread = ui
    looks: list[int] = []
    assert not bridge.until(lambda: bool(looks.append(1)), 0.2)
    assert len(looks) == 2  # at the start, and at the deadline


def test_a_closed_window_ends_waits_and_calls(ui: tuple[UiBridge, UiThread]) -> None:
    """Closing the window wakes a script waiting on it; later steps raise at once."""
    bridge, _thread = ui
    waiting = threading.Event()
    outcome: list[BaseException] = []

    def script() -> None:
        try:
            bridge.until(lambda: bool(waiting.set()), 30.0)
        except WindowClosedError as exc:
            outcome.append(exc)

    runner = threading.Thread(target=script)
    runner.start()
    assert waiting.wait(5)
    bridge.close()
    runner.join(5)
    assert not runner.is_alive()
    assert len(outcome) == 1
    with pytest.raises(WindowClosedError):
        bridge.call(lambda: None)
    with pytest.raises(WindowClosedError):
        bridge.wait_opened(0.0)


def test_a_ui_thread_that_does_not_answer_times_out() -> None:
    """A step the UI thread never runs ends in TimeoutError, not a hang."""
    bridge = UiBridge(lambda _fn: None, 0.1)  # posted steps go nowhere
    with pytest.raises(TimeoutError):
        bridge.call(lambda: None)


def test_wait_opened_returns_the_runtime(ui: tuple[UiBridge, UiThread]) -> None:
    """The runtime the app opened (on the UI thread) is handed to the waiting script."""
    bridge, thread = ui
    runtime = object()
    thread.post(lambda: bridge.opened(runtime))
    assert bridge.wait_opened(5.0) is runtime


def test_inline_ui_runs_steps_at_once() -> None:
    """Without a window, steps run on the caller's thread; waits run the posted queue."""
    from kiosk.workers import PostQueue

    post = PostQueue()
    inline = InlineUi(post)
    assert inline.call(threading.get_ident) == threading.get_ident()
    done: list[int] = []
    post(lambda: done.append(1))
    assert inline.until(lambda: bool(done), 1.0)


class _FakeApp:
    """Saves a valid PNG the way KioskApp.save_screenshot does (to ``directory/name``)."""

    def __init__(self) -> None:
        self.threads: set[int] = set()

    def save_screenshot(self, name: str, directory: Path | None = None) -> Path:
        from PIL import Image

        assert directory is not None
        self.threads.add(threading.get_ident())
        directory.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 40), (200, 30, 30)).save(directory / name)
        return directory / name


def test_latest_screenshot_is_replaced_whole(tmp_path: Path, ui: tuple[UiBridge, UiThread]) -> None:
    """Each shot is saved on the UI thread, then renamed over kiosk-latest.png."""
    bridge, thread = ui
    app = _FakeApp()
    shots = LatestScreenshot(app, bridge, tmp_path / "shots", every_s=0.05)
    stop = threading.Event()
    posting = shots.start(stop)
    assert bridge.until(lambda: shots.saved >= 3, 5.0)
    stop.set()
    posting.join(5)
    bridge.call(lambda: None)  # in order: every shot posted before has run
    assert app.threads == {thread.ident}
    assert sorted(p.name for p in (tmp_path / "shots").iterdir()) == [LATEST]
    assert shots.path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_prepare_kivy_goes_offscreen_without_a_display(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No DISPLAY nor WAYLAND_DISPLAY: SDL offscreen, Kivy quiet at the demo's level."""
    # A copy of the environment: prepare_kivy sets variables (KIVY_NO_ARGS, ...) that the
    # Kivy apps later tests start would inherit from this process.
    monkeypatch.setattr(os, "environ", os.environ.copy())
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER", "KCFG_KIVY_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("KIVY_HOME", "KIVY_LOG_MODE", "KIVY_NO_CONFIG", "KIVY_NO_FILELOG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("KCFG_GRAPHICS_MAXFPS", raising=False)
    assert not has_display()
    assert prepare_kivy(tmp_path, "warning") is True
    assert os.environ["SDL_VIDEODRIVER"] == "offscreen"
    assert os.environ["KCFG_KIVY_LOG_LEVEL"] == "warning"
    assert os.environ["KIVY_LOG_MODE"] == "MIXED"
    assert os.environ["KIVY_HOME"] == str(tmp_path / "kivy-home")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    monkeypatch.delenv("SDL_VIDEODRIVER")
    assert has_display()
    assert prepare_kivy(tmp_path, "INFO") is False
    assert "SDL_VIDEODRIVER" not in os.environ


def test_controller_only_mode_still_runs(tmp_path: Path) -> None:
    """--kiosk-window off: the kiosk controller serves patrons without Kivy; no screenshots."""
    workdir = tmp_path / "demo"
    argv = [LIBEDGE, "demo", "--headless", "--port", "0", "--workdir", str(workdir)]
    argv += ["--duration", "8", "--offline-for", "0", "--gap", "0.3", "--kiosk-window", "off"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "[kiosk] visit 1: P0007 borrow:" in proc.stdout, output[-3000:]
    assert "kiosk window" not in proc.stdout
    assert not (workdir / "kiosk" / "screenshots").exists()
    assert "[demo] stopped kiosk: exit status 0" in proc.stdout
