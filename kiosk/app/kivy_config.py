"""Kivy's settings for the kiosk, applied before the window is created.

Used by ``libedge kiosk run``, the app tests and the benchmark, so that all three measure and
show the same thing. Must run before anything imports ``kivy.core.window``.
"""

from __future__ import annotations

import os

__all__ = ["HEIGHT", "WIDTH", "configure_kivy"]

#: The kiosk's screen (a 10" 1280x800 touch panel); also the windowed size.
WIDTH, HEIGHT = 1280, 800


def configure_kivy(*, windowed: bool) -> None:
    """Full-screen (or a 1280x800 window), no multisampling, Escape only when windowed."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    from kivy.config import Config

    Config.set("graphics", "fullscreen", "0" if windowed else "auto")
    Config.set("graphics", "width", str(WIDTH))
    Config.set("graphics", "height", str(HEIGHT))
    # The screens are axis-aligned rectangles and pre-rendered text: multisampling adds
    # nothing to them and costs ~30 MB of framebuffer (measured: benchmarks/kiosk.py).
    Config.set("graphics", "multisamples", "0")
    # A kiosk: the Escape key must not close the app under a patron's fingers.
    Config.set("kivy", "exit_on_escape", "1" if windowed else "0")
