"""What central pushes to devices for offline decisions, and when.

Three caches, each a retained :class:`~edge_agent.contract.CacheUpdate` per device:

- ``patron_blocks``: patrons blocked by the library or by fines at the threshold;
- ``item_states``: every item with its state (on shelf, on loan, on hold, missing), its
  not-for-offline-issue flag and its title, so a kiosk can refuse offline what it must and
  a gate can name the item that set it off;
- ``loan_policy``: loan days, offline item limit, renewal limit.

Versions are per library and cache and live in the database, so they only increase, across
restarts and across instances sharing the file. A version stands for one content: a push whose
content has not changed keeps the version (and goes only to devices that need it, such as one
seen for the first time). :class:`PushPlanner` rate-limits the pushes that state changes ask
for: at most one per cache per interval, the last change always included.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from edge_agent.contract import (
    BlockedPatron,
    CacheUpdate,
    ItemState,
    ItemStates,
    LoanPolicy,
    PatronBlocks,
    RefusalReason,
)
from edge_agent.contract.central import CACHE_NAMES, CacheBody
from edge_agent.contract.topics import cache_topic

from . import store
from .circulation import block_reason
from .seed import SeedPolicy

__all__ = [
    "CACHE_NAMES",
    "CachePush",
    "CacheVersion",
    "PushPlanner",
    "build_body",
    "next_version",
    "plan_pushes",
]


def build_body(conn: sqlite3.Connection, name: str, policy: SeedPolicy) -> CacheBody:
    """The current content of one cache, from the database."""
    if name == "patron_blocks":
        blocked = [
            BlockedPatron(patron_id=row["patron_id"], reason=RefusalReason.PATRON_BLOCKED)
            for row in conn.execute("SELECT * FROM patrons ORDER BY patron_id").fetchall()
            if block_reason(row, policy) is not None
        ]
        return PatronBlocks(blocked=blocked)
    if name == "item_states":
        items = [
            ItemState(
                item_id=row["item_id"],
                state=row["state"],
                not_for_offline_issue=bool(row["not_for_offline_issue"] or row["not_for_loan"]),
                title=row["title"][:500],
            )
            for row in conn.execute(
                "SELECT item_id, state, not_for_offline_issue, not_for_loan, title FROM items"
                " ORDER BY item_id"
            ).fetchall()
        ]
        return ItemStates(items=items)
    if name == "loan_policy":
        return LoanPolicy(
            loan_days=policy.loan_days,
            offline_max_items=policy.offline_max_items,
            max_renewals=policy.max_renewals,
        )
    raise ValueError(f"unknown cache {name!r}; known: {', '.join(CACHE_NAMES)}")


@dataclass(frozen=True, slots=True)
class CacheVersion:
    """The version a cache's content got, and whether the content changed with it."""

    version: int
    changed: bool


def next_version(
    conn: sqlite3.Connection, library_id: str, name: str, body: CacheBody, now: str
) -> CacheVersion:
    """Give ``body`` its version: the current one if the content is unchanged, else one more.

    Call inside a write transaction so that instances sharing the database agree.
    """
    digest = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
    row = conn.execute(
        "SELECT version, content_hash FROM cache_versions WHERE library_id = ? AND cache = ?",
        (library_id, name),
    ).fetchone()
    if row is not None and row["content_hash"] == digest:
        return CacheVersion(int(row["version"]), changed=False)
    version = int(row["version"]) + 1 if row is not None else 1
    conn.execute(
        "INSERT INTO cache_versions (library_id, cache, version, content_hash, pushed_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (library_id, cache) DO UPDATE SET"
        " version = excluded.version, content_hash = excluded.content_hash,"
        " pushed_at = excluded.pushed_at",
        (library_id, name, version, digest, now),
    )
    return CacheVersion(version, changed=True)


@dataclass(frozen=True, slots=True)
class CachePush:
    """One retained message to publish."""

    topic: str
    payload: str


def plan_pushes(
    conn: sqlite3.Connection,
    *,
    library_id: str,
    policy: SeedPolicy,
    names: Iterable[str],
    everyone: bool,
    fresh: list[tuple[str, str]],
    now: dt.datetime,
) -> list[CachePush]:
    """The cache updates to publish for ``names``.

    A cache whose content changed goes to every device of the library under its new version;
    so does every cache when ``everyone`` is set (a start, or a staff request). Otherwise only
    the ``fresh`` devices (seen for the first time) get the current version.
    """
    devices = [
        (row["library_id"], row["device_id"])
        for row in conn.execute(
            "SELECT library_id, device_id FROM devices WHERE library_id = ?", (library_id,)
        )
    ]
    pushes: list[CachePush] = []
    for name in names:
        with store.write_txn(conn):
            body = build_body(conn, name, policy)
            version = next_version(conn, library_id, name, body, now.isoformat())
        update = CacheUpdate(
            library_id=library_id, version=version.version, time=now, body=body
        ).model_dump_json()
        targets = devices if version.changed or everyone else fresh
        pushes += [CachePush(cache_topic(lib, device, name), update) for lib, device in targets]
    return pushes


class PushPlanner:
    """Rate limit for cache pushes: at most one per cache per ``interval`` seconds.

    ``mark`` says a cache's content may have changed; ``due`` lists the marked caches whose
    interval has passed; ``pushed`` records a push. Not thread-safe: one worker owns it.
    """

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.interval = interval
        self._clock = clock
        self._dirty: set[str] = set()
        self._last: dict[str, float] = {}

    def mark(self, names: set[str] | list[str] | tuple[str, ...]) -> None:
        """Note that these caches need pushing."""
        self._dirty.update(names)

    def due(self) -> list[str]:
        """Marked caches whose last push is at least ``interval`` ago, in a stable order."""
        now = self._clock()
        return [
            name
            for name in CACHE_NAMES
            if name in self._dirty
            and (name not in self._last or now - self._last[name] >= self.interval)
        ]

    def pushed(self, name: str) -> None:
        """Record that ``name`` was pushed now; it is clean until marked again."""
        self._dirty.discard(name)
        self._last[name] = self._clock()

    def pending(self) -> bool:
        """Whether any cache is marked (due now or later)."""
        return bool(self._dirty)
