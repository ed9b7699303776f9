"""What device processes report of their own status, kept for the agent's retained DeviceStatus.

The kiosk or gate process knows things the agent cannot (is the RFID reader answering, how
many alarms today, is the printer out of paper) and sends them with ``PUT /device/details``.
:class:`ReportedDetails` keeps the latest value of each field with the time it came, so that a
device process that died does not leave "reader connected" standing forever: a value older
than ``stale_after_s`` is dropped (unknown) rather than published.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from edge_agent.api.models import DeviceDetails

__all__ = ["DEFAULT_STALE_AFTER_S", "ReportedDetails"]

#: Long enough for a few missed reports at the gate's default 10 s health interval.
DEFAULT_STALE_AFTER_S = 120.0


class ReportedDetails:
    """The latest device-reported status fields, safe to update and read from any thread."""

    def __init__(
        self,
        *,
        stale_after_s: float = DEFAULT_STALE_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if stale_after_s <= 0:
            raise ValueError(f"stale_after_s must be positive, got {stale_after_s}")
        self.stale_after_s = stale_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[str, tuple[object, float]] = {}

    def update(self, details: DeviceDetails) -> DeviceDetails:
        """Merge the fields ``details`` sets (null clears one); return what is now reported."""
        now = self._clock()
        with self._lock:
            for name in details.model_fields_set:
                value = getattr(details, name)
                if value is None:
                    self._values.pop(name, None)
                else:
                    self._values[name] = (value, now)
        return self.current()

    def reported(self) -> dict[str, object]:
        """The fresh values by StatusDetails field name (for the link to merge in)."""
        oldest = self._clock() - self.stale_after_s
        with self._lock:
            return {name: value for name, (value, at) in self._values.items() if at >= oldest}

    def current(self) -> DeviceDetails:
        """The fresh values as a DeviceDetails (unset fields are unknown)."""
        return DeviceDetails.model_validate(self.reported())
