"""Who walks through the gate, carrying what: a reproducible plan of passages.

A :class:`Passage` is one visitor: a direction (most leave with items, some come in with
their loans), a lane, and what is in the bag — nothing, or a few items (one to five, fewer
more often), each with how many times the readers will catch its tag (from 1 to 20, with a
fair share of tags caught only once: a badly oriented tag, a hand over it). The same seed
gives the same plan, so a test knows in advance which passes must alarm.

An item is not carried again until ``reuse_after`` passages later, so two passes of one tag
are never merged by the gate's quiet time when passages follow each other quickly.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

from simulators.gate_traffic.catalog import Catalog, CatalogItem, Kind

__all__ = ["Carried", "Passage", "PlanSettings", "make_plan"]


@dataclass(frozen=True, slots=True)
class Carried:
    """One item in a visitor's bag and how often its tag will be read."""

    item: CatalogItem
    reads: int


@dataclass(frozen=True, slots=True)
class Passage:
    """One visitor through one lane."""

    number: int
    direction: str  # "in" or "out"
    lane: int
    carried: tuple[Carried, ...]

    @property
    def expected_alarms(self) -> tuple[CatalogItem, ...]:
        """The items a correct gate alarms for in this passage."""
        return tuple(c.item for c in self.carried if c.item.alarms)


@dataclass(frozen=True, slots=True)
class PlanSettings:
    """Shape of the traffic."""

    passages: int = 100
    lanes: int = 1
    out_share: float = 0.7
    #: Bag sizes 0..5 and their weights.
    bag_weights: tuple[float, ...] = (0.25, 0.30, 0.20, 0.12, 0.08, 0.05)
    #: Share of tags read only once in their pass; the others are read 2..max_reads times.
    read_once_share: float = 0.15
    max_reads: int = 20
    reuse_after: int = 30
    seed: int = 0


def _reads(rng: random.Random, settings: PlanSettings) -> int:
    if rng.random() < settings.read_once_share:
        return 1
    return rng.randint(2, max(2, settings.max_reads))


def make_plan(catalog: Catalog, settings: PlanSettings) -> list[Passage]:
    """Draw the passages of a run from a catalog (deterministic for a seed)."""
    if settings.passages < 0 or settings.lanes < 1:
        raise ValueError("passages must be >= 0 and lanes >= 1")
    rng = random.Random(settings.seed)
    recent: deque[set[bytes]] = deque(maxlen=max(1, settings.reuse_after))
    cards = catalog.by_kind.get(Kind.PATRON_CARD, [])
    items = [i for i in catalog.items if i.kind is not Kind.PATRON_CARD]
    plan: list[Passage] = []
    for number in range(settings.passages):
        busy = set().union(*recent) if recent else set()
        size = rng.choices(range(len(settings.bag_weights)), weights=settings.bag_weights)[0]
        free = [i for i in items if i.tag.uid not in busy]
        chosen = rng.sample(free, min(size, len(free)))
        free_cards = [c for c in cards if c.tag.uid not in busy]
        if free_cards and rng.random() < 0.3:
            chosen.append(rng.choice(free_cards))
        carried = tuple(Carried(item, _reads(rng, settings)) for item in chosen)
        recent.append({c.item.tag.uid for c in carried})
        plan.append(
            Passage(
                number=number + 1,
                direction="out" if rng.random() < settings.out_share else "in",
                lane=rng.randrange(settings.lanes),
                carried=carried,
            )
        )
    return plan
