"""How the demo's patron script reaches the kiosk: inline, or across to the Kivy window's thread.

The kiosk site runs the real Kivy app (:class:`kiosk.app.main.KioskApp`) on its main thread;
the patron script runs on another thread. Controller state belongs to the UI thread, so the
script never touches the controller itself: it hands each step to :class:`UiBridge`, which
posts it to the UI thread (the app's ``post``) and waits for the result. Waiting until the
kiosk reaches a state re-checks the condition only when something happened on the UI thread
(a worker result arrived, the view changed): no polling, no sleeps. Without a window
(``--kiosk-window off``) :class:`InlineUi` runs the same script on the thread that owns a
:class:`~kiosk.workers.PostQueue`.

:func:`prepare_kivy` sets Kivy's environment before Kivy is imported: an offscreen window
when there is no display, Kivy's console log at the demo's level, nothing written to
``~/.kivy``. :class:`LatestScreenshot` keeps ``kiosk-latest.png`` fresh so that a person can
see the offscreen window. This module imports nothing of Kivy or of the kiosk.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol, TypeVar

__all__ = [
    "LATEST",
    "MODES",
    "InlineUi",
    "LatestScreenshot",
    "Ui",
    "UiBridge",
    "WindowClosedError",
    "has_display",
    "prepare_kivy",
    "retake_first_screenshot",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: ``--kiosk-window``: a window on the display if there is one, else offscreen (auto); a
#: window on the display, refused without one (on); the controller alone, no Kivy (off).
MODES = ("auto", "on", "off")
#: The periodic screenshot's name in the screenshot folder (overwritten each time).
LATEST = "kiosk-latest.png"
#: Written first and then renamed over :data:`LATEST`, so a reader never sees half a PNG.
_PARTIAL = ".kiosk-latest.partial.png"
#: Frames of the window before its first screen is laid out and drawn for certain.
SETTLE_FRAMES = 5
#: At most this many frames (10 s at 30 frames a second) for the app's own first shot.
MAX_SETTLE_FRAMES = 300
#: Kivy's names for the logging levels (``[kivy] log_level``).
_KIVY_LEVELS = {
    "DEBUG": "debug",
    "INFO": "info",
    "WARNING": "warning",
    "ERROR": "error",
    "CRITICAL": "critical",
}

Post = Callable[[Callable[[], None]], None]


class WindowClosedError(RuntimeError):
    """The window has closed: nothing runs on its thread any more."""


class Ui(Protocol):
    """Where the patron script runs controller steps and waits for the kiosk."""

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the UI thread and return its result (or raise its exception)."""
        ...

    def until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Whether ``predicate`` (run on the UI thread) holds within ``timeout`` seconds."""
        ...


class _PostQueue(Protocol):
    def run_until(self, predicate: Callable[[], bool], timeout: float) -> bool: ...


class InlineUi:
    """No window: the script's own thread is the UI thread, results come through a queue."""

    def __init__(self, queue: _PostQueue) -> None:
        self._queue = queue

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` at once."""
        return fn()

    def until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Run posted results as they arrive until ``predicate`` holds or time is up."""
        return bool(self._queue.run_until(predicate, timeout))


class UiBridge:
    """Runs the script's steps on the window's UI thread and waits for what they return.

    ``post`` is the app's (Kivy's ``Clock.schedule_once``, callable from any thread). Give
    the controller :meth:`wrap` of it and subscribe :meth:`changed` to its view: every
    result that reaches the UI thread then wakes the waits in :meth:`until`.
    """

    def __init__(self, post: Post, timeout: float) -> None:
        self._post = post
        self.timeout = timeout
        self._cond = threading.Condition()
        self._generation = 0
        self._closed = False
        self._opened: object | None = None

    # ------------------------------------------------------------ UI-thread side

    def wrap(self, post: Post) -> Post:
        """``post`` for the controller: after each posted result, wake the script's waits."""

        def posted(fn: Callable[[], None]) -> None:
            def run() -> None:
                try:
                    fn()
                finally:
                    self.changed()

            post(run)

        return posted

    def changed(self, *_args: object) -> None:
        """Something happened on the UI thread: waits re-check their condition."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def opened(self, value: object) -> None:
        """The app built its kiosk (``value``: the runtime); :meth:`wait_opened` returns it."""
        with self._cond:
            self._opened = value
            self._cond.notify_all()

    def close(self) -> None:
        """The window has closed: waiting calls raise :class:`WindowClosedError` from now on."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # ------------------------------------------------------------ script side

    @property
    def closed(self) -> bool:
        """Whether the window has closed."""
        with self._cond:
            return self._closed

    def wait_opened(self, timeout: float) -> object:
        """The runtime the app opened, once it has (raises if the window closed first)."""
        with self._cond:
            self._cond.wait_for(lambda: self._opened is not None or self._closed, timeout)
            if self._opened is None:
                raise WindowClosedError("the kiosk window closed before the kiosk opened")
            return self._opened

    def post(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the UI thread soon, without waiting for it."""
        if not self.closed:
            self._post(fn)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the UI thread; wait (bounded) for its result or exception."""
        result: list[T] = []
        error: list[BaseException] = []
        done = threading.Event()

        def run() -> None:
            try:
                result.append(fn())
            except BaseException as exc:
                # Handed to the script: an exception must not escape into Kivy's loop.
                error.append(exc)
            finally:
                with self._cond:
                    done.set()
                    self._cond.notify_all()

        with self._cond:
            if self._closed:
                raise WindowClosedError("the kiosk window has closed")
        self._post(run)
        with self._cond:
            self._cond.wait_for(lambda: done.is_set() or self._closed, self.timeout)
        if error:
            raise error[0]
        if result:
            return result[0]
        if self.closed:
            raise WindowClosedError("the kiosk window closed during a step")
        raise TimeoutError(f"the kiosk's UI thread did not run a step within {self.timeout:g} s")

    def until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Whether ``predicate`` holds within ``timeout``: checked again after each UI event."""
        end = time.monotonic() + timeout
        while True:
            with self._cond:
                seen = self._generation
            if self.call(predicate):
                return True
            remaining = end - time.monotonic()
            if remaining <= 0:
                return False
            self._wait_change(seen, remaining)

    def _wait_change(self, seen: int, timeout: float) -> None:
        """Wait until the UI thread reports anything after generation ``seen``."""
        with self._cond:
            self._cond.wait_for(lambda: self._generation != seen or self._closed, timeout)
            if self._closed:
                raise WindowClosedError("the kiosk window closed while waiting")


def has_display(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a window can be shown: an X11 or Wayland display is named."""
    env = os.environ if environ is None else environ
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def prepare_kivy(workdir: Path, log_level: str) -> bool:
    """Kivy's environment for the demo; call before Kivy is imported. True: offscreen.

    Kivy's log goes to its own console handler at the demo's level (``MIXED``: the site's
    logging setup is left alone), and Kivy writes no configuration or log files, so the
    demo leaves ``~/.kivy`` as it was.
    """
    offscreen = not has_display()
    if offscreen:
        os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "MIXED")
    os.environ.setdefault("KIVY_NO_CONFIG", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_HOME", str(workdir / "kivy-home"))
    os.environ.setdefault("KCFG_KIVY_LOG_LEVEL", _KIVY_LEVELS.get(log_level.upper(), "error"))
    # The screens change a few times a second at most: 30 frames are plenty, and the demo
    # shares the machine with everything else it runs.
    os.environ.setdefault("KCFG_GRAPHICS_MAXFPS", "30")
    return offscreen


class _Shooter(Protocol):
    def save_screenshot(self, name: str, directory: Path | None = None) -> Path: ...


def retake_first_screenshot(app: _Shooter, ui: UiBridge, path: Path) -> None:
    """Save the window's first screen again (to ``path``) once Kivy has surely drawn it.

    KioskApp saves each new screen 0.1 s after showing it, but the first one is shown inside
    ``build()``, before Kivy's first frame, and comes out blank. After a few frames through
    the UI thread, and once the app's own (blank) shot exists, it is taken again.
    """
    frames = 0
    # Each call is one frame of Kivy's loop; bounded, should the app never save its shot.
    while frames < SETTLE_FRAMES or (not path.exists() and frames < MAX_SETTLE_FRAMES):
        ui.call(lambda: None)
        frames += 1
    ui.call(lambda: app.save_screenshot(path.name, path.parent))


class LatestScreenshot:
    """Saves the window as ``kiosk-latest.png`` every few seconds, on the UI thread."""

    def __init__(self, app: _Shooter, ui: UiBridge, folder: Path, every_s: float) -> None:
        self.app, self.ui, self.folder, self.every_s = app, ui, folder, every_s
        self.saved = 0

    @property
    def path(self) -> Path:
        """Where the latest screenshot is."""
        return self.folder / LATEST

    def shoot(self) -> None:
        """Save one screenshot (UI thread); a failure is logged, the window keeps running."""
        try:
            partial = self.app.save_screenshot(_PARTIAL, self.folder)
            partial.replace(self.path)
            self.saved += 1
        except Exception:
            log.exception("kiosk screenshot failed")
        finally:
            self.ui.changed()  # an event on the UI thread, like any other

    def start(self, stop: threading.Event) -> threading.Thread:
        """One screenshot now, then one every ``every_s`` seconds until ``stop``."""

        def loop() -> None:
            self.ui.post(self.shoot)
            while not stop.wait(self.every_s):
                self.ui.post(self.shoot)

        thread = threading.Thread(target=loop, name="screenshots", daemon=True)
        thread.start()
        return thread
