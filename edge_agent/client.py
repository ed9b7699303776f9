"""A small typed client of the edge agent's local API, for the kiosk, the gate and staff tools.

::

    with AgentClient.from_settings(settings) as agent:
        stored = agent.append(Checkout(patron_id="P1", item_id="I1", due_date=due))
        answer = agent.ask(CheckoutAuth(patron_id="P1", item_id="I2"))
        if isinstance(answer, Offline): ...  # decide by the offline policy and the caches

Errors (one tree; every message says what happened)::

    AgentError
    ├── AgentUnavailable     the agent cannot be reached (not running, wrong address, timeout)
    ├── AgentUnauthorized    401: the token is missing or wrong (check agent.api_token)
    ├── OutboxFullError      507: the outbox refused the event, it was NOT stored
    ├── StorageError         503: the agent's disk failed, the event was NOT stored
    ├── InvalidRequest       422: a field is wrong (``.fields`` names each one)
    └── AgentHttpError       any other error answer (``.status``, ``.error``)

``ask`` never raises for "central cannot answer": it returns
:class:`~edge_agent.link.answers.Offline` (also when the agent itself is unreachable).
``append`` always sends an ``event_id`` (a new UUID unless given), so retrying an append
whose answer was lost cannot store the event twice: pass the same ``event_id`` again.
"""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from edge_agent.api.models import (
    Appended,
    CacheInfo,
    DeadLetter,
    DeadLetterAction,
    DeviceDetails,
    ErrorBody,
    FieldProblem,
    Health,
    OutboxView,
    PatronBlockView,
)
from edge_agent.config import LibedgeSettings
from edge_agent.contract import BlockedPatron, ItemState, LoanPolicy
from edge_agent.contract.central import RequestBody
from edge_agent.contract.events import EventPayload
from edge_agent.link.answers import AskResult, Offline

__all__ = [
    "AgentClient",
    "AgentError",
    "AgentHttpError",
    "AgentUnauthorized",
    "AgentUnavailable",
    "InvalidRequest",
    "OutboxFullError",
    "StorageError",
]

M = TypeVar("M", bound=BaseModel)
_ASK_RESULT: TypeAdapter[AskResult] = TypeAdapter(AskResult)
_DEAD_LETTERS: TypeAdapter[list[DeadLetter]] = TypeAdapter(list[DeadLetter])
_CACHES: TypeAdapter[dict[str, CacheInfo]] = TypeAdapter(dict[str, CacheInfo])
_ITEM_STATES: TypeAdapter[list[ItemState]] = TypeAdapter(list[ItemState])
_BLOCKS: TypeAdapter[list[BlockedPatron]] = TypeAdapter(list[BlockedPatron])


class AgentError(Exception):
    """Base of every error of this client."""


class AgentUnavailable(AgentError):  # noqa: N818 - named for the condition
    """The agent could not be reached or did not answer in time."""


class AgentHttpError(AgentError):
    """The agent answered with an error; ``status`` and ``error`` say which."""

    def __init__(self, status: int, error: str, message: str, fields: list[FieldProblem]) -> None:
        super().__init__(f"{message} (HTTP {status}, {error})")
        self.status = status
        self.error = error
        self.message = message
        self.fields = fields


class AgentUnauthorized(AgentHttpError):  # noqa: N818 - named for the condition
    """401: the bearer token is missing or wrong."""


class OutboxFullError(AgentHttpError):
    """507: the outbox is at its cap; the event was not stored."""


class StorageError(AgentHttpError):
    """503: the agent could not store the event (disk full, I/O error, stopping)."""


class InvalidRequest(AgentHttpError):  # noqa: N818 - named for the condition
    """422: the request has wrong fields (``fields``)."""


_BY_STATUS: dict[int, type[AgentHttpError]] = {
    401: AgentUnauthorized,
    422: InvalidRequest,
    503: StorageError,
    507: OutboxFullError,
}


#: Nagle's algorithm off: a request is one small write, and with Nagle on the next request on a
#: kept-alive connection waits for the server's delayed ACK (~40 ms measured per kiosk call).
_NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def _transport_for(url: str) -> tuple[str, httpx.HTTPTransport]:
    """``unix:/path`` -> a unix-socket transport; ``http://…`` -> TCP with Nagle off."""
    if url.startswith("unix:"):
        return "http://agent", httpx.HTTPTransport(uds=url.removeprefix("unix:"))
    return url.rstrip("/"), httpx.HTTPTransport(socket_options=_NO_DELAY)


class AgentClient:
    """Blocking client of the local API (``http://host:port`` or ``unix:/path``)."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:8080",
        *,
        token: str | None = None,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        base_url, default_transport = _transport_for(url)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url
        self.timeout_s = timeout_s
        self._http = httpx.Client(
            base_url=base_url,
            headers=headers,
            timeout=timeout_s,
            transport=transport or default_transport,
        )

    @classmethod
    def from_settings(cls, settings: LibedgeSettings, *, timeout_s: float = 5.0) -> AgentClient:
        """A client of the agent configured in ``[agent]`` (its socket or host and port)."""
        agent = settings.agent
        if agent.api_socket is not None:
            url = f"unix:{agent.api_socket}"
        else:
            host = "127.0.0.1" if agent.api_host in ("0.0.0.0", "") else agent.api_host  # noqa: S104
            url = f"http://{host}:{agent.api_port}"
        return cls(url, token=agent.api_token.get_secret_value(), timeout_s=timeout_s)

    # ------------------------------------------------------------ plumbing

    def _call(
        self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any
    ) -> httpx.Response:
        try:
            response = self._http.request(
                method, path, timeout=timeout if timeout is not None else self.timeout_s, **kwargs
            )
        except httpx.TimeoutException as exc:
            raise AgentUnavailable(f"the agent at {self.url} did not answer in time") from exc
        except httpx.TransportError as exc:
            raise AgentUnavailable(f"cannot reach the agent at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise self._error(response)
        return response

    @staticmethod
    def _error(response: httpx.Response) -> AgentHttpError:
        status = response.status_code
        try:
            body = ErrorBody.model_validate_json(response.content)
        except ValidationError:
            body = ErrorBody(error="http_error", message=response.text[:200] or "no details")
        kind = _BY_STATUS.get(status, AgentHttpError)
        return kind(status, body.error, body.message, body.fields)

    @staticmethod
    def _parse(model: type[M], response: httpx.Response) -> M:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise AgentHttpError(
                response.status_code, "bad_answer", f"unexpected answer from the agent: {exc}", []
            ) from exc

    # ------------------------------------------------------------ kiosk and gate

    def append(
        self,
        payload: EventPayload,
        *,
        time: dt.datetime | None = None,
        clock_trusted: bool = True,
        event_id: uuid.UUID | None = None,
    ) -> Appended:
        """Record an event; returns only after the agent committed it (seq and event_id)."""
        body: dict[str, Any] = {
            "payload": payload.model_dump(mode="json"),
            "clock_trusted": clock_trusted,
            "event_id": str(event_id or uuid.uuid4()),
        }
        if time is not None:
            body["time"] = time.isoformat()
        return self._parse(Appended, self._call("POST", "/events", json=body))

    def ask(self, body: RequestBody, timeout: float | None = None) -> AskResult:
        """Ask central through the agent: its Response, or Offline (never raises for that)."""
        params = {"timeout": timeout} if timeout is not None else {}
        wait = (timeout or 3.0) + self.timeout_s  # the agent waits for central first
        try:
            response = self._call(
                "POST",
                "/ask",
                params=params,
                # model_dump_json reveals a PIN for the wire only; it is never logged.
                content=body.model_dump_json().encode(),
                headers={"Content-Type": "application/json"},
                timeout=wait,
            )
        except AgentUnavailable as exc:
            return Offline(kind="agent_unreachable", reason=str(exc))
        try:
            return _ASK_RESULT.validate_json(response.content)
        except ValidationError as exc:
            raise AgentHttpError(
                response.status_code, "bad_answer", f"unexpected answer to ask: {exc}", []
            ) from exc

    def patron_block(self, patron_id: str) -> PatronBlockView:
        """Whether the offline cache lists this patron as blocked."""
        return self._parse(
            PatronBlockView, self._call("GET", f"/caches/patron_blocks/{_segment(patron_id)}")
        )

    def item_state(self, item_id: str) -> ItemState | None:
        """What the offline cache knows of an item, or None."""
        try:
            response = self._call("GET", f"/caches/item_states/{_segment(item_id)}")
        except AgentHttpError as exc:
            if exc.status == 404:
                return None
            raise
        return self._parse(ItemState, response)

    def item_states(self, limit: int = 1000, offset: int = 0) -> list[ItemState]:
        """A page of the item-state cache, by item id (the gate keeps its own copy)."""
        response = self._call(
            "GET", "/caches/item_states", params={"limit": limit, "offset": offset}
        )
        return _parse_list(_ITEM_STATES, response)

    def patron_blocks(self, limit: int = 1000, offset: int = 0) -> list[BlockedPatron]:
        """A page of the blocked-patron cache, by patron id."""
        response = self._call(
            "GET", "/caches/patron_blocks", params={"limit": limit, "offset": offset}
        )
        return _parse_list(_BLOCKS, response)

    def loan_policy(self) -> LoanPolicy | None:
        """The cached loan policy, or None before central sent one."""
        try:
            response = self._call("GET", "/caches/loan_policy")
        except AgentHttpError as exc:
            if exc.status == 404:
                return None
            raise
        return self._parse(LoanPolicy, response)

    def caches(self) -> dict[str, CacheInfo]:
        """Version and size of each cache the agent holds."""
        return _CACHES.validate_json(self._call("GET", "/caches").content)

    def put_device_details(self, details: DeviceDetails) -> DeviceDetails:
        """Report this device's own status (reader, printer, alarms); returns what is kept.

        Only the fields ``details`` sets are sent, so one process's report does not clear
        another's; the agent merges them into the retained DeviceStatus it publishes.
        """
        response = self._call(
            "PUT",
            "/device/details",
            content=details.model_dump_json(exclude_unset=True).encode(),
            headers={"Content-Type": "application/json"},
        )
        return self._parse(DeviceDetails, response)

    def device_details(self) -> DeviceDetails:
        """What the agent holds of this device's own reported status (fresh values only)."""
        return self._parse(DeviceDetails, self._call("GET", "/device/details"))

    # ------------------------------------------------------------ staff

    def health(self) -> Health:
        """The agent's health with the link's state (a 503 'failing' answer is returned too)."""
        try:
            response = self._call("GET", "/health")
        except AgentHttpError as exc:
            if exc.status != 503:
                raise
            response = self._http.get("/health")
        return self._parse(Health, response)

    def outbox(self) -> OutboxView:
        """Depth by state, oldest unconfirmed age, link state."""
        return self._parse(OutboxView, self._call("GET", "/outbox"))

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Events central will not get unless retried, oldest first."""
        return _DEAD_LETTERS.validate_json(
            self._call("GET", "/dead-letters", params={"limit": limit}).content
        )

    def retry_dead(self, device_id: str, seq: int) -> DeadLetterAction:
        """Send a dead letter again."""
        return self._parse(
            DeadLetterAction,
            self._call("POST", f"/dead-letters/{_segment(device_id)}/{seq}/retry"),
        )

    def discard_dead(self, device_id: str, seq: int) -> DeadLetterAction:
        """Give up on a dead letter (it stays in the audit trail)."""
        return self._parse(
            DeadLetterAction,
            self._call("POST", f"/dead-letters/{_segment(device_id)}/{seq}/discard"),
        )

    def metrics(self) -> str:
        """The Prometheus text."""
        return self._call("GET", "/metrics").text

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


T = TypeVar("T")


def _parse_list(adapter: TypeAdapter[list[T]], response: httpx.Response) -> list[T]:
    """Validate a listing; a malformed one is an AgentHttpError like any other bad answer."""
    try:
        return adapter.validate_json(response.content)
    except ValidationError as exc:
        raise AgentHttpError(
            response.status_code, "bad_answer", f"unexpected listing from the agent: {exc}", []
        ) from exc


def _segment(value: str) -> str:
    """Quote a value for one URL path segment (item ids may hold '/' or spaces)."""
    return quote(value, safe="")
