"""``GET /metrics``: the agent's figures in the Prometheus text format.

Everything is read at scrape time from the outbox, the link and the caches (a custom
collector), so nothing here keeps state of its own and a scrape shows the same truth as
``/outbox``. The exposition format itself is written by ``prometheus_client``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from edge_agent.api.app import ApiContext
from edge_agent.caches import CacheError
from edge_agent.outbox import EventState, OutboxError

__all__ = ["AgentCollector", "render"]

log = logging.getLogger(__name__)
P = "libedge_agent_"


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(P + name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(P + name, doc, value=value)


def _labelled_counter(name: str, doc: str, label: str, values: dict[str, int]) -> Metric:
    family = CounterMetricFamily(P + name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


class AgentCollector(Collector):
    """Reads the outbox, link and caches when Prometheus scrapes."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterable[Metric]:
        """Yield every metric family."""
        yield from self._outbox()
        yield from self._link()
        yield from self._caches()
        yield _labelled_counter(
            "api_requests", "Outcomes of API calls that change state.", "outcome", self.ctx.counters
        )

    def _outbox(self) -> Iterable[Metric]:
        try:
            stats = self.ctx.outbox.stats()
        except OutboxError as exc:
            log.warning("metrics without outbox figures: %s", exc)
            yield _gauge("outbox_up", "1 when the outbox can be read.", 0)
            return
        yield _gauge("outbox_up", "1 when the outbox can be read.", 1)
        events = GaugeMetricFamily(P + "outbox_events", "Events in the outbox.", labels=["state"])
        size = GaugeMetricFamily(
            P + "outbox_payload_bytes", "Payload bytes in the outbox.", labels=["state"]
        )
        for state in EventState:
            events.add_metric([state.value], stats.counts[state])
            size.add_metric([state.value], stats.payload_bytes[state])
        yield events
        yield size
        yield _gauge("outbox_storage_bytes", "Outbox file size on disk.", stats.storage_bytes)
        if stats.limits.max_rows is not None:
            yield _gauge(
                "outbox_max_events",
                "Held events at which appends are refused.",
                stats.limits.max_rows,
            )
        if stats.oldest_unconfirmed_age_s is not None:
            yield _gauge(
                "outbox_oldest_unconfirmed_age_seconds",
                "Age of the oldest event central has not confirmed.",
                stats.oldest_unconfirmed_age_s,
            )

    def _link(self) -> Iterable[Metric]:
        link = self.ctx.link
        status = link.status()
        counters = link.delivery.counters
        yield _gauge("link_connected", "1 when the MQTT link is up.", int(status.connected))
        yield _gauge("link_inflight", "Events awaiting the broker's PUBACK.", status.inflight)
        yield _gauge(
            "link_awaiting_receipt", "Events awaiting central's receipt.", status.awaiting_receipt
        )
        yield _gauge(
            "link_probing", "1 while a refused message is being isolated.", int(status.probing)
        )
        yield _counter("link_reconnects", "Reconnections since start.", status.reconnects)
        if status.last_central_contact is not None:
            yield _gauge(
                "last_central_contact_timestamp_seconds",
                "Unix time of the last message from central.",
                status.last_central_contact,
            )
        for name, value, doc in (
            ("events_published", counters.published, "Event publishes (re-sends included)."),
            ("events_resent", counters.resent, "Re-sends of events the broker had acknowledged."),
            ("events_acked", counters.acked, "Broker acknowledgements (PUBACK) of events."),
            ("events_confirmed", counters.confirmed, "Events confirmed by central's receipts."),
            ("events_rejected", counters.rejected, "Events rejected by central."),
            ("events_refused", counters.refused, "Events refused by the broker."),
            ("events_dead_lettered", counters.dead_lettered, "Events moved to dead letters."),
            ("outbox_write_errors", counters.storage_errors, "Failed outbox writes (retried)."),
        ):
            yield _counter(name, doc, value)
        yield _labelled_counter(
            "requests", "Requests to central by outcome.", "outcome", link.counters.requests
        )
        yield _labelled_counter(
            "ignored_messages",
            "Received messages ignored, by reason.",
            "reason",
            link.counters.ignored,
        )

    def _caches(self) -> Iterable[Metric]:
        try:
            versions = self.ctx.caches.versions()
        except CacheError:
            return
        family = GaugeMetricFamily(
            P + "cache_version", "Version of each offline cache.", labels=["cache"]
        )
        for name, version in sorted(versions.items()):
            family.add_metric([name], version)
        yield family


def render(ctx: ApiContext) -> tuple[bytes, str]:
    """The exposition text and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(ctx))
    ProcessCollector(registry=registry)
    return generate_latest(registry), CONTENT_TYPE_LATEST
