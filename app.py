"""Builds the supervisor tree of DESIGN.md from the settings: who runs, in which order, how restarted.

root (rest_for_one): db, lock_keeper, correlation_flusher, work (one_for_one: janitor,
webhook_setter in webhook mode, ...), ingress.
Mailboxes are made here once and outlive every incarnation of their actors; the chaos endpoint
finds actors by name through the same table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from actors.base import Mailbox
from actors.correlation_flusher import CorrelationFlusher
from actors.db import DbActor
from actors.ingress import Ingress
from actors.janitor import Janitor
from actors.lock_keeper import LockKeeper
from actors.webhook_setter import WebhookSetter
from bot.telegram import ALLOWED_UPDATES, make_bot
from config import Settings
from health import Observer
from loopwatch import LoopWatch
from store.database import Database
from supervisor import Backoff, ChildSpec, Strategy, Supervisor


@dataclass
class App:
    settings: Settings
    database: Database
    root: Supervisor
    observer: Observer
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)


def build(settings: Settings, database: Database, loopwatch: LoopWatch | None = None) -> App:
    boxes: dict[str, Mailbox] = {}

    def box(mailbox: Mailbox) -> Mailbox:
        boxes[mailbox.name] = mailbox
        return mailbox

    backoff = Backoff(min=settings.restart_backoff_min, max=settings.restart_backoff_max)
    db_box = box(DbActor.mailbox("db"))
    lock_box = box(LockKeeper.mailbox("lock_keeper"))
    flusher_box = box(CorrelationFlusher.mailbox("correlation_flusher"))
    janitor_box = box(Janitor.mailbox("janitor"))
    ingress_box = box(Ingress.mailbox("ingress"))
    retention = settings.inbox_retention_days * 86400

    work_children = [ChildSpec.actor(Janitor, janitor_box, database, retention)]
    role_subscribers: list[Mailbox] = []
    if settings.bot_mode == "webhook" and settings.telegram_bot_token:
        setter_box = box(WebhookSetter.mailbox("webhook_setter"))
        role_subscribers.append(setter_box)
        work_children.append(ChildSpec(
            "webhook_setter",
            lambda: WebhookSetter(setter_box, settings, database,
                                  # the request timeout outlasts the cycle deadline, so the deadline is what trips
                                  make_bot(settings.telegram_bot_token, settings.telegram_api_base,
                                           timeout=settings.webhook_cycle_deadline + 1),
                                  lock_box, ALLOWED_UPDATES, settings.webhook_cycle_deadline),
            mailbox=setter_box,
        ))
    observer_ref: list[Observer] = []

    root = Supervisor(
        "root",
        [
            ChildSpec.actor(DbActor, db_box, database, shutdown=settings.shutdown_timeout),
            ChildSpec.actor(LockKeeper, lock_box, settings, database, role_subscribers),
            ChildSpec.actor(CorrelationFlusher, flusher_box, database),
            ChildSpec("work", lambda: Supervisor("work", work_children, Strategy.ONE_FOR_ONE, intensity=5,
                                                 period=10, backoff=backoff),
                      shutdown=settings.shutdown_timeout),
            ChildSpec.actor(Ingress, ingress_box, settings, lambda: observer_ref[0].health(), boxes.get),
        ],
        Strategy.REST_FOR_ONE,
        intensity=5,
        period=30,
        backoff=backoff,
    )
    observer = Observer(settings, root, database, loopwatch)
    observer_ref.append(observer)
    return App(settings, database, root, observer, boxes)
