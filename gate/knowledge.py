"""What the gate remembers between passes: tag facts by UID, and the agent's item states.

* :class:`TagMemo` keeps what reading a tag's memory said (:class:`~gate.decide.TagFacts`),
  by UID, for a bounded number of tags (least recently used go first). Memory content of a
  library tag does not change when it is lent, only its AFI/EAS do, so the next pass of the
  same tag is decided from the inventory alone, without reading it again. Security states
  are never remembered: they are what checkout changes.
* :class:`ItemStates` is a snapshot of the edge agent's ``item_states`` cache (item id ->
  state), refreshed off the polling thread when the cache's version changes. The polling
  thread only ever reads a dict that is replaced whole, so it takes no lock.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable

from gate.decide import TagFacts

__all__ = ["ItemStates", "TagMemo"]

#: Cache states the contract defines (ItemState.state); anything else is ignored.
_STATES = ("on_shelf", "on_loan", "on_hold", "missing")


class TagMemo:
    """UID -> facts of the tag, least recently used dropped beyond ``capacity``; thread-safe."""

    def __init__(self, capacity: int = 50_000) -> None:
        if capacity < 1:
            raise ValueError(f"memo capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._facts: OrderedDict[bytes, TagFacts] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._facts)

    def get(self, uid: bytes) -> TagFacts | None:
        """The facts last read from this tag, or None."""
        with self._lock:
            facts = self._facts.get(uid)
            if facts is not None:
                self._facts.move_to_end(uid)
            return facts

    def put(self, uid: bytes, facts: TagFacts) -> None:
        """Remember what a read of this tag said (an undecodable tag is not remembered).

        An undecodable read may be a tag that left half-way; the next pass reads it again.
        """
        if not facts.decoded:
            return
        with self._lock:
            self._facts[uid] = facts
            self._facts.move_to_end(uid)
            while len(self._facts) > self.capacity:
                self._facts.popitem(last=False)


class ItemStates:
    """A snapshot of the agent's item states: item id -> state, with the cache's version."""

    def __init__(self) -> None:
        self._states: dict[str, str] = {}
        self.version: int | None = None

    def __len__(self) -> int:
        return len(self._states)

    @property
    def known(self) -> bool:
        """Whether a snapshot was ever loaded."""
        return self.version is not None

    def state(self, item_id: str) -> str | None:
        """The cached state of an item (on_shelf, on_loan, on_hold, missing) or None."""
        return self._states.get(item_id)

    def replace(self, version: int, entries: Iterable[tuple[str, str]]) -> int:
        """Load a new snapshot; return how many entries it has.

        The whole dict is built first and swapped in with one assignment, so the polling
        threads see either the old snapshot or the new one, never half of each. State
        strings are interned: four distinct values shared by every entry.
        """
        states: dict[str, str] = {}
        interned = {s: sys.intern(s) for s in _STATES}
        for item_id, state in entries:
            value = interned.get(state)
            if value is not None:
                states[item_id] = value
        self._states = states
        self.version = version
        return len(states)
