"""Visitor counts: crossings from the people counter, summed per interval, one event each.

Intervals are aligned to multiples of the interval length since the Unix epoch (whole hours
for the default 3600 s, which are whole local hours in every time zone with a whole-hour
offset), so counts from several gates and days line up. An interval with nobody is sent too:
"zero visitors between 12:00 and 13:00" is a figure, not a gap. A crossing is counted in the
interval open when it arrives. When the gate stops, the interval so far is sent with its
real end, so a restart loses no visitor.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

from edge_agent.contract import VisitorCount
from hardware.people_counter import Crossing, Direction

__all__ = ["VisitorCounter"]

log = logging.getLogger(__name__)

#: Receives each finished interval (the service commits it to the hand-over queue).
Emit = Callable[[VisitorCount], object]


def _aware(when: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(when, dt.UTC)


class VisitorCounter:
    """Counts crossings in and out; :meth:`tick` emits each interval once it is over."""

    def __init__(
        self, interval_s: float, emit: Emit, *, wall: Callable[[], float] = time.time
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"visitor interval must be positive, got {interval_s}")
        self.interval_s = interval_s
        self._emit = emit
        self._wall = wall
        self._lock = threading.Lock()
        now = wall()
        self._start = now - now % interval_s
        self._entered = 0
        self._exited = 0
        self.total_in = 0
        self.total_out = 0

    def crossing(self, crossing: Crossing) -> None:
        """Count one visitor (called from the people counter's thread)."""
        with self._lock:
            if crossing.direction is Direction.IN:
                self._entered += 1
                self.total_in += 1
            else:
                self._exited += 1
                self.total_out += 1

    @property
    def current(self) -> tuple[int, int]:
        """(entered, exited) so far in the open interval."""
        with self._lock:
            return self._entered, self._exited

    def tick(self) -> int:
        """Emit every interval that is over; return how many were emitted."""
        emitted = 0
        now = self._wall()
        while True:
            with self._lock:
                # The next aligned boundary (after a flush the start may not be aligned).
                end = self._start - self._start % self.interval_s + self.interval_s
                if now < end:
                    return emitted
                count = self._take(self._start, end)
                self._start = end
            self._emit(count)
            emitted += 1

    def flush(self) -> VisitorCount | None:
        """Emit the interval so far (ending now) if it has any length; for a clean stop."""
        now = self._wall()
        with self._lock:
            if now <= self._start:
                return None
            count = self._take(self._start, now)
            self._start = now
        self._emit(count)
        return count

    def _take(self, start: float, end: float) -> VisitorCount:
        count = VisitorCount(
            interval_start=_aware(start),
            interval_end=_aware(end),
            entered=self._entered,
            exited=self._exited,
        )
        self._entered = self._exited = 0
        return count
