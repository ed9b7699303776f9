"""Passes: every read of one tag while it goes through the gate, merged into one record.

A reader returns a passing tag anything from once to dozens of times, from one antenna or
from both pedestals. :class:`PassTracker` merges the reads of one UID into a
:class:`TagPass` that starts at the first read and ends once the UID has been unseen for the
quiet time; the gate decides (and alarms) once per pass, however many reads it has.

Not thread-safe on purpose: :class:`gate.core.GateCore` owns the tracker and serialises the
polling threads around it. Times are ``time.monotonic()`` seconds, passed in, so tests drive
the clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gate.decide import Decision, TagFacts
from hardware.reader import SystemInfo
from hardware.tags import SecurityState

__all__ = ["AlarmMark", "PassSummary", "PassTracker", "TagPass"]


@dataclass(frozen=True, slots=True)
class AlarmMark:
    """When and why one pass set the alarm off.

    ``reply_ns`` is the ``perf_counter_ns`` at which the reply that completed the decision was
    read (an inventory reply, or the reply to the read that identified the tag);
    ``inventory_ns`` the same for the inventory that first saw the tag in this pass;
    ``switched_ns`` is taken right after the alarm output was told to switch on.
    """

    antenna: str
    reason: str
    reply_ns: int
    inventory_ns: int
    switched_ns: int
    wall_time: float


@dataclass(slots=True, eq=False)
class TagPass:
    """One tag's way through the gate: its reads and what the gate learned and decided."""

    uid: bytes
    number: int
    first_seen: float
    last_seen: float
    dsfid: int
    first_inventory_ns: int
    reads: int = 0
    antennas: dict[str, int] = field(default_factory=dict)
    #: The antenna and poll cycle of the latest read (where work on the tag is worth trying).
    last_antenna: str = ""
    last_cycle: int = -1
    security: SecurityState | None = None
    #: When the inventory that showed the tag secured was read (``perf_counter_ns``).
    secured_ns: int = 0
    #: The tag's memory layout, once a probe read it (saves a read when identifying).
    layout: SystemInfo | None = None
    facts: TagFacts | None = None
    probe_attempts: int = 0
    identify_attempts: int = 0
    identify_failed: bool = False
    decision: Decision | None = None
    alarm: AlarmMark | None = None
    #: The alarm sounded before the tag was read: read it later to name it in the event.
    wants_name: bool = False

    @property
    def uid_hex(self) -> str:
        """The UID as 16 upper-case hex digits."""
        return self.uid.hex().upper()

    def summary(self) -> PassSummary:
        """A frozen copy for other threads (the event builder)."""
        return PassSummary(
            uid=self.uid,
            number=self.number,
            reads=self.reads,
            antennas=dict(self.antennas),
            security=self.security,
            facts=self.facts,
            alarm=self.alarm,
            reason=self.decision.reason if self.decision else "",
        )


@dataclass(frozen=True, slots=True)
class PassSummary:
    """What the event builder needs of a pass that ended (or alarmed)."""

    uid: bytes
    number: int
    reads: int
    antennas: dict[str, int]
    security: SecurityState | None
    facts: TagFacts | None
    alarm: AlarmMark | None
    reason: str

    @property
    def uid_hex(self) -> str:
        """The UID as 16 upper-case hex digits."""
        return self.uid.hex().upper()

    @property
    def first_antenna(self) -> str:
        """The antenna that alarmed, else the one that read the tag most."""
        if self.alarm is not None:
            return self.alarm.antenna
        return max(self.antennas, key=lambda name: self.antennas[name], default="")


#: A pass ends after this many quiet times even when no inventory could run meanwhile.
_MAX_QUIET_FACTOR = 10


class PassTracker:
    """Open passes by UID; reads extend them, the quiet time ends them."""

    def __init__(self, quiet_time_s: float) -> None:
        if quiet_time_s <= 0:
            raise ValueError(f"quiet time must be positive, got {quiet_time_s}")
        self.quiet_time_s = quiet_time_s
        # When the gate last finished an inventory. A pass ends only if an inventory ran since
        # the tag was last seen: if polling stalls (a starved CPU, a slow reader) past the
        # quiet time, a tag still in the field is not split into two passes alarmed twice.
        self._last_inventory_at = float("-inf")
        # If the gate cannot read at all (every reader gone), passes still end after this,
        # so their alarm events are committed.
        self.max_quiet_s = quiet_time_s * _MAX_QUIET_FACTOR
        self._open: dict[bytes, TagPass] = {}
        # Passes that a new read replaced before expire() ran; expire() hands them out.
        self._replaced: list[TagPass] = []
        self._numbers = 0
        #: Every read ever merged (for the health snapshot and the benchmark).
        self.reads_total = 0
        self.passes_total = 0

    def __len__(self) -> int:
        return len(self._open)

    def get(self, uid: bytes) -> TagPass | None:
        """The open pass of a UID, if any."""
        return self._open.get(uid)

    def open_passes(self) -> list[TagPass]:
        """Every open pass (a copy of the list)."""
        return list(self._open.values())

    def read(  # noqa: PLR0917 - one read's fields, called once per read on the hot path
        self,
        uid: bytes,
        dsfid: int,
        antenna: str,
        cycle: int,
        now: float,
        inventory_ns: int,
    ) -> tuple[TagPass, bool]:
        """Merge one read; return its pass and whether the read started it.

        A read of a UID whose pass has been quiet for the quiet time starts a new pass even
        if :meth:`expire` has not run yet, so a late expiry never merges two passes.
        """
        self.reads_total += 1
        current = self._open.get(uid)
        started = current is None or self._gone(current, now)
        if started:
            if current is not None:
                self._replaced.append(current)
            self._numbers += 1
            self.passes_total += 1
            current = TagPass(
                uid=uid,
                number=self._numbers,
                first_seen=now,
                last_seen=now,
                dsfid=dsfid,
                first_inventory_ns=inventory_ns,
            )
            self._open[uid] = current
        assert current is not None
        current.last_seen = max(current.last_seen, now)
        current.reads += 1
        current.antennas[antenna] = current.antennas.get(antenna, 0) + 1
        current.last_antenna = antenna
        current.last_cycle = cycle
        return current, started

    def inventory_done(self, now: float) -> None:
        """Note that an inventory finished at ``now`` (with or without tags in it)."""
        self._last_inventory_at = max(self._last_inventory_at, now)

    def _gone(self, tag_pass: TagPass, now: float) -> bool:
        """Whether a pass has ended: quiet for the quiet time, and the gate looked meanwhile."""
        quiet_for = now - tag_pass.last_seen
        looked_since = self._last_inventory_at > tag_pass.last_seen
        return (quiet_for >= self.quiet_time_s and looked_since) or quiet_for >= self.max_quiet_s

    def read_many(
        self,
        entries: Iterable[tuple[bytes, int]],
        antenna: str,
        cycle: int,
        now: float,
        inventory_ns: int,
    ) -> list[tuple[TagPass, bool]]:
        """Merge the reads of one inventory reply ((uid, dsfid) pairs)."""
        return [self.read(uid, dsfid, antenna, cycle, now, inventory_ns) for uid, dsfid in entries]

    def expire(self, now: float) -> list[TagPass]:
        """End and return every pass unseen for the quiet time."""
        ended, self._replaced = self._replaced, []
        quiet = [p for p in self._open.values() if self._gone(p, now)]
        for tag_pass in quiet:
            del self._open[tag_pass.uid]
        return ended + quiet

    def end_all(self) -> list[TagPass]:
        """End every open pass (the gate is stopping)."""
        ended = self._replaced + list(self._open.values())
        self._replaced = []
        self._open.clear()
        return ended
