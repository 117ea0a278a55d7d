"""The one Prometheus registry of the process and the metrics every module shares.

Values that already live in the tree (actor states, mailbox depths, restart counts) are read at
scrape time by collectors instead of being mirrored into gauges, so /metrics can never drift
from /health. Labels are low-cardinality by construction: actor names, message types, reasons.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

VERSION = "0.1.0"


class _SourcesCollector(Collector):
    """Calls every registered source at scrape time; a source is replaced by key, never stacked."""

    def __init__(self) -> None:
        self.sources: dict[str, Callable[[], Iterable[Metric]]] = {}

    def collect(self) -> Iterable[Metric]:
        for fn in list(self.sources.values()):
            yield from fn()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self._sources = _SourcesCollector()
        r.register(self._sources)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.build_info = Gauge("trt_build_info", "Build and runtime information (always 1)",
                                ["version", "python"], registry=r)
        self.build_info.labels(VERSION, platform.python_version()).set(1)
        self.handling_seconds = Histogram(
            "trt_message_handling_seconds", "Time an actor spent handling one message",
            ["actor", "message"], registry=r,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.deadline_misses = Counter("trt_actor_deadline_misses", "Start, handling and watchdog deadlines missed",
                                       ["actor", "kind"], registry=r)
        self.restarts = Counter("trt_actor_restarts", "Restarts of a supervised child", ["actor"], registry=r)
        self.escalations = Counter("trt_supervisor_escalations",
                                   "Supervisors that exceeded their restart intensity", ["supervisor"],
                                   registry=r)
        self.loop_lag = Gauge("trt_event_loop_lag_seconds", "Latest measured event-loop scheduling lag",
                              registry=r)
        self.loop_lag_max = Gauge("trt_event_loop_lag_max_seconds",
                                  "Largest event-loop lag seen in the last minute", registry=r)
        self.loop_stalls = Counter("trt_event_loop_stalls", "Event-loop lags over the stall threshold",
                                   registry=r)
        self.traces = Counter("trt_trace_events", "Trace events by outcome (written, lost)", ["outcome"],
                              registry=r)
        self.role = Gauge("trt_role_active", "1 while this instance is ACTIVE, 0 while PASSIVE", registry=r)
        self.epoch = Gauge("trt_leader_epoch", "Fencing epoch this instance holds (0 while PASSIVE)", registry=r)
        self.takeovers = Counter("trt_leader_takeovers", "Stale leaders this instance terminated and replaced",
                                 registry=r)
        self.demotions = Counter("trt_leader_demotions", "Times this instance lost leadership", registry=r)
        self.webhook_ok = Gauge("trt_webhook_ok", "1 when the last webhook verification succeeded", registry=r)
        self.webhook_pending = Gauge("trt_webhook_pending_updates", "pending_update_count reported by Telegram",
                                     registry=r)
        self.webhook_sets = Counter("trt_webhook_sets", "setWebhook calls made", registry=r)
        self.webhook_errors = Counter("trt_webhook_errors", "Failed webhook verification cycles", registry=r)
        self.http_requests = Counter("trt_http_requests", "HTTP requests served by ingress",
                                     ["route", "status"], registry=r)
        self.updates_received = Counter("trt_updates_received", "Updates made durable in the inbox",
                                        ["source", "result"], registry=r)  # result: new, duplicate
        self.updates_rejected = Counter("trt_webhook_rejected", "Webhook requests refused before the inbox",
                                        ["reason"], registry=r)
        self.webhook_ack_seconds = Histogram(
            "trt_webhook_ack_seconds", "POST /webhook from request to answer (an update is acknowledged only once "
            "committed to the inbox)", registry=r,  # 15 and 20 ms: the ack p99 goal (issue 21) falls on a bound
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.inbox_commit_seconds = Histogram(
            "trt_inbox_commit_seconds", "Group commits of received updates", registry=r,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.inbox_batch_size = Histogram("trt_inbox_batch_size", "Updates per group commit", registry=r,
                                          buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
        self.updates_handled = Counter("trt_updates_handled", "Updates the dispatcher finished",
                                       ["kind", "outcome"], registry=r)
        self.updates_dropped = Counter("trt_updates_dropped", "Updates marked done without running their "
                                       "handlers, by reason (flood: over a chat's rate limit; stale_press: a newer "
                                       "press of the chat waited behind it)", ["reason"], registry=r)
        self.update_seconds = Histogram(
            "trt_update_handling_seconds", "Time from claim to done for one update", ["kind"], registry=r,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.inbox_pending = Gauge("trt_inbox_pending", "Updates in the inbox not yet done", registry=r)
        self.inbox_oldest = Gauge("trt_inbox_oldest_pending_seconds", "Age of the oldest update not yet done",
                                  registry=r)
        self.dispatch_inflight = Gauge("trt_dispatch_inflight", "Updates claimed and held in memory", registry=r)
        self.telegram_requests = Counter(
            "trt_telegram_requests", "Bot API requests, by method and outcome "
            "(ok, bad_request, forbidden, not_found, conflict, retry_after, server_error, network, refused, other)",
            ["method", "outcome"], registry=r)
        self.telegram_seconds = Histogram(
            "trt_telegram_seconds", "Bot API requests from first try to answer, the send limiter's waits included",
            ["method"], registry=r, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.telegram_retries = Counter("trt_telegram_retry_after", "429 answers from Telegram that were waited out",
                                        ["method"], registry=r)
        self.gc_pause = Histogram("trt_gc_pause_seconds", "Garbage collections (they stop the event loop)",
                                  ["generation"], registry=r,
                                  buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))
        self.gc_frozen = Gauge("trt_gc_frozen_objects", "Startup objects moved out of the collector's reach",
                               registry=r)
        # generations (actors/kie_poller.py; the gauges are the ACTIVE instance's last sweep, 0 elsewhere)
        self.jobs = Gauge("trt_jobs", "Jobs not yet delivered to their user, by state", ["state"], registry=r)
        self.job_oldest_running = Gauge("trt_job_oldest_running_seconds",
                                        "Age of the oldest job not yet finished", registry=r)
        self.kie_calls = Counter("trt_kie_calls", "Calls to KIE, by endpoint and outcome (ok or the error kind)",
                                 ["endpoint", "outcome"], registry=r)
        self.kie_seconds = Histogram(
            "trt_kie_seconds", "Duration of KIE calls, retries included", ["endpoint"], registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.generations_paused = Gauge("trt_generations_paused",
                                        "1 while new generations are paused (KIE answered 402)", registry=r)
        self.kie_credits = Gauge("trt_kie_credits", "KIE credits left, as last seen", registry=r)
        self.ledger_flows = Counter("trt_ledger_flows", "Money moved for jobs, by kind (hold, capture, release)",
                                    ["kind"], registry=r)
        self.money_in = Counter("trt_money_in", "Credits to users' balances, by source (stars, subscription, "
                                "transfer, promo, admin, referral)", ["source"], registry=r)
        self.money_in_kopecks = Counter("trt_money_in_kopecks", "Kopecks credited to users' balances, by source "
                                        "(an admin's negative adjustment not counted)", ["source"], registry=r)
        self.kie_callbacks = Counter("trt_kie_callbacks", "KIE callbacks received, by result",
                                     ["result"], registry=r)
        self.deliveries = Counter("trt_job_deliveries", "Jobs whose user was told the outcome, by outcome",
                                  ["outcome"], registry=r)
        self.kie_orphan_tasks = Counter("trt_kie_orphan_tasks",
                                        "Jobs released at their deadline while KIE may have their task "
                                        "(the task creation's answer was ambiguous and no task ever showed up)",
                                        registry=r)

    def set_source(self, key: str, fn: Callable[[], Iterable[Metric]] | None) -> None:
        """Install (or remove, with None) a scrape-time source of metrics."""
        if fn is None:
            self._sources.sources.pop(key, None)
        else:
            self._sources.sources[key] = fn

    def render(self) -> bytes:
        return generate_latest(self.registry)


METRICS = Metrics()
