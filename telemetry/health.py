"""What /health and the tree's /metrics say: one reading of the supervisor tree, two formats.

Status: `fail` while the database is down or within HEALTH_RESTART_WINDOW of a supervisor
escalation; `warn` while any child is not running, an actor is stuck past its deadline, a
restart happened within the window, or the webhook intake's group commit is stuck (acks would be
503s while everything else looks fine); `pass` otherwise. /health answers 200 in every case: the
body says how things are, the status code only says the process serves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from actors.actor import Actor
from actors.mailbox import dead_letters
from config import Settings
from store.database import Database
from supervisor import State, Supervisor
from telemetry.loopwatch import LoopWatch
from telemetry.metrics import VERSION

STATES = [s.value for s in State]

WEBHOOK_KEYS = ("active", "auto_set", "ok", "last_ok_at", "webhook_error", "failures", "webhook_last_error",
                "webhook_last_error_at", "next_attempt_in_seconds", "sets", "telegram")


class Observer:
    """Reads the tree for /health and /metrics; holds no state of its own beyond start time."""

    def __init__(self, settings: Settings, root: Supervisor, database: Database,
                 loopwatch: LoopWatch | None = None) -> None:
        self.settings = settings
        self.root = root
        self.database = database
        self.loopwatch = loopwatch
        self.started_wall = time.time()
        self.started = time.monotonic()
        self.sections: dict[str, Callable[[], dict[str, Any]]] = {}

    def status(self, actors: dict[str, dict[str, Any]]) -> tuple[str, list[str]]:
        now = time.time()
        window = self.settings.health_restart_window
        fail: list[str] = []
        warn: list[str] = []
        if self.database.state != "up":
            fail.append(f"database is {self.database.state}")
        for name, item in actors.items():
            recent = item["last_error_at"] is not None and now - item["last_error_at"] <= window
            if recent and str(item["last_error"]).startswith("Escalation"):
                fail.append(f"{name} escalated: {item['last_error']}")
            elif recent:
                warn.append(f"{name} restarted after: {item['last_error']}")
            if item["state"] != State.RUNNING.value:
                warn.append(f"{name} is {item['state']}")
            if item.get("stuck"):
                warn.append(f"{name} is stuck in one message for {item['heartbeat_age_seconds']}s")
            intake = item.get("intake")
            if isinstance(intake, dict):  # the process serves, but webhook acks are not getting through
                warn.extend(f"{name} intake: {problem}" for problem in intake.get("problems", []))
            warn.extend(f"{name}: {problem}" for problem in item.get("problems", []))
        fail.extend(idle_leader(actors, 3 * self.settings.heartbeat_interval + 1.0))
        if fail:
            return "fail", fail + warn
        return ("warn", warn) if warn else ("pass", [])

    def actors(self) -> dict[str, dict[str, Any]]:
        """Every supervised child's health, with whether it is stuck in one message."""
        actors = self.root.snapshot()
        for _, record in self.root.walk():
            if record.name in actors:
                actors[record.name]["stuck"] = isinstance(record.child, Actor) and record.child.stuck
        return actors

    def health(self) -> dict[str, Any]:
        actors = self.actors()
        status, problems = self.status(actors)
        leadership = {k: v for k, v in actors.get("lock_keeper", {}).items()
                      if k in ("role", "epoch", "leader_instance", "leader_heartbeat_age_seconds",
                               "lock_wait_seconds", "takeovers", "demotions", "lock_error")}
        body: dict[str, Any] = {
            "status": status,
            "problems": problems,
            "instance": self.settings.instance_id,
            "role": leadership.get("role", "PASSIVE"),
            "epoch": leadership.get("epoch", 0),
            "leadership": leadership,
            "version": VERSION,
            "uptime_seconds": round(time.monotonic() - self.started, 3),
            "started_at": self.started_wall,
            "database": self.database.health(),
        }
        if "webhook_setter" in actors:
            body["webhook"] = {k: v for k, v in actors["webhook_setter"].items() if k in WEBHOOK_KEYS}
        if "dispatcher" in actors:
            d = actors["dispatcher"]
            body["inbox"] = {"pending": d.get("inbox_pending"), "oldest_pending_seconds":
                             d.get("inbox_oldest_pending_seconds"), "inflight": d.get("inflight"),
                             "handled": d.get("handled"), "failed": d.get("failed")}
        if "kie_poller" in actors:  # generations: jobs by state, the oldest one, paused after a 402
            k = actors["kie_poller"]
            body["jobs"] = {key: k.get(key) for key in ("driving", "kie", "callbacks", "paused", "kie_credits", "jobs",
                                                        "oldest_running_seconds", "in_flight")}
        if isinstance(actors.get("ingress", {}).get("intake"), dict):
            body["intake"] = actors["ingress"]["intake"]
        for key, section in self.sections.items():
            body[key] = section()
        if self.loopwatch is not None:
            body["event_loop"] = {"lag_seconds": round(self.loopwatch.lag, 4),
                                  "lag_max_seconds": round(self.loopwatch.lag_max, 4),
                                  "stalls": self.loopwatch.stalls}
        body["dead_letters"] = sum(dead_letters.counts.values())
        body["actors"] = actors
        return body

    def collect(self) -> Iterable[Metric]:
        """Scrape-time metrics of the tree (installed with METRICS.set_source)."""
        state = GaugeMetricFamily("trt_actor_state", "1 for the state each supervised child is in",
                                  labels=["actor", "state"])
        depth = GaugeMetricFamily("trt_mailbox_depth", "Messages waiting in an actor's mailbox", labels=["actor"])
        capacity = GaugeMetricFamily("trt_mailbox_capacity", "Capacity of an actor's mailbox", labels=["actor"])
        sent = CounterMetricFamily("trt_mailbox_sent", "Messages accepted into a mailbox", labels=["actor"])
        dropped = CounterMetricFamily("trt_mailbox_dropped", "Messages a full mailbox dropped or refused",
                                      labels=["actor"])
        handled = CounterMetricFamily("trt_mailbox_handled", "Messages an actor handled", labels=["actor"])
        for _, record in self.root.walk():
            for value in STATES:
                state.add_metric([record.name, value], 1.0 if record.state.value == value else 0.0)
            mailbox = record.spec.mailbox
            if mailbox is not None:
                depth.add_metric([record.name], mailbox.depth)
                capacity.add_metric([record.name], mailbox.capacity)
                sent.add_metric([record.name], mailbox.stats.sent)
                dropped.add_metric([record.name], mailbox.stats.dropped)
                handled.add_metric([record.name], mailbox.stats.handled)
        letters = CounterMetricFamily("trt_dead_letters", "Messages that could not be handled, by reason",
                                      labels=["actor", "reason"])
        for (actor, reason), count in sorted(dead_letters.counts.items()):
            letters.add_metric([actor, reason], count)
        verdict = GaugeMetricFamily("trt_health_status", "1 for the status /health reports now (pass, warn, fail)",
                                    labels=["status"])
        now, _ = self.status(self.actors())
        for value in ("pass", "warn", "fail"):
            verdict.add_metric([value], 1.0 if value == now else 0.0)
        db_up = GaugeMetricFamily("trt_database_up", "1 while the database answers the db actor's pings")
        db_up.add_metric([], 1.0 if self.database.state == "up" else 0.0)
        db_latency = GaugeMetricFamily("trt_database_ping_seconds", "Last database round trip")
        db_latency.add_metric([], self.database.latency or 0.0)
        yield from (state, depth, capacity, sent, dropped, handled, letters, verdict, db_up, db_latency)


def idle_leader(actors: dict[str, dict[str, Any]], grace: float) -> list[str]:
    """ACTIVE, yet the dispatcher has not consumed, or has been parked outside its lease, for
    longer than lock_keeper takes to tell it the role again (`grace`): updates would wait for ever
    behind a `pass`."""
    keeper, dispatcher = actors.get("lock_keeper", {}), actors.get("dispatcher")
    if keeper.get("role") != "ACTIVE" or not dispatcher or dispatcher.get("state") != State.RUNNING.value:
        return []
    problems = []
    idle, parked = dispatcher.get("idle_seconds"), dispatcher.get("parked_seconds")
    if idle is not None and idle > grace:
        problems.append(f"ACTIVE but the dispatcher has not consumed for {idle:.0f}s")
    if parked is not None and parked > grace:
        problems.append(f"ACTIVE but the dispatcher has waited {parked:.0f}s for a valid lease")
    return problems
