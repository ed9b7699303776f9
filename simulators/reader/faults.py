"""Fault switches of the simulated reader: all off by default, changeable while it runs.

Each switch reproduces something that happens to real readers in the field, so the driver's
error handling can be exercised on purpose:

``corrupt_crc``           probability that a reply's CRC is wrong (line noise)
``drop_byte``             probability that one byte of a reply is lost (UART overrun)
``split_reply``           a reply arrives in two pieces ``split_gap`` seconds apart (USB-serial)
``reply_delay``           seconds the reader waits before it answers (busy reader)
``collisions``            each inventory round misses each tag with ``collision_miss``
                          probability and then reports status 0x83 (RF communication error)
``tag_leaves_mid_write``  the addressed tag leaves the field during a write
``write_does_not_stick``  writes are acknowledged but memory, AFI, DSFID and EAS do not change
``unplugged``             the port is gone (pty closed / TCP refused) until re-plugged
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["Faults"]

_PROBABILITIES = ("corrupt_crc", "drop_byte", "collision_miss")
_DURATIONS = ("reply_delay", "split_gap")


@dataclass
class Faults:
    """Fault switches; the simulator reads them on every request, so they can change at any time."""

    corrupt_crc: float = 0.0
    drop_byte: float = 0.0
    split_reply: bool = False
    reply_delay: float = 0.0
    collisions: bool = False
    tag_leaves_mid_write: bool = False
    write_does_not_stick: bool = False
    unplugged: bool = False
    #: With ``collisions``: the probability that a tag is missed in one inventory round.
    collision_miss: float = 0.5
    #: With ``split_reply``: seconds between the two halves of a reply.
    split_gap: float = 0.01

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            self._check(f.name, getattr(self, f.name))

    @classmethod
    def names(cls) -> list[str]:
        """Return the names of all switches."""
        return [f.name for f in dataclasses.fields(cls)]

    @staticmethod
    def _check(name: str, value: Any) -> None:
        if name in _PROBABILITIES or name in _DURATIONS:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"fault {name!r} takes a number, got {value!r}")
            if name in _PROBABILITIES and not 0.0 <= value <= 1.0:
                raise ValueError(f"fault {name!r} is a probability (0..1), got {value}")
            if name in _DURATIONS and not 0.0 <= value <= 60.0:
                raise ValueError(f"fault {name!r} is seconds (0..60), got {value}")
        elif not isinstance(value, bool):
            raise ValueError(f"fault {name!r} is a switch (true/false), got {value!r}")

    def update(self, **changes: Any) -> None:
        """Change switches by name, all or none: an unknown name or a bad value raises."""
        known = set(self.names())
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown fault {unknown[0]!r}; known: {', '.join(sorted(known))}")
        for name, value in changes.items():
            self._check(name, value)
        for name, value in changes.items():
            setattr(self, name, float(value) if name in _PROBABILITIES + _DURATIONS else value)

    def as_dict(self) -> dict[str, Any]:
        """Return the switches as a plain dictionary."""
        return dataclasses.asdict(self)
