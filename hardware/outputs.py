"""Gate alarm outputs: a light and a buzzer (or a relay), behind one small interface.

Opened from a URL like every device:

``gpio:LIGHT,BUZZER``  (e.g. ``gpio:17,27``)
    BCM pin numbers on a Raspberry Pi, driven through gpiozero, which is imported only
    here and only when such a URL is configured (it is not a dependency elsewhere).
``sim:``
    :class:`RecordingAlarm`: records what it was told and when (``time.perf_counter_ns``),
    for tests, benchmarks and the demo.
``none:``
    No alarm hardware; calls are accepted and ignored (a reader-only test site).

An alarm is *timed*: ``trigger(duration)`` switches the outputs on at once and off again
after ``duration`` seconds; a trigger while on extends the alarm instead of restarting it,
so one pass of several unissued items gives one continuous alarm.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = [
    "AlarmOutput",
    "GpioAlarm",
    "NullAlarm",
    "OutputChange",
    "OutputError",
    "RecordingAlarm",
    "TimedAlarm",
    "open_alarm",
]


class OutputError(RuntimeError):
    """An output URL is malformed or its hardware cannot be driven."""


class AlarmOutput(Protocol):
    """What a gate needs from its alarm hardware."""

    def trigger(self, duration_s: float) -> None:
        """Switch light and sound on now and off after ``duration_s``, extending a running alarm."""

    def silence(self) -> None:
        """Switch everything off now."""

    @property
    def active(self) -> bool:
        """Whether the alarm is on."""

    def close(self) -> None:
        """Switch off and release the hardware."""


@dataclass(frozen=True, slots=True)
class OutputChange:
    """One switching of the outputs, as a recording alarm saw it."""

    at_ns: int
    on: bool


class TimedAlarm:
    """Timing shared by every alarm: on now, off after a duration, extended by re-triggers.

    Subclasses implement :meth:`_switch`, which must be quick and must not block: it runs on
    the caller's thread when switching on (that is the latency that matters) and on a timer
    thread when switching off.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._off_at = 0.0
        self._timer: threading.Timer | None = None
        self._on = False
        self._closed = False

    def _switch(self, on: bool) -> None:
        raise NotImplementedError

    @property
    def active(self) -> bool:
        """Whether the alarm is on."""
        return self._on

    def trigger(self, duration_s: float) -> None:
        """Switch on now; switch off ``duration_s`` after the latest trigger."""
        if duration_s <= 0:
            raise ValueError(f"alarm duration must be positive, got {duration_s}")
        with self._lock:
            if self._closed:
                raise OutputError("alarm output is closed")
            self._off_at = max(self._off_at, time.monotonic() + duration_s)
            if not self._on:
                self._on = True
                self._switch(True)
            if self._timer is None:
                self._arm(duration_s)

    def _arm(self, delay: float) -> None:
        self._timer = threading.Timer(delay, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            self._timer = None
            remaining = self._off_at - time.monotonic()
            if remaining > 0 and not self._closed:
                self._arm(remaining)  # re-triggered meanwhile: keep going
                return
            if self._on:
                self._on = False
                self._switch(False)

    def silence(self) -> None:
        """Switch off now and forget pending time."""
        with self._lock:
            self._off_at = 0.0
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._on:
                self._on = False
                self._switch(False)

    def close(self) -> None:
        """Switch off; further triggers raise OutputError."""
        self.silence()
        with self._lock:
            self._closed = True


class RecordingAlarm(TimedAlarm):
    """An alarm that records every switching with a monotonic nanosecond timestamp."""

    def __init__(self) -> None:
        super().__init__()
        self.changes: list[OutputChange] = []
        self._changed = threading.Condition()

    def _switch(self, on: bool) -> None:
        with self._changed:
            self.changes.append(OutputChange(time.perf_counter_ns(), on))
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[OutputChange]:
        """Wait until at least ``count`` changes were recorded; return them (raises on timeout)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.changes) >= count, timeout):
                raise TimeoutError(
                    f"{len(self.changes)} output changes after {timeout} s, wanted {count}"
                )
            return list(self.changes)


class NullAlarm(TimedAlarm):
    """No alarm hardware fitted."""

    def _switch(self, on: bool) -> None:
        """Nothing to switch."""


class GpioAlarm(TimedAlarm):
    """A light and a buzzer on Raspberry Pi GPIO pins, through gpiozero."""

    def __init__(self, light_pin: int, buzzer_pin: int | None) -> None:
        super().__init__()
        try:
            import gpiozero  # only on a Pi, and only when configured
        except ImportError as exc:
            raise OutputError(
                "gpio: outputs need the 'gpiozero' package (apt install python3-gpiozero)"
            ) from exc
        try:
            self._light: Any = gpiozero.LED(light_pin)
            self._buzzer: Any = gpiozero.Buzzer(buzzer_pin) if buzzer_pin is not None else None
        except Exception as exc:  # gpiozero raises many kinds: pin in use, no pin factory, …
            raise OutputError(f"gpio:{light_pin},{buzzer_pin}: {exc}") from exc

    def _switch(self, on: bool) -> None:
        for device in (self._light, self._buzzer):
            if device is not None:
                device.value = on

    def close(self) -> None:
        """Switch off and release the pins."""
        super().close()
        for device in (self._light, self._buzzer):
            if device is not None:
                device.close()


def _pins(url: str, spec: str) -> tuple[int, int | None]:
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not 1 <= len(parts) <= 2 or not all(p.isdigit() for p in parts):
        raise OutputError(f"{url!r}: expected gpio:LIGHT_PIN[,BUZZER_PIN] with BCM pin numbers")
    return int(parts[0]), int(parts[1]) if len(parts) == 2 else None


def open_alarm(url: str | None) -> AlarmOutput:
    """Open the alarm output a URL names (None or ``none:`` for no hardware)."""
    if url is None:
        return NullAlarm()
    scheme: Literal["gpio", "sim", "none"] | str = urllib.parse.urlsplit(url).scheme
    spec = url.partition(":")[2]
    if scheme == "gpio":
        return GpioAlarm(*_pins(url, spec))
    if scheme == "sim":
        return RecordingAlarm()
    if scheme == "none":
        return NullAlarm()
    raise OutputError(f"{url!r}: unknown alarm output (use gpio:LIGHT,BUZZER, sim: or none:)")
