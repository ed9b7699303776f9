"""Is the system clock synchronised? A Raspberry Pi has no real-time clock.

After a power cut a Pi starts with the time it last saved until NTP corrects it, so events
carry ``clock_trusted``. Linux keeps the answer in the kernel: ``adjtimex()`` with no changes
requested returns ``TIME_ERROR`` while the clock is not synchronised (the same flag
``timedatectl`` shows as "System clock synchronized: no"). Reading it needs no privileges.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

__all__ = ["clock_synchronised"]

log = logging.getLogger(__name__)

_TIME_ERROR = 5
# struct timex is 208 bytes on 64-bit Linux; a larger zeroed buffer is safe (modes = 0: read).
_TIMEX_BYTES = 512


def clock_synchronised() -> bool:
    """Return False when the kernel says the clock is unsynchronised; True otherwise.

    When the question cannot be asked (not Linux, no libc), the clock is taken as trusted:
    the event's time is then as good as the host's.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return True
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        buffer = ctypes.create_string_buffer(_TIMEX_BYTES)
        state = int(libc.adjtimex(buffer))
    except (OSError, AttributeError) as exc:
        log.debug("adjtimex is not available: %s", exc)
        return True
    return state != _TIME_ERROR
