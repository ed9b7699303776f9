"""The simulator's read API, staff actions and commands: what tests and the staff dashboard use.

:class:`CentralQueries` is a base of :class:`~simulators.central.simulator.CentralSimulator`;
it reads the shared database (so it sees what every instance stored) through the simulator's
own API connection, and hands state changes that affect caches to the ingest worker through
its queue, since that worker alone owns the push planner.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import re
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties

from edge_agent.contract import Command, InService, OutOfService, ReloadConfig, ScreenMessage
from edge_agent.contract.topics import command_topic

from . import queries, store
from .errors import BrokerUnavailableError, CentralError
from .pipeline import MarkCaches
from .queries import (
    CentralStats,
    DeviceInfo,
    Gap,
    ItemRecord,
    RejectedMessage,
    StaffException,
    StoredEvent,
)

__all__ = ["CentralQueries", "CommandBody"]

log = logging.getLogger(__name__)
_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CommandBody = ScreenMessage | OutOfService | InService | ReloadConfig


class CentralQueries:
    """Queries over the simulator's database, waiting helpers, staff actions and commands."""

    # Provided by the simulator.
    instance: str
    library_id: str
    tz: ZoneInfo
    _clock: Callable[[], dt.datetime]
    _changed: threading.Condition
    _counts: Counter[str]
    _counts_lock: threading.Lock
    _api_lock: threading.Lock
    _conns: dict[str, sqlite3.Connection]
    _events_q: queue.Queue[Any]
    _force_push: threading.Event

    def _publish(
        self,
        topic: str,
        payload: str,
        *,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> mqtt.MQTTMessageInfo | None:
        """Publish at QoS 1 (the simulator provides it); None when not connected."""
        raise NotImplementedError

    def _count(self, name: str, by: int = 1) -> None:
        """Count this instance's traffic (the simulator provides it)."""
        raise NotImplementedError

    @contextmanager
    def _api(self) -> Iterator[sqlite3.Connection]:
        with self._api_lock:
            conn = self._conns.get("api")
            if conn is None:
                raise CentralError(f"central {self.instance} is not running")
            yield conn

    def stats(self) -> CentralStats:
        """Counts over the shared database, plus this instance's own traffic."""
        with self._counts_lock:
            mine = dict(self._counts)
        with self._api() as conn:
            return queries.stats(conn, mine)

    def events(self, device_id: str | None = None, kind: str | None = None) -> list[StoredEvent]:
        """Stored events in (device, seq) order, optionally of one device and kind."""
        with self._api() as conn:
            return queries.events(conn, device_id, kind)

    def gaps(self, device_id: str | None = None) -> list[Gap]:
        """Sequence numbers still missing, per device."""
        with self._api() as conn:
            return queries.gaps(conn, device_id)

    def exceptions(self, include_resolved: bool = False) -> list[StaffException]:
        """Transactions that conflicted with the circulation model, for staff."""
        with self._api() as conn:
            return queries.exceptions(conn, include_resolved)

    def rejected(self, limit: int = 100) -> list[RejectedMessage]:
        """The most recent rejected messages (reasons only), newest first."""
        with self._api() as conn:
            return queries.rejected(conn, limit)

    def devices(self) -> list[DeviceInfo]:
        """Devices from the seed and devices seen on the broker."""
        with self._api() as conn:
            return queries.devices(conn)

    def item(self, item_id: str) -> ItemRecord | None:
        """One item of the circulation model."""
        with self._api() as conn:
            return queries.item(conn, item_id)

    def loans(self, patron_id: str) -> list[ItemRecord]:
        """A patron's loans."""
        with self._api() as conn:
            return queries.loans(conn, patron_id)

    def today(self) -> dt.date:
        """Today in the library's time zone, by the simulator's clock."""
        return self._clock().astimezone(self.tz).date()

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
    ) -> None:
        """Return once ``predicate()`` holds; raise TimeoutError naming ``what`` otherwise.

        Re-checked after every pass of this instance's workers, and at least every 50 ms
        for what other instances sharing the database commit.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"central {self.instance}: {what} not met in {timeout} s")
                self._changed.wait(min(remaining, 0.05))

    def wait_for_events(
        self, count: int, *, device_id: str | None = None, timeout: float = 10.0
    ) -> list[StoredEvent]:
        """Wait until at least ``count`` events (of one device) are stored; return them."""
        self.wait_for(
            lambda: len(self.events(device_id)) >= count,
            timeout,
            f"{count} events stored" + (f" from {device_id}" if device_id else ""),
        )
        return self.events(device_id)

    # ------------------------------------------------------------ staff actions

    def _staff_change(self, sql: str, params: tuple[Any, ...], names: tuple[str, ...]) -> int:
        with self._api() as conn, store.write_txn(conn):
            changed = conn.execute(sql, params).rowcount
        # The ingest worker owns the push planner; tell it through its queue.
        self._events_q.put(MarkCaches(names))
        return changed

    def block_patron(self, patron_id: str, reason: str = "blocked by staff") -> None:
        """Block a patron; the patron_blocks cache is re-pushed (rate-limited)."""
        sql = "UPDATE patrons SET blocked = 1, block_reason = ? WHERE patron_id = ?"
        if not self._staff_change(sql, (reason, patron_id), ("patron_blocks",)):
            raise CentralError(f"no patron {patron_id}")

    def unblock_patron(self, patron_id: str) -> None:
        """Lift a patron's block (fines still count)."""
        sql = "UPDATE patrons SET blocked = 0, block_reason = NULL WHERE patron_id = ?"
        if not self._staff_change(sql, (patron_id,), ("patron_blocks",)):
            raise CentralError(f"no patron {patron_id}")

    def place_hold(self, item_id: str, patron_id: str) -> None:
        """Put a hold on an item for a patron (at the end of its queue)."""
        with self._api() as conn:
            known = conn.execute(
                "SELECT (SELECT count(*) FROM items WHERE item_id = ?),"
                " (SELECT count(*) FROM patrons WHERE patron_id = ?)",
                (item_id, patron_id),
            ).fetchone()
        if not (known[0] and known[1]):
            raise CentralError(f"no item {item_id} or no patron {patron_id}")
        self._staff_change(
            "INSERT OR IGNORE INTO holds (item_id, patron_id, placed_at) VALUES (?, ?, ?)",
            (item_id, patron_id, self._clock().isoformat()),
            ("item_states",),
        )

    def resolve_exception(self, exception_id: int) -> None:
        """Mark an exception as dealt with."""
        sql = "UPDATE exceptions SET resolved_at = ? WHERE id = ? AND resolved_at IS NULL"
        if not self._staff_change(sql, (self._clock().isoformat(), exception_id), ()):
            raise CentralError(f"no open exception {exception_id}")

    def push_caches(self) -> None:
        """Push every cache to every known device now (current versions, new if changed)."""
        self._force_push.set()
        self._events_q.put(MarkCaches(()))

    def send_command(
        self,
        device_id: str,
        body: CommandBody,
        *,
        library_id: str | None = None,
        timeout: float = 10.0,
    ) -> Command:
        """Send a staff command to a device and wait for the broker to accept it."""
        if not _IDENT.match(device_id):
            raise CentralError(f"device id {device_id!r} cannot be a topic segment")
        command = Command(command_id=uuid.uuid4(), time=self._clock(), body=body)
        target = library_id or self._library_of(device_id)
        info = self._publish(command_topic(target, device_id), command.model_dump_json())
        if info is None:
            raise CentralError(f"central {self.instance} is not running")
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise BrokerUnavailableError(f"command for {device_id} not accepted within {timeout} s")
        self._count("commands_sent")
        log.info("command %s sent to %s: %s", command.command_id, device_id, body.command)
        return command

    def _library_of(self, device_id: str) -> str:
        with self._api() as conn:
            row = conn.execute(
                "SELECT library_id FROM devices WHERE device_id = ?", (device_id,)
            ).fetchone()
        return str(row["library_id"]) if row else self.library_id
