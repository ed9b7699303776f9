"""The Kivy kiosk app: one screen per controller state, each a ``.kv`` file beside a thin class.

The only package of the project that imports Kivy. :class:`~kiosk.app.main.KioskApp` renders
the controller's view model (:mod:`kiosk.presenter`) and hands every touch back to the
controller; reader and network work stay on the controller's worker thread, and their
results come back to Kivy's thread through ``Clock.schedule_once`` (the ``post`` it gives the
controller). Importing this package does not import Kivy: :mod:`kiosk.app.main` does.
"""

from __future__ import annotations

__all__ = ["SCREEN_FILE_NAMES"]

#: The screenshots the app writes (``kiosk-<screen>-<language>.png``), for docs and tests.
SCREEN_FILE_NAMES = "kiosk-{screen}-{language}.png"
