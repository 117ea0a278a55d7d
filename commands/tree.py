"""Builds the supervisor tree from the settings: who runs, in which order, how restarted.

root (rest_for_one): db, lock_keeper, correlation_flusher, work (one_for_one: dispatcher,
janitor, kie_poller, broadcaster, profile_setter, webhook_setter in webhook mode or poller in
polling mode), ingress (with /webhook and /kie-callback).
Mailboxes are made here once and outlive every incarnation of their actors; the chaos endpoint
finds actors by name through the same table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from actors.backoff import Backoff
from actors.broadcaster import Broadcaster
from actors.correlation_flusher import CorrelationFlusher
from actors.db import DbActor
from actors.dispatcher import UpdateDispatcher
from actors.ingress import Ingress
from actors.janitor import Janitor
from actors.kie_poller import KiePoller
from actors.lock_keeper import LockKeeper, lease_seconds
from actors.mailbox import Mailbox, MailboxError
from actors.poller import Poller
from actors.profile_setter import ProfileSetter
from actors.webhook_setter import WebhookSetter
from bot import first_screen, texts
from bot.conversation import build_dispatcher
from bot.fsm_cache import CachedStorage
from bot.services import Services
from catalog.loader import shipped
from config import Settings
from generation.sent import Sent
from ingest.bot_api import ALLOWED_UPDATES, make_bot
from ingest.intake_loop import IntakeLoop
from ingest.kie_callbacks import KieCallbackIntake
from ingest.send_limiter import SendLimiter
from ingest.webhook_intake import WebhookIntake
from kie import KieClient
from kie.limiter import CREATE
from messages.broadcast import WakeBroadcast
from messages.jobs import WakeJobs
from messages.pipeline import Wake
from store import jobs, money_in
from store.database import Database
from store.inbox import Incoming
from supervisor import ChildSpec, Strategy, Supervisor
from telemetry import tracing
from telemetry.health import Observer
from telemetry.loopwatch import LoopWatch
from telemetry.metrics import METRICS
from telemetry.trace_buffer import TraceBuffer


@dataclass
class App:
    settings: Settings
    database: Database
    root: Supervisor
    observer: Observer
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)


def build(settings: Settings, database: Database, loopwatch: LoopWatch | None = None,
          intake_loop: IntakeLoop | None = None) -> App:
    """`intake_loop`: where /webhook is served in webhook mode (acks apart from dispatch); the
    caller owns it (starts nothing here, stops it after the tree). Without one, one loop serves all."""
    boxes: dict[str, Mailbox] = {}
    observer_ref: list[Observer] = []  # made last (it watches the root); the admin's health summary reads it

    def box(mailbox: Mailbox) -> Mailbox:
        boxes[mailbox.name] = mailbox
        return mailbox

    backoff = Backoff(min=settings.restart_backoff_min, max=settings.restart_backoff_max)
    db_box = box(DbActor.new_mailbox("db"))
    lock_box = box(LockKeeper.new_mailbox("lock_keeper"))
    flusher_box = box(CorrelationFlusher.new_mailbox("correlation_flusher"))
    trace_events = TraceBuffer()  # outlives the flusher's restarts, as a mailbox does
    tracing.install(trace_events.put)
    janitor_box = box(Janitor.new_mailbox("janitor"))
    ingress_box = box(Ingress.new_mailbox("ingress"))
    retention = settings.inbox_retention_days * 86400

    work_children = [ChildSpec.actor(Janitor, janitor_box, database, settings.bot_id, retention)]
    role_subscribers: list[Mailbox] = []
    intake: WebhookIntake | None = None
    kie_callbacks: KieCallbackIntake | None = None
    token = settings.telegram_bot_token
    if token:
        dispatcher_box = box(UpdateDispatcher.new_mailbox("dispatcher"))
        role_subscribers.append(dispatcher_box)
        jobs_box = box(KiePoller.new_mailbox("kie_poller"))
        role_subscribers.append(jobs_box)
        broadcaster_box = box(Broadcaster.new_mailbox("broadcaster"))
        role_subscribers.append(broadcaster_box)
        catalog = shipped()
        # one KIE client (and so one rate limiter) for every incarnation of the jobs actor; a Confirm
        # takes a createTask slot of the same limiter when it commits the intent with its job
        kie = KieClient(settings.kie_api_key, settings.kie_api_base, settings.kie_upload_base,
                        download_trusted_hosts=settings.download_trusted_hosts)
        services = Services(database, settings, catalog, wake_jobs=lambda: wake_jobs(jobs_box),
                            drive_job=lambda job, slot: drive_job(jobs_box, job, slot),
                            take_slot=lambda: kie.limiter.reserve(CREATE) if settings.kie_api_key else None,
                            give_back_slot=lambda slot: kie.limiter.give_back(CREATE, slot),
                            health=lambda: health_of(observer_ref),
                            wake_broadcaster=lambda: wake_broadcaster(broadcaster_box))
        # the leader's FSM in memory, written through: the dispatcher empties it whenever it starts consuming
        dp = build_dispatcher(CachedStorage(database), chaos=bool(settings.chaos_token), services=services)
        # one limiter for every incarnation of the dispatcher and the jobs actor (Telegram's limits are
        # the bot's): a 429 pause outlives a restart
        limiter = SendLimiter(settings.telegram_rate_global, settings.telegram_rate_per_chat)
        sent = Sent()  # the Confirm-made intents sent in this epoch, known to every incarnation of the jobs actor
        jobs.ledger_listeners["metrics"] = lambda kind: METRICS.ledger_flows.labels(kind).inc()
        money_in.listeners["metrics"] = _count_money_in

        def make_dispatcher() -> UpdateDispatcher:
            bot = make_bot(token, settings.telegram_api_base, timeout=settings.telegram_timeout, limiter=limiter)
            return UpdateDispatcher(dispatcher_box, settings, database, bot, dp, lock_box)

        def make_jobs() -> KiePoller:
            bot = make_bot(token, settings.telegram_api_base, timeout=settings.telegram_timeout, limiter=limiter)
            return KiePoller(jobs_box, settings, database, bot, kie, catalog, lock_box, sent=sent)

        work_children.insert(0, ChildSpec("dispatcher", make_dispatcher, mailbox=dispatcher_box,
                                          shutdown=settings.shutdown_timeout))
        work_children.insert(1, ChildSpec("kie_poller", make_jobs, mailbox=jobs_box,
                                          shutdown=settings.shutdown_timeout))

        def make_broadcaster() -> Broadcaster:
            # the bot's shared limiter: broadcasts count in Telegram's 30/s and honour a 429's pause with the rest
            bot = make_bot(token, settings.telegram_api_base, timeout=settings.telegram_timeout, limiter=limiter)
            return Broadcaster(broadcaster_box, settings, database, bot, lock_box)

        work_children.insert(2, ChildSpec("broadcaster", make_broadcaster, mailbox=broadcaster_box,
                                          shutdown=settings.shutdown_timeout))
        profile_box = box(ProfileSetter.new_mailbox("profile_setter"))
        role_subscribers.append(profile_box)
        work_children.insert(3, ChildSpec(
            "profile_setter",
            # its own bot, no send limiter (no chat's messages); the request timeout outlasts the cycle's
            lambda: ProfileSetter(profile_box, make_bot(token, settings.telegram_api_base, timeout=11.0), lock_box,
                                  lambda: first_screen.profile(settings, catalog), cycle_deadline=10.0),
            mailbox=profile_box))
        kie_callbacks = KieCallbackIntake(settings, database, lambda: wake_jobs(jobs_box))
        if settings.bot_mode == "webhook":
            intake = WebhookIntake(settings, database, lambda batch, at: received(batch, at, dispatcher_box),
                                   lambda user: texts.t(texts.lang_of(user), "updating"))
            role_subscribers.append(ingress_box)
            setter_box = box(WebhookSetter.new_mailbox("webhook_setter"))
            role_subscribers.append(setter_box)
            work_children.append(ChildSpec(
                "webhook_setter",
                lambda: WebhookSetter(setter_box, settings, database,
                                      # the request timeout outlasts the cycle deadline, so the deadline is what trips
                                      make_bot(token, settings.telegram_api_base,
                                               timeout=settings.webhook_cycle_deadline + 1),
                                      lock_box, ALLOWED_UPDATES, settings.webhook_cycle_deadline),
                mailbox=setter_box,
            ))
        else:
            poller_box = box(Poller.new_mailbox("poller"))
            role_subscribers.append(poller_box)
            work_children.append(ChildSpec.actor(Poller, poller_box, settings, database, lock_box,
                                                 lambda: wake(dispatcher_box)))
    root = Supervisor(
        "root",
        [
            ChildSpec.actor(DbActor, db_box, database, shutdown=settings.shutdown_timeout),
            # its stop may wait out the lease it granted before letting the lock go
            ChildSpec.actor(LockKeeper, lock_box, settings, database, role_subscribers,
                            shutdown=lease_seconds(settings.heartbeat_interval, settings.stale_after) + 5.0),
            ChildSpec.actor(CorrelationFlusher, flusher_box, trace_events, database),
            ChildSpec("work", lambda: Supervisor("work", work_children, Strategy.ONE_FOR_ONE, intensity=5,
                                                 period=10, backoff=backoff),
                      shutdown=settings.shutdown_timeout),
            ChildSpec.actor(Ingress, ingress_box, settings, lambda: observer_ref[0].health(), boxes.get,
                            intake=intake, kie_callbacks=kie_callbacks, intake_loop=intake_loop),
        ],
        Strategy.REST_FOR_ONE,
        intensity=5,
        period=30,
        backoff=backoff,
    )
    observer = Observer(settings, root, database, loopwatch)
    observer_ref.append(observer)
    return App(settings, database, root, observer, boxes)


async def health_of(observer_ref: list[Observer]) -> dict[str, Any]:
    """The process's /health body, for the admin's health summary (bot/services.py `health`)."""
    return observer_ref[0].health()


def _count_money_in(source: str, kopecks: int) -> None:
    METRICS.money_in.labels(source).inc()
    if kopecks > 0:
        METRICS.money_in_kopecks.labels(source).inc(kopecks)


def received(batch: Sequence[tuple[Incoming, bool]], at: float, dispatcher: Mailbox) -> None:
    """A batch the webhook committed, on the main loop: each update's "received" step, then one wake.
    The step is dated when the commit began (`at`), before any claim could see the row."""
    for row, new in batch:
        tracing.emit("received", {"source": "webhook", "kind": row.kind, "new": new},
                     correlation_id=f"u{row.update_id}", actor="ingress", at=at)
    if any(new for _, new in batch):
        wake(dispatcher)


def wake(dispatcher: Mailbox) -> None:
    """Tell the dispatcher that updates were committed; a Wake already queued is enough."""
    if dispatcher.depth < 4:
        try:
            dispatcher.tell_nowait(Wake())
        except MailboxError:
            pass


def wake_broadcaster(broadcaster: Mailbox) -> None:
    """Tell the broadcaster a broadcast was confirmed or changed; a WakeBroadcast already queued is enough."""
    if broadcaster.depth < 4:
        try:
            broadcaster.tell_nowait(WakeBroadcast())
        except MailboxError:
            pass


def drive_job(jobs_actor: Mailbox, job: jobs.Job, slot: float | None) -> None:
    """Tell the jobs actor to drive a job just confirmed at once; a full mailbox leaves it to the sweep."""
    try:
        jobs_actor.tell_nowait(WakeJobs(job.id, job, slot))
    except MailboxError:
        pass


def wake_jobs(jobs_actor: Mailbox) -> None:
    """Tell the jobs actor a job was confirmed or a callback stored; a WakeJobs already queued is enough."""
    if jobs_actor.depth < 4:
        try:
            jobs_actor.tell_nowait(WakeJobs())
        except MailboxError:
            pass
