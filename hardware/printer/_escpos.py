"""python-escpos, imported without its side effect on the application's logging.

``escpos.capabilities`` calls ``logging.basicConfig()`` when it is imported, which gives the
root logger a stderr handler; an application that sets up its own logging afterwards with
``basicConfig`` would then silently get nothing. The handler it added is removed again here,
and the rest of :mod:`hardware.printer` imports python-escpos only through this module.
"""

from __future__ import annotations

import logging

_root = logging.getLogger()
_before = list(_root.handlers)

from escpos import printer as escpos_printer  # noqa: E402 - must follow the handler snapshot
from escpos.capabilities import Profile, get_profile_class  # noqa: E402
from escpos.constants import QR_ECLEVEL_M  # noqa: E402
from escpos.escpos import Escpos  # noqa: E402

for _handler in list(_root.handlers):
    if _handler not in _before:
        _root.removeHandler(_handler)

__all__ = ["QR_ECLEVEL_M", "Escpos", "Profile", "escpos_printer", "get_profile_class"]
