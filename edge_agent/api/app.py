"""The agent's local HTTP API (FastAPI): how the kiosk, the gate and staff talk to the agent.

Served on loopback TCP (or a unix socket) by :mod:`edge_agent.service`. Routes:

==========================================  =====  ==========================================
``POST /events``                            token  append an event; 201 ``{seq, event_id}``
                                                   only after the outbox commit; 507 when the
                                                   outbox is full, 503 on a storage error
``POST /ask[?timeout=s]``                   token  ask central (request/response over MQTT);
                                                   central's Response or ``outcome: offline``
``GET /caches``, ``/caches/{name}``,        token  the offline caches
``/caches/patron_blocks/{id}``,
``/caches/item_states/{id}``
``GET /dead-letters``                       token  events central will not get unless retried
``POST /dead-letters/{dev}/{seq}/retry``    token  staff: send it again
``POST /dead-letters/{dev}/{seq}/discard``  token  staff: give up on it (kept for the audit)
``GET /commands``                           token  staff commands received from central
``PUT /device/details``, ``GET`` likewise   token  the device process's own status (reader,
                                                   printer, alarms), merged into the
                                                   retained DeviceStatus
``GET /health``, ``/outbox``, ``/metrics``  open   staff views: aggregate figures only
==========================================  =====  ==========================================

Every answer that is not a success is JSON ``{"error": code, "message": sentence,
"fields": [...]}``: 401 for a missing or wrong ``Authorization: Bearer`` token (checked
before the body is even read), 422 naming each wrong field, never a stack trace.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from edge_agent.api.details import ReportedDetails
from edge_agent.api.models import (
    Appended,
    AppendEvent,
    CacheInfo,
    DeadLetter,
    DeadLetterAction,
    DeviceDetails,
    ErrorBody,
    FieldProblem,
    Health,
    LinkView,
    OutboxView,
    PatronBlockView,
)
from edge_agent.caches import CacheError, CacheStore
from edge_agent.contract import BlockedPatron, Command, ItemState, LoanPolicy
from edge_agent.contract import Response as Answer
from edge_agent.contract.central import RequestBody
from edge_agent.link import AgentLink, LinkStatus, Offline
from edge_agent.outbox import (
    EventIdConflict,
    EventState,
    InvalidArgument,
    Outbox,
    OutboxClosed,
    OutboxError,
    OutboxEvent,
    OutboxFull,
    OutboxStorageError,
)

__all__ = ["ApiContext", "ApiProblem", "create_app"]

T = TypeVar("T")

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Routes anyone on this machine may read: aggregate figures, no patron data.
OPEN_ROUTES = frozenset(
    {
        ("GET", "/health"),
        ("GET", "/outbox"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
    }
)


@dataclass
class ApiContext:
    """What the API works with; built by the service (or a test)."""

    device_id: str
    token: str
    outbox: Outbox
    caches: CacheStore
    link: AgentLink
    version: str = "unknown"
    max_events: int | None = None
    counters: dict[str, int] = field(default_factory=dict)
    #: What the device process reported with ``PUT /device/details``.
    device_details: ReportedDetails = field(default_factory=ReportedDetails)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, name: str) -> None:
        """Add one to a counter shown in /metrics (routes run on many threads at once)."""
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + 1


class ApiProblem(Exception):  # noqa: N818 - it is an answer, raised to leave a route
    """Leave a route with an error answer: HTTP status, stable code, a sentence."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


def _error(
    status: int, error: str, message: str, fields: list[FieldProblem] | None = None
) -> JSONResponse:
    body = ErrorBody(error=error, message=message, fields=fields or [])
    return JSONResponse(status_code=status, content=body.model_dump(mode="json"))


class TokenGuard:
    """ASGI middleware: every route outside OPEN_ROUTES needs ``Authorization: Bearer``.

    It runs before routing and body parsing, so an unauthenticated caller learns nothing
    about what a valid body looks like.
    """

    def __init__(self, app: Asgi, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass authorised (or open) requests on; answer 401 to the rest."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = "GET" if scope["method"] == "HEAD" else scope["method"]
        if (method, scope["path"]) in OPEN_ROUTES:
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization")
        if given is not None and hmac.compare_digest(given, self._expected):
            await self.app(scope, receive, send)
            return
        message = (
            "missing Authorization: Bearer token"
            if given is None
            else "wrong bearer token (see agent.api_token)"
        )
        body = ErrorBody(error="unauthorized", message=message).model_dump(mode="json")
        response = JSONResponse(
            status_code=401, content=body, headers={"WWW-Authenticate": "Bearer"}
        )
        await response(scope, receive, send)


def _iso(unix: float | None) -> dt.datetime | None:
    return None if unix is None else dt.datetime.fromtimestamp(unix, dt.UTC)


def link_view(status: LinkStatus) -> LinkView:
    """The link snapshot as the API shows it."""
    return LinkView(
        phase=status.phase,
        connected=status.connected,
        broker=status.broker,
        problem=status.problem,
        problem_kind=status.problem_kind,
        problem_at=_iso(status.problem_at),
        connected_since=_iso(status.connected_since),
        last_central_contact=_iso(status.last_central_contact),
        inflight=status.inflight,
        awaiting_receipt=status.awaiting_receipt,
        probing=status.probing,
        reconnects=status.reconnects,
        last_refusal=status.last_refusal,
        out_of_service=status.out_of_service,
    )


def _dead_letter(event: OutboxEvent) -> DeadLetter:
    try:
        payload: Any = json.loads(event.payload)
    except ValueError:
        payload = event.payload
    return DeadLetter(
        device_id=event.device_id,
        seq=event.seq,
        event_id=event.event_id,
        kind=event.kind,
        payload=payload,
        event_time=dt.datetime.fromtimestamp(event.event_time, dt.UTC),
        created_at=dt.datetime.fromtimestamp(event.created_at, dt.UTC),
        attempts=event.attempts,
        dead_reason=event.dead_reason,
    )


def _outbox_problem(exc: OutboxError) -> ApiProblem:
    """Translate the outbox's errors into the API's answers."""
    if isinstance(exc, OutboxFull):
        return ApiProblem(507, "outbox_full", str(exc))
    if isinstance(exc, EventIdConflict):
        return ApiProblem(409, "event_id_conflict", str(exc))
    if isinstance(exc, InvalidArgument):
        return ApiProblem(422, "invalid_event", str(exc))
    if isinstance(exc, OutboxClosed):
        return ApiProblem(503, "stopping", "the agent is stopping; try again shortly")
    if isinstance(exc, OutboxStorageError):
        return ApiProblem(503, "storage_error", f"the event was not stored: {exc}")
    return ApiProblem(503, "outbox_error", str(exc))


def create_app(ctx: ApiContext) -> FastAPI:
    """The FastAPI application over ``ctx``."""
    app = FastAPI(
        title="libedge agent",
        version=ctx.version,
        description="The edge agent's local API (loopback only).",
        redoc_url=None,
    )
    app.add_middleware(TokenGuard, token=ctx.token)
    _install_error_handlers(app)
    _event_routes(app, ctx)
    _cache_routes(app, ctx)
    _staff_routes(app, ctx)
    _device_routes(app, ctx)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = []
        for err in exc.errors():
            raw = tuple(err.get("loc", ()))
            loc = [str(p) for p in raw if p not in ("body", "query", "path")]
            problem = str(err["msg"])
            if err.get("type") == "json_invalid":
                where = f" at character {raw[-1]}" if raw and isinstance(raw[-1], int) else ""
                loc, problem = [], f"the body is not valid JSON ({problem}{where})"
            elif raw == ("body",) and isinstance(err.get("input"), bytes | str):
                problem = "the body must be a JSON object sent as Content-Type: application/json"
            fields.append(FieldProblem(field=".".join(loc) or "(body)", problem=problem))
        message = "; ".join(f"{f.field}: {f.problem}" for f in fields) or "invalid request"
        return _error(422, "invalid_request", message, fields=fields)

    @app.exception_handler(ApiProblem)
    async def problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return _error(exc.status, exc.error, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return _error(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("API error on %s %s", request.method, request.url.path)
        return _error(500, "internal_error", "internal error; the agent's log has the details")


def _event_routes(app: FastAPI, ctx: ApiContext) -> None:
    @app.post("/events", status_code=201, response_model=Appended)
    def append_event(body: AppendEvent) -> Appended:
        """Commit one event to the outbox; answer only after the commit."""
        payload = body.payload
        try:
            stored = ctx.outbox.append(
                ctx.device_id,
                payload.type,
                payload.model_dump_json(),
                event_time=body.time.timestamp() if body.time else None,
                clock_trusted=body.clock_trusted,
                event_id=str(body.event_id) if body.event_id else None,
            )
        except OutboxError as exc:
            problem = _outbox_problem(exc)
            ctx.count(f"append_{problem.error}")
            log.warning("event refused: %s", problem.message)
            raise problem from exc
        ctx.count("append_ok")
        ctx.link.notify()
        return Appended(
            device_id=stored.device_id, seq=stored.seq, event_id=uuid.UUID(stored.event_id)
        )

    @app.post("/ask", response_model=Answer | Offline)
    def ask(
        body: RequestBody,
        timeout: float | None = Query(None, gt=0, le=60, description="Seconds to wait."),
    ) -> Answer | Offline:
        """Ask central; its Response, or ``{"outcome": "offline", ...}``."""
        return ctx.link.ask(body, timeout)


def _cache_routes(app: FastAPI, ctx: ApiContext) -> None:
    def guarded(read: Callable[[], T]) -> T:
        try:
            return read()
        except CacheError as exc:
            raise ApiProblem(503, "cache_error", str(exc)) from exc

    @app.get("/caches", response_model=dict[str, CacheInfo])
    def caches() -> dict[str, Any]:
        """Which version of each offline cache the agent holds."""
        return guarded(ctx.caches.info)

    @app.get("/caches/patron_blocks", response_model=list[BlockedPatron])
    def patron_blocks(
        limit: int = Query(1000, ge=1, le=10000), offset: int = Query(0, ge=0)
    ) -> list[BlockedPatron]:
        """Blocked patrons."""
        return guarded(lambda: ctx.caches.patron_blocks(limit, offset))

    @app.get("/caches/patron_blocks/{patron_id}", response_model=PatronBlockView)
    def patron_block(patron_id: str) -> PatronBlockView:
        """Whether one patron is blocked (offline decision)."""
        block = guarded(lambda: ctx.caches.patron_block(patron_id))
        if block is None:
            return PatronBlockView(patron_id=patron_id, blocked=False)
        return PatronBlockView(patron_id=patron_id, blocked=True, reason=block.reason.value)

    @app.get("/caches/item_states", response_model=list[ItemState])
    def item_states(
        limit: int = Query(1000, ge=1, le=10000), offset: int = Query(0, ge=0)
    ) -> list[ItemState]:
        """Items the cache knows."""
        return guarded(lambda: ctx.caches.item_states(limit, offset))

    @app.get("/caches/item_states/{item_id}", response_model=ItemState)
    def item_state(item_id: str) -> ItemState:
        """What the cache knows of one item; 404 when nothing."""
        state = guarded(lambda: ctx.caches.item_state(item_id))
        if state is None:
            raise ApiProblem(404, "not_cached", f"item {item_id!r} is not in the offline cache")
        return state

    @app.get("/caches/loan_policy", response_model=LoanPolicy)
    def loan_policy() -> LoanPolicy:
        """The loan policy for offline decisions; 404 before central sent one."""
        policy = guarded(ctx.caches.loan_policy)
        if policy is None:
            raise ApiProblem(404, "not_cached", "central has not sent a loan policy yet")
        return policy


def _staff_routes(app: FastAPI, ctx: ApiContext) -> None:
    @app.get("/health", response_model=Health)
    def health(response: Response) -> Health:
        """Say whether the agent is ok, degraded (no link: events are kept) or failing."""
        link = link_view(ctx.link.status())
        error = None
        try:
            ctx.outbox.stats()
        except OutboxError as exc:
            error = str(exc)
        status: Literal["ok", "degraded", "failing"] = (
            "failing" if error else "ok" if link.connected else "degraded"
        )
        if status == "failing":
            response.status_code = 503
        return Health(
            status=status,
            version=ctx.version,
            device_id=ctx.device_id,
            outbox_ok=error is None,
            outbox_error=error,
            link=link,
        )

    @app.get("/outbox", response_model=OutboxView)
    def outbox() -> OutboxView:
        """Depth by state, oldest unconfirmed age, last contact with central."""
        try:
            stats = ctx.outbox.stats()
        except OutboxError as exc:
            raise _outbox_problem(exc) from exc
        counts = {state.value: stats.counts[state] for state in EventState}
        return OutboxView(
            device_id=ctx.device_id,
            counts=counts,
            unconfirmed=counts["pending"] + counts["sent"],
            held=stats.held_rows,
            max_events=stats.limits.max_rows,
            payload_bytes=stats.held_bytes,
            storage_bytes=stats.storage_bytes,
            oldest_unconfirmed_age_s=stats.oldest_unconfirmed_age_s,
            oldest_dead_age_s=stats.oldest_dead_age_s,
            last_seq=dict(stats.last_seq),
            link=link_view(ctx.link.status()),
        )

    @app.get("/dead-letters", response_model=list[DeadLetter])
    def dead_letters(limit: int = Query(100, ge=1, le=10000)) -> list[DeadLetter]:
        """Events that will not reach central unless staff retry them, oldest first."""
        try:
            return [_dead_letter(e) for e in ctx.outbox.dead_letters(limit)]
        except OutboxError as exc:
            raise _outbox_problem(exc) from exc

    @app.post("/dead-letters/{device_id}/{seq}/{action}", response_model=DeadLetterAction)
    def dead_letter_action(
        device_id: str, seq: int, action: Literal["retry", "discard"]
    ) -> DeadLetterAction:
        """Retry (send again) or discard (keep for the audit, never send) one dead letter."""
        try:
            if action == "retry":
                done = ctx.outbox.retry_dead(device_id, seq)
            else:
                done = ctx.outbox.discard_dead(device_id, seq)
        except OutboxError as exc:
            raise _outbox_problem(exc) from exc
        if not done:
            raise ApiProblem(404, "not_dead", f"no dead letter {device_id}/{seq} to {action}")
        log.info(
            "staff %s dead letter %s/%d",
            "retried" if action == "retry" else "discarded",
            device_id,
            seq,
        )
        ctx.count(f"dead_letter_{action}")
        if action == "retry":
            ctx.link.notify()
        return DeadLetterAction(device_id=device_id, seq=seq, action=action, done=True)

    @app.get("/commands", response_model=list[Command])
    def commands() -> list[Command]:
        """The last staff commands central sent this device, oldest first."""
        return list(ctx.link.commands)

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus text format."""
        from edge_agent.api.metrics import render

        body, content_type = render(ctx)
        return Response(content=body, media_type=content_type)


def _device_routes(app: FastAPI, ctx: ApiContext) -> None:
    @app.put("/device/details", response_model=DeviceDetails, response_model_exclude_unset=True)
    def put_device_details(body: DeviceDetails) -> DeviceDetails:
        ctx.count("device_details")
        return ctx.device_details.update(body)

    @app.get("/device/details", response_model=DeviceDetails, response_model_exclude_unset=True)
    def get_device_details() -> DeviceDetails:
        return ctx.device_details.current()
