"""``libedge kiosk``: run the self-checkout kiosk app.

``libedge kiosk run --config FILE [--windowed] [--screenshots DIR]`` opens the devices the
configuration names (pad reader, printer, NFC card reader, barcode scanner, the agent's local
API), starts the controller and shows the Kivy app full-screen (``--windowed``: a 1280x800
window, for development). ``--screenshots DIR`` saves each screen, in each language, the first
time it is shown. Kivy is imported only here, inside :func:`run`.

SIGTERM (systemd's stop) and SIGINT (Ctrl-C) stop the app on its UI thread, so that its
``on_stop`` closes the kiosk (card reader, scanner, worker, journal, agent, pad) and the
command returns 0; a second such signal while stopping ends the process at once.

SIGHUP (``systemctl reload``), or the central system's ReloadConfig command, loads the
configuration again: once no patron or staff member is at the kiosk, the file is checked;
if it can be used, the kiosk is closed as for a stop and the command executes itself again
in the same process (so systemd keeps its PID, and a kiosk run by hand comes back too). A
file that cannot be used is named in the log and the kiosk goes on as it was.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

__all__ = [
    "HELP",
    "RELOAD_SIGNAL",
    "STOP_SIGNALS",
    "ConfigReload",
    "configure",
    "handle_signals",
    "restart_argv",
    "run",
]

HELP = "run the self-checkout kiosk app (Kivy)"

#: The signals that stop the kiosk cleanly.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: The signal that loads the configuration again (systemd's ExecReload sends it).
RELOAD_SIGNAL = signal.SIGHUP

log = logging.getLogger(__name__)


class SignalledApp(Protocol):
    """An app that can be asked, from a signal handler, to stop or reload on its own thread."""

    def request_stop(self, reason: str) -> None:
        """Set a flag the app acts upon soon; no locks, no UI calls."""
        ...

    def request_reload(self) -> None:
        """Set a flag the app acts upon soon; no locks, no UI calls."""
        ...


@contextmanager
def handle_signals(app: SignalledApp) -> Iterator[None]:
    """While inside: SIGTERM and SIGINT stop ``app``, SIGHUP reloads its configuration.

    The previous handlers are restored on the way out.
    """
    handled = (*STOP_SIGNALS, RELOAD_SIGNAL)
    previous = {sig: signal.getsignal(sig) for sig in handled}

    def stop(signum: int, _frame: FrameType | None) -> None:
        # The next one of either signal takes the previous way out (SIGTERM: end at once,
        # SIGINT: KeyboardInterrupt), for a stop that hangs.
        _restore({sig: previous[sig] for sig in STOP_SIGNALS})
        app.request_stop(signal.Signals(signum).name)

    def reload(_signum: int, _frame: FrameType | None) -> None:
        app.request_reload()

    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)
    signal.signal(RELOAD_SIGNAL, reload)
    try:
        yield
    finally:
        _restore(previous)


class ConfigReload:
    """The kiosk's :class:`~kiosk.ports.Reloader`: check the file, then restart the app."""

    def __init__(self, config: Path, restart: Callable[[], None]) -> None:
        self.config = config
        self._restart = restart

    def check(self) -> str | None:
        """Why the file cannot run this kiosk (as the command's start would say), or None."""
        return _settings_problem(self.config)[1]

    def restart(self) -> None:
        """Stop the app; :func:`run` then executes the command again."""
        self._restart()


def _settings_problem(path: Path) -> tuple[Any, str | None]:
    """(settings, None) for a file a kiosk can run on, else (None, why not)."""
    from edge_agent.config import ConfigError, load_config

    try:
        settings = load_config(path)
    except ConfigError as exc:
        return None, str(exc)
    except UnicodeDecodeError as exc:
        # load_config lets this one through (reported to the lead); name the file here.
        return None, f"{path}: not UTF-8 text: {exc}"
    if settings.devices.item_reader is None:
        return None, "devices.item_reader: a kiosk needs its pad reader"
    return settings, None


def restart_argv(args: argparse.Namespace) -> list[str]:
    """The command line that starts this kiosk again, built from its parsed arguments.

    Built from ``args``, not ``sys.argv``: the kiosk may have been started by the
    ``libedge`` script or by ``python -m edge_agent.cli``; both take these arguments.
    """
    argv = [sys.executable, "-m", "edge_agent.cli", "kiosk", "run"]
    argv += ["--config", str(Path(args.config).absolute())]
    if args.windowed:
        argv.append("--windowed")
    if args.screenshots is not None:
        argv += ["--screenshots", str(Path(args.screenshots).absolute())]
    return argv


_Handler = Callable[[int, FrameType | None], Any] | int | None


def _restore(handlers: dict[signal.Signals, _Handler]) -> None:
    for sig, old in handlers.items():
        # None: a handler not installed from Python, which cannot be put back from here.
        if old is not None:
            signal.signal(sig, old)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the kiosk command's arguments."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    app = sub.add_parser("run", help="show the kiosk app (full-screen unless --windowed)")
    app.add_argument("--config", type=Path, required=True, help="the site configuration (TOML)")
    app.add_argument("--windowed", action="store_true", help="a 1280x800 window, not full-screen")
    app.add_argument(
        "--screenshots", type=Path, default=None, metavar="DIR", help="save every screen shown"
    )


def run(args: argparse.Namespace) -> int:
    """Load the configuration, then run the app until it is closed (or restarted)."""
    from edge_agent.config import ConfigError

    settings, problem = _settings_problem(args.config)
    if problem is not None:
        print(f"libedge kiosk: {problem}", file=sys.stderr)
        return 2
    from kiosk.app.kivy_config import configure_kivy

    # [kiosk] fullscreen = false in the file also gives a window (a kiosk on a desktop).
    configure_kivy(windowed=args.windowed or not settings.kiosk.fullscreen)
    from kiosk.app.main import KioskApp
    from kiosk.wiring import KioskRuntime, open_kiosk
    from kiosk.workers import Post

    def opener(post: Post) -> KioskRuntime:
        return open_kiosk(settings, post, on_reload=ConfigReload(args.config, app.restart))

    app = KioskApp(opener, screenshots=args.screenshots)
    try:
        # Installed before the window opens: SDL then leaves SIGTERM and SIGINT to us.
        with handle_signals(app):
            app.run()
    except ConfigError as exc:
        print(f"libedge kiosk: {exc}", file=sys.stderr)
        return 2
    if app.restart_requested:
        _execute_again(restart_argv(args))
    return 0


def _execute_again(argv: list[str]) -> None:
    """Replace this process with ``argv`` (same PID), leaving no descriptor behind.

    The display, the serial ports and the journal were closed by the app's stop; closing
    every other descriptor above stderr as well means none (a DRM device, a socket) can
    survive into the new kiosk and hold what it needs.
    """
    log.info("starting the kiosk again: %s", " ".join(argv))
    sys.stdout.flush()
    sys.stderr.flush()
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    os.execv(argv[0], argv)  # noqa: S606 - no shell on purpose: the arguments stay as they are
