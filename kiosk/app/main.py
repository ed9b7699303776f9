"""The Kivy application: builds the screens, runs the controller's clock, relays touches.

:class:`KioskApp` is given an *opener*: a function that takes the ``post`` the controller
must use to come back to the UI thread and returns a running kiosk (anything with
``.controller`` and ``.close()``, such as :class:`~kiosk.wiring.KioskRuntime`). ``post`` is
``Clock.schedule_once``: the only way results of the worker thread get into the UI.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from kivy.app import App
from kivy.clock import Clock
from kivy.core.text import DEFAULT_FONT, LabelBase
from kivy.lang import Builder
from kivy.logger import Logger
from kivy.properties import (
    BooleanProperty,
    DictProperty,
    NumericProperty,
    ObjectProperty,
    StringProperty,
)
from kivy.uix.screenmanager import NoTransition, ScreenManager

from kiosk.app import SCREEN_FILE_NAMES
from kiosk.app import widgets as _widgets  # noqa: F401 - registers the widget classes
from kiosk.app.screens import SCREENS, KioskScreen, screen_for
from kiosk.app.speech import Speaker
from kiosk.app.theme import CONTRAST, NORMAL, font_paths
from kiosk.controller import KioskController
from kiosk.machine import State
from kiosk.presenter import ViewModel
from kiosk.workers import Post

__all__ = ["KV_DIR", "KioskApp", "Runtime", "spoken_text"]

log = logging.getLogger(__name__)

KV_DIR = Path(__file__).parent

#: Labels of the accessibility switches, per language (short: they sit on every screen).
LARGE_LABELS = {"vi": "Chữ to", "en": "Large text"}
SPEECH_LABELS = {"vi": "Đọc to", "en": "Read aloud"}


class Runtime(Protocol):
    """A running kiosk: its controller, and how to release what it holds."""

    @property
    def controller(self) -> KioskController:
        """The controller the screens render."""
        ...

    def close(self) -> None:
        """Stop the worker and close the devices."""
        ...


def spoken_text(view: ViewModel) -> str:
    """What is read aloud for a screen: its title, prompt and notice."""
    parts = [p.strip() for p in (view.title, view.prompt, view.notice or "") if p.strip()]
    # A pause between parts; no doubled punctuation after "Hello, An!".
    return " ".join(p if p[-1] in ".!?…:" else p + "." for p in parts)


class KioskApp(App):  # type: ignore[misc]
    """The self-checkout kiosk."""

    title = "libedge kiosk"
    view = ObjectProperty(None, allownone=True)
    theme = ObjectProperty(NORMAL)
    #: The theme's colours and type scale as properties the kv rules bind to (a kv rule
    #: does not follow ``app.theme.text`` when the theme object is replaced).
    colors = DictProperty(NORMAL.colors())
    scale = NumericProperty(NORMAL.scale)
    large = BooleanProperty(False)
    speech = BooleanProperty(False)
    large_label = StringProperty("")
    speech_label = StringProperty("")

    def __init__(
        self,
        opener: Callable[[Post], Runtime],
        *,
        screenshots: Path | None = None,
        tick_s: float = 0.2,
        speaker: Speaker | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.opener = opener
        self.screenshots = screenshots
        self.tick_s = tick_s
        self.speaker = speaker or Speaker()
        self.runtime: Runtime | None = None
        self.manager: ScreenManager | None = None
        self._shot: set[str] = set()
        #: First screenshots asked for and not taken yet: name -> frames drawn when asked.
        self._pending: dict[str, int] = {}
        self._spoken = ""
        self._stop_requested: str | None = None
        self._reload_requested = False
        #: True once the app stopped in order to start again (a configuration reload).
        self.restart_requested = False

    # ------------------------------------------------------------ life cycle

    @property
    def controller(self) -> KioskController:
        """The running controller."""
        if self.runtime is None:
            raise RuntimeError("the kiosk app has not been built yet")
        return self.runtime.controller

    def build(self) -> ScreenManager:
        """Load the font and the kv files, open the kiosk, and show its first screen."""
        fonts = font_paths()
        if fonts is not None:
            # Replacing the default font makes every label use it (Vietnamese coverage).
            LabelBase.register(DEFAULT_FONT, fonts[0], fn_bold=fonts[1])
        Builder.load_file(str(KV_DIR / "widgets.kv"))
        Builder.load_file(str(KV_DIR / "screen.kv"))
        for state in SCREENS:
            Builder.load_file(str(KV_DIR / f"{state.value}.kv"))
        # Screens are built when first shown: a faster cold start and less memory for
        # screens a kiosk may never show (staff, out of service).
        manager = ScreenManager(transition=NoTransition())
        self.manager = manager
        self.runtime = self.opener(self.post)
        self.controller.subscribe(self.show)
        self.show(self.controller.view)
        Clock.schedule_interval(self._tick, self.tick_s)
        return manager

    def on_stop(self) -> None:
        """Stop speaking, stop the worker and close the devices."""
        self.speaker.close()
        if self.runtime is not None:
            self.runtime.close()
            self.runtime = None

    def post(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the UI thread at the next frame (called from the worker thread)."""
        Clock.schedule_once(lambda _dt: fn(), 0)

    def request_stop(self, reason: str) -> None:
        """Stop at the next tick, on the UI thread; ``reason`` (e.g. "SIGTERM") is logged.

        Only a flag is set here: a signal handler runs between any two bytecodes of the UI
        thread, possibly inside Kivy's clock, so it must not take locks or call into Kivy.
        """
        self._stop_requested = reason

    def request_reload(self) -> None:
        """Load the configuration again once the kiosk is idle (a flag, like request_stop)."""
        self._reload_requested = True

    def restart(self) -> None:
        """Stop, closing the kiosk, so that the command starts it again (UI thread)."""
        self.restart_requested = True
        self.stop()  # on_stop closes the runtime

    def _tick(self, _dt: float) -> None:
        if self._stop_requested is not None:
            Logger.info("Kiosk: %s received, stopping", self._stop_requested)
            self._stop_requested = None
            self.stop()  # on_stop closes the runtime
            return
        if self.runtime is None:
            return
        if self._reload_requested:
            self._reload_requested = False
            Logger.info("Kiosk: configuration reload asked for")
            self.controller.reload_when_idle()
        self.controller.tick()

    # ------------------------------------------------------------ drawing

    def show(self, view: ViewModel) -> None:
        """Draw a new view model: switch screen if needed, update it, speak it if asked."""
        before = self.view
        if before is not None and (before.screen, before.language) != (view.screen, view.language):
            self._shoot_before_leaving()
        self.view = view
        self.large_label = LARGE_LABELS.get(view.language, LARGE_LABELS["en"])
        self.speech_label = SPEECH_LABELS.get(view.language, SPEECH_LABELS["en"])
        if self.large:
            self.large_label = "✓ " + self.large_label
        if self.speech:
            self.speech_label = "✓ " + self.speech_label
        assert self.manager is not None
        screen = self.screen(view.screen.value)
        screen.view = view
        if self.manager.current != view.screen.value:
            self.manager.current = view.screen.value
        if self.speech:
            text = spoken_text(view)
            if text != self._spoken:
                self._spoken = text
                self.speaker.say(text, view.language)
        if self.screenshots is not None:
            name = SCREEN_FILE_NAMES.format(screen=view.screen.value, language=view.language)
            if name not in self._shot:
                self._shot.add(name)
                self._pending[name] = Clock.frames_displayed
                # Later: the new screen's layout must have run before it is drawn.
                Clock.schedule_once(
                    lambda _dt: self._first_screenshot(name, view.screen.value, view.language),
                    0.1,
                )

    def _shoot_before_leaving(self) -> None:
        """Take the first shot the screen being left still owes, while it shows.

        A quick visit may move on before the shot's tenth of a second is up. If the screen
        has been drawn at least once it is saved now, under its own name; if not, the shot
        is asked for again the next time that screen shows.
        """
        for name, asked_at in list(self._pending.items()):
            del self._pending[name]
            if Clock.frames_displayed > asked_at:
                self.save_screenshot(name)
            else:
                self._shot.discard(name)

    def _first_screenshot(self, name: str, screen: str, language: str) -> None:
        """Save the first shot of a screen, if it is still owed and still showing.

        A file named after one screen must never show another: if the screen changed
        meanwhile, the shot was taken (or given up) when it was left.
        """
        if self._pending.pop(name, None) is None:
            return
        view = self.view
        if (
            self.manager is None
            or self.manager.current != screen
            or view is None
            or view.language != language
        ):
            self._shot.discard(name)
            return
        self.save_screenshot(name)

    def screen(self, name: str) -> KioskScreen:
        """The screen named ``name`` (a state's value), built the first time it is needed."""
        assert self.manager is not None
        if not self.manager.has_screen(name):
            self.manager.add_widget(screen_for(State(name)))
        screen: KioskScreen = self.manager.get_screen(name)
        return screen

    def save_screenshot(self, name: str, directory: Path | None = None) -> Path:
        """Write the current screen as a PNG (default: in the screenshot directory)."""
        directory = directory or self.screenshots or Path.cwd()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / name
        assert self.manager is not None
        self.manager.export_to_png(str(path))
        # Through Kivy's logger, so that it shows on the console the app runs from.
        Logger.info("Kiosk: screenshot saved to %s", path)
        return path

    # ------------------------------------------------------------ touches

    def press(self, button_id: str) -> None:
        """A view-model button was touched."""
        self.controller.press(button_id)

    def set_language(self, code: str) -> None:
        """A language button was touched."""
        self.controller.set_language(code)

    def keypad_entered(self, mode: str, text: str) -> None:
        """The keypad's OK: a card number, the patron's PIN or the staff PIN."""
        controller = self.controller
        if mode == "card":
            controller.card_presented(text)
        elif mode == "pin":
            controller.pin_entered(text)
        elif mode == "staff_pin":
            controller.staff_pin_entered(text)

    def toggle_large(self) -> None:
        """Switch large text and high contrast on or off."""
        self.large = not self.large
        self.theme = CONTRAST if self.large else NORMAL
        self.colors = self.theme.colors()
        self.scale = self.theme.scale
        self.controller.touch()
        if self.view is not None:
            self.show(self.view)

    def toggle_speech(self) -> None:
        """Switch spoken prompts on or off (on: the current screen is read at once)."""
        self.speech = not self.speech
        self._spoken = ""
        if not self.speech:
            self.speaker.stop()
        self.controller.touch()
        if self.view is not None:
            self.show(self.view)
