"""The gate's side of the edge agent: hand an event over, read the item states, report health.

:class:`AgentPort` is all the gate needs from the agent. Two implementations, chosen by the
URL in ``gate.agent_url`` (:func:`open_agent`):

``http://HOST:PORT`` or ``unix:/PATH``
    :class:`HttpAgent`, the agent's local API through :class:`edge_agent.client.AgentClient`
    (``POST /events`` answers after the agent's outbox commit; ``PUT /device/details`` puts
    the gate's reader and alarm figures into the agent's retained DeviceStatus).
``sqlite:///PATH``
    :class:`OutboxAgent` over the agent's database file: events go straight into its outbox
    (in a transaction of their own, as a second process may), the caches are read from the
    same file. For a site without the HTTP API, and for tests that run the agent in-process;
    it has nowhere to report the gate's health to.

Every failure is translated here into :class:`~gate.errors.AgentUnavailable` (try again
later) or :class:`~gate.errors.AgentRejected` (never acceptable: dead-letter it).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import TypeAdapter, ValidationError

from edge_agent.caches import CacheError, CacheStore
from edge_agent.contract import ItemState
from edge_agent.contract.central import StatusDetails
from edge_agent.contract.events import EventPayload
from edge_agent.outbox import (
    EventIdConflict,
    InvalidArgument,
    Outbox,
    OutboxError,
    OutboxLimits,
    SqliteOutbox,
)
from gate.errors import AgentRejected, AgentUnavailable, GateConfigError

__all__ = ["AgentPort", "HandoverEvent", "HttpAgent", "OutboxAgent", "open_agent"]

log = logging.getLogger(__name__)

_PAYLOAD: TypeAdapter[EventPayload] = TypeAdapter(EventPayload)
#: Item states fetched per request when refreshing the snapshot.
_PAGE = 1000


@dataclass(frozen=True, slots=True)
class HandoverEvent:
    """One event as the gate committed it, ready to hand to the agent (JSON payload)."""

    event_id: str
    kind: str
    payload: str
    event_time: float
    clock_trusted: bool


class AgentPort(Protocol):
    """What the gate needs from the edge agent."""

    def append_event(self, event: HandoverEvent) -> None:
        """Return once the agent committed the event (again: it is idempotent on event_id)."""
        ...

    def item_states_version(self) -> int | None:
        """The version of the agent's item_states cache, None before central sent one."""
        ...

    def item_states(self) -> Iterator[tuple[str, str]]:
        """Every (item id, state) of the item_states cache."""
        ...

    def report_details(self, details: StatusDetails) -> None:
        """Hand the gate's own status fields to the agent for its retained DeviceStatus."""
        ...

    def item_title(self, item_id: str) -> str | None:
        """The item's title as the cache knows it."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class OutboxAgent:
    """The agent's outbox and caches used directly (same process, or its database file)."""

    def __init__(
        self,
        outbox: Outbox,
        caches: CacheStore | None,
        device_id: str,
        *,
        on_append: Callable[[], None] | None = None,
        owns: bool = False,
    ) -> None:
        self.outbox = outbox
        self.caches = caches
        self.device_id = device_id
        self._on_append = on_append
        self._owns = owns

    @classmethod
    def open(cls, path: Path, device_id: str, *, max_events: int | None = None) -> OutboxAgent:
        """Open the agent's database file (created if the agent has not yet run)."""
        try:
            outbox = SqliteOutbox(path, limits=OutboxLimits(max_rows=max_events))
        except OutboxError as exc:
            raise GateConfigError(f"gate.agent_url: cannot open {path}: {exc}") from exc
        try:
            caches = CacheStore(path)
        except CacheError as exc:
            outbox.close()
            raise GateConfigError(
                f"gate.agent_url: cannot open the caches in {path}: {exc}"
            ) from exc
        return cls(outbox, caches, device_id, owns=True)

    def append_event(self, event: HandoverEvent) -> None:
        """Commit the event to the agent's outbox."""
        try:
            self.outbox.append(
                self.device_id,
                event.kind,
                event.payload,
                event_time=event.event_time,
                clock_trusted=event.clock_trusted,
                event_id=event.event_id,
            )
        except (InvalidArgument, EventIdConflict) as exc:
            raise AgentRejected(
                f"the agent's outbox refused event {event.event_id}: {exc}"
            ) from exc
        except OutboxError as exc:
            raise AgentUnavailable(f"the agent's outbox did not take the event: {exc}") from exc
        if self._on_append is not None:
            self._on_append()

    def item_states_version(self) -> int | None:
        """The cache's version from the caches table."""
        if self.caches is None:
            return None
        try:
            return self.caches.versions().get("item_states")
        except CacheError as exc:
            raise AgentUnavailable(f"cannot read the agent's caches: {exc}") from exc

    def item_states(self) -> Iterator[tuple[str, str]]:
        """Page through the cache."""
        if self.caches is None:
            return
        offset = 0
        while True:
            try:
                page = self.caches.item_states(_PAGE, offset)
            except CacheError as exc:
                raise AgentUnavailable(f"cannot read the agent's item states: {exc}") from exc
            for item in page:
                yield item.item_id, item.state
            if len(page) < _PAGE:
                return
            offset += len(page)

    def item_title(self, item_id: str) -> str | None:
        """The title in the cache, if any."""
        if self.caches is None:
            return None
        try:
            state = self.caches.item_state(item_id)
        except CacheError as exc:
            raise AgentUnavailable(f"cannot read the agent's item states: {exc}") from exc
        return state.title if state else None

    def report_details(self, details: StatusDetails) -> None:
        """Nothing to do: without the agent's API there is no one to tell."""
        log.debug("device details not reported (no agent API): %s", details)

    def close(self) -> None:
        """Close the stores if this object opened them."""
        if self._owns:
            self.outbox.close()
            if self.caches is not None:
                self.caches.close()


class HttpAgent:
    """The agent's local API, through :class:`edge_agent.client.AgentClient`."""

    def __init__(self, url: str, *, token: str | None, timeout_s: float = 2.0) -> None:
        # Imported here: httpx (under AgentClient) is only needed by a gate that talks HTTP.
        from edge_agent.client import AgentClient

        self.url = url
        self._client = AgentClient(url, token=token, timeout_s=timeout_s)

    def append_event(self, event: HandoverEvent) -> None:
        """``POST /events``; the agent answers after its outbox commit."""
        from edge_agent import client as api

        try:
            payload = _PAYLOAD.validate_json(event.payload)
        except ValidationError as exc:
            raise AgentRejected(
                f"event {event.event_id} does not follow the contract: {exc}"
            ) from exc
        try:
            self._client.append(
                payload,
                time=dt.datetime.fromtimestamp(event.event_time, dt.UTC),
                clock_trusted=event.clock_trusted,
                event_id=uuid.UUID(event.event_id),
            )
        except api.InvalidRequest as exc:
            raise AgentRejected(f"the agent refused event {event.event_id}: {exc}") from exc
        except api.AgentError as exc:
            # Unreachable, full, disk error, wrong token: keep the event and try again.
            raise AgentUnavailable(str(exc)) from exc

    def _get(self, call: Callable[[], Any]) -> Any:
        from edge_agent import client as api

        try:
            return call()
        except api.AgentError as exc:
            raise AgentUnavailable(str(exc)) from exc
        except RuntimeError as exc:  # httpx: the client was closed (the gate is stopping)
            raise AgentUnavailable(f"the agent client is closed: {exc}") from exc

    def item_states_version(self) -> int | None:
        """``GET /caches``."""
        info = self._get(self._client.caches).get("item_states")
        return None if info is None else int(info.version)

    def item_states(self) -> Iterator[tuple[str, str]]:
        """``GET /caches/item_states`` page by page."""
        offset = 0
        while True:
            page: list[ItemState] = self._get(
                functools.partial(self._client.item_states, limit=_PAGE, offset=offset)
            )
            for item in page:
                yield item.item_id, item.state
            if len(page) < _PAGE:
                return
            offset += len(page)

    def item_title(self, item_id: str) -> str | None:
        """``GET /caches/item_states/{id}``."""
        state = self._get(lambda: self._client.item_state(item_id))
        return None if state is None else state.title

    def report_details(self, details: StatusDetails) -> None:
        """``PUT /device/details`` with the fields a device knows (reader, alarms, printer)."""
        from edge_agent.api.models import DeviceDetails

        self._get(lambda: self._client.put_device_details(DeviceDetails.from_status(details)))

    def close(self) -> None:
        """Close the HTTP pool."""
        self._client.close()


def open_agent(
    url: str, *, device_id: str, token: str | None, max_events: int | None = None
) -> AgentPort:
    """Open the agent a ``gate.agent_url`` names (see the module docstring)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme in ("http", "https", "unix"):
        return HttpAgent(url, token=token)
    if parsed.scheme == "sqlite":
        path = parsed.path if not parsed.netloc else f"{parsed.netloc}{parsed.path}"
        if not path:
            raise GateConfigError(f"gate.agent_url {url!r}: expected sqlite:///PATH/agent.sqlite")
        return OutboxAgent.open(Path(path), device_id, max_events=max_events)
    raise GateConfigError(
        f"gate.agent_url {url!r}: use http://HOST:PORT, unix:/PATH or sqlite:///PATH"
    )
