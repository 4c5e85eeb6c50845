"""Prometheus metrics for `/metrics`, on a registry owned by the running bot (no globals).

Every counter counts what this process did, so a scrape of several replicas sums correctly:
webhook calls per action and outcome, LLM requests, errors and tokens, messages handled and
turns settled; histograms of webhook latency, slot waits and Slack acknowledgement time.
What the database holds for all replicas together is exported as gauges read from the store
when scraped, every replica showing the same value (aggregate them with `max`, not `sum`):
the call totals of `/actions stats` (`actionbot_action_calls_recorded`) and the
conversations active in the last hour.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.types import ActionResult

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ACTIVE_WINDOW_SECONDS = 3600.0
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
QUEUE_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0)
"""Slack wants an acknowledgement within 3 s; the buckets resolve the fast end."""


class StoreFigures(Protocol):
    """The store's numbers that a scrape shows (`bot.store.CallLog` and
    `ConversationStore` provide them)."""

    async def call_totals(self) -> list[tuple[str, str, int]]: ...

    async def active_conversations(self, within_seconds: float) -> int: ...

    async def handoff_counts(self) -> tuple[int, int]: ...


class CallSink(Protocol):
    """Where a recorded call goes (`bot.store.CallLog.record_call`)."""

    async def record_call(
        self,
        result: ActionResult,
        *,
        conversation: str | None = None,
        event_key: str | None = None,
        caller: str = "",
        arguments: str | None = None,
    ) -> None: ...


class _StoreTotals(Collector):
    """Exposes the database's per-action call totals, fetched just before each scrape."""

    def __init__(self) -> None:
        self.totals: list[tuple[str, str, int]] = []

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "actionbot_action_calls_recorded",
            "Webhook calls per action and outcome recorded in the database by every replica "
            "(the numbers of /actions stats; the same on each replica: aggregate with max).",
            labels=["action", "outcome"],
        )
        for action, outcome, calls in self.totals:
            family.add_metric([action, outcome], calls)
        yield family


class Metrics:
    """Every metric the bot exposes; one instance per running bot."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._totals = _StoreTotals()
        self.registry.register(self._totals)
        self.calls = Counter(
            "actionbot_action_calls",
            "Webhook calls made by this process, per action and outcome.",
            ["action", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "actionbot_action_latency_seconds",
            "Webhook call latency per action.",
            ["action"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.webhook_inflight = Gauge(
            "actionbot_webhook_inflight",
            "Webhook calls being sent right now, per action.",
            ["action"],
            registry=self.registry,
        )
        self.webhook_queue = Histogram(
            "actionbot_webhook_queue_seconds",
            "Time a webhook call waited for a free slot (its action's or the pool's).",
            ["action"],
            buckets=QUEUE_BUCKETS,
            registry=self.registry,
        )
        self.slack_ack = Histogram(
            "actionbot_slack_ack_seconds",
            "Time from receiving a Slack HTTP request to sending its acknowledgement.",
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )
        self.llm_requests = Counter(
            "actionbot_llm_requests", "Chat Completions requests.", registry=self.registry
        )
        self.llm_errors = Counter(
            "actionbot_llm_errors",
            "Failed Chat Completions requests.",
            ["kind"],
            registry=self.registry,
        )
        self.llm_tokens = Counter(
            "actionbot_llm_tokens",
            "Tokens reported by the LLM server.",
            ["kind"],
            registry=self.registry,
        )
        self.messages = Counter(
            "actionbot_messages_handled",
            "Customer messages answered.",
            ["platform"],
            registry=self.registry,
        )
        self.turns = Counter(
            "actionbot_turns",
            "Customer messages settled: answered, failed (the customer got an apology), or "
            "silent (the conversation was with a person).",
            ["outcome"],
            registry=self.registry,
        )
        self.conversations = Gauge(
            "actionbot_conversations_active",
            "Conversations with a message in the last hour (database-wide).",
            registry=self.registry,
        )
        self.handoffs = Counter(
            "actionbot_handoffs",
            "Conversations this process handed to a person (handoff_to_human).",
            ["platform"],
            registry=self.registry,
        )
        self.with_a_person = Gauge(
            "actionbot_conversations_with_a_person",
            "Conversations handed to a person and not resumed or expired (database-wide).",
            registry=self.registry,
        )
        self.breaker_open = Gauge(
            "actionbot_breaker_open",
            "1 while the action's circuit breaker is open or probing in this process, else 0.",
            ["action"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "actionbot_customer_rate_limited",
            "Customer messages not answered because the customer's rate was used up.",
            ["platform"],
            registry=self.registry,
        )

    def observe_call(self, result: ActionResult) -> None:
        self.calls.labels(result.action, result.outcome.value).inc()
        self.latency.labels(result.action).observe(result.latency_ms / 1000)

    def webhook_queued(self, action: str, seconds: float) -> None:
        self.webhook_queue.labels(action).observe(seconds)

    def webhook_in_flight(self, action: str, change: int) -> None:
        self.webhook_inflight.labels(action).inc(change)

    async def render(self, store: StoreFigures) -> bytes:
        """The exposition text, with the store's numbers fetched now."""
        self._totals.totals = await store.call_totals()
        self.conversations.set(await store.active_conversations(ACTIVE_WINDOW_SECONDS))
        self.with_a_person.set((await store.handoff_counts())[1])
        return generate_latest(self.registry)


class MeteredRecorder:
    """Records each call in the store and observes its latency: the webhook client's sink."""

    def __init__(self, store: CallSink, metrics: Metrics) -> None:
        self.store = store
        self.metrics = metrics

    async def record_call(
        self,
        result: ActionResult,
        *,
        conversation: str | None = None,
        event_key: str | None = None,
        caller: str = "",
        arguments: str | None = None,
    ) -> None:
        self.metrics.observe_call(result)
        await self.store.record_call(
            result,
            conversation=conversation,
            event_key=event_key,
            caller=caller,
            arguments=arguments,
        )
