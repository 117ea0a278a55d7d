"""Flood control: what the dispatcher does with one user's burst of updates (a pure policy).

Why here and not at the webhook: every update is still made durable and acknowledged (Telegram
redelivers what is not, and the ack path must stay "validate and commit"); what a flood may not
do is make the bot *work* for it. A person who sends hundreds of messages or taps a button
hundreds of times a second wants one answer — to what they sent last — and every answer spent
on the rest costs the other chats: CPU, a worker, and above all Telegram's global send budget
(about 30 messages a second for the whole bot), which one chat's 300 echoes would use up.

The unit is the private chat (its id is the user's id): the bot lives in private chats, where a
chat's updates already run one at a time in order, so the chat is where a flood queues. Group
chats (negative ids) are left alone: there one member's drops would be another's loss.

The policy, decided when a worker takes the chat's next update:
- a token bucket per chat (BURST updates at once, RATE a second after that) — an album of ten
  photos or a long text Telegram split in parts arrive as one burst and pass; a backlog of a
  whole burst queued behind one update spends the bucket at once (it is a flood already);
- over the limit, an update with newer ones of the chat waiting behind it is dropped (marked
  done, no handler); the last one of the queue is never dropped, so the user is answered what
  they sent last, but it waits for its token (the chat is put aside, no worker held): if a newer
  one comes meanwhile, the waiting one was not the last after all and is dropped. So a steady
  flood gets one answer per 1/RATE seconds, each to the newest message, and not one per message;
- never dropped, whatever the rate: what carries money or state the user cannot send again
  (successful_payment, refunded_payment; a pre_checkout_query never even queues), a command
  (/start with an invitation, /cancel), and every update that is not a person's message or press;
- one notice per burst: the first drop after QUIET seconds without one says so, once;
- a button press with a newer press of the chat queued behind it is stale (the screen it was
  pressed on is replaced by the time it would run): answered (the spinner stops) and dropped.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

RATE = 2.0  # updates a second a chat may keep sending once its burst is spent
BURST = 20.0  # updates a chat may send at once (an album is 10, a split text 2-3)
QUIET = 10.0  # seconds without a drop that end a burst (the next drop sends a notice again)
KEEP = 50_000  # chats remembered at most; the idle ones (full bucket, no burst) are forgotten first
CHAT_QUEUE_MAX = 64  # a chat's updates held in memory past which the droppable ones are coalesced at once

KINDS = frozenset({"message", "edited_message", "callback_query"})  # what a person sends by hand


class Verdict(enum.Enum):
    ADMIT = "admit"  # run the handlers
    DROP = "drop"  # mark done without running them
    NOTICE = "notice"  # drop, and this is the first drop of a burst: tell the user once
    WAIT = "wait"  # the chat's last update over the limit: hold it until its token (see Flood.admit)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float  # when `tokens` was last brought up to date
    last_drop: float  # when this chat's last drop was (-inf: none)


def kept(kind: str, update: Any) -> bool:
    """What is never dropped, whatever the rate: not a person's message or press, a payment's
    service message, a command. `update` is the parsed update (anything unparsable is kept: the
    dispatcher's own path refuses it with a reason)."""
    if kind not in KINDS:
        return True
    body = update.get(kind) if isinstance(update, dict) else None
    if not isinstance(body, dict):
        return True
    if kind == "callback_query":
        return False
    if "successful_payment" in body or "refunded_payment" in body:
        return True
    text = body.get("text")
    return isinstance(text, str) and text.startswith("/")


def parse(payload: str) -> Any:
    """The stored update as an object (None when it is not JSON)."""
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):
        return None


def sender(update: Any, kind: str) -> Any:
    """The sender (a `from` dict) of a parsed update, for the notice's language."""
    body = update.get(kind) if isinstance(update, dict) else None
    return body.get("from") if isinstance(body, dict) else None


def command(update: Any, kind: str) -> str:
    """A kept update's command text ("" when it is kept for another reason): the same command
    repeated in a flood is coalesced to its last copy, which does what each copy would."""
    body = update.get(kind) if isinstance(update, dict) else None
    if not isinstance(body, dict) or "successful_payment" in body or "refunded_payment" in body:
        return ""
    text = body.get("text")
    return text if isinstance(text, str) and text.startswith("/") else ""


class Flood:
    """Token buckets per chat and the burst each is in; `now` is the caller's monotonic clock.

    Memory is bounded: at most `keep` chats are remembered, and past that the ones whose bucket
    is full again and whose burst is over (they would be made anew identical) are forgotten."""

    def __init__(self, rate: float = RATE, burst: float = BURST, quiet: float = QUIET, keep: int = KEEP) -> None:
        self.rate, self.burst, self.quiet, self.keep = rate, burst, quiet, keep
        self.buckets: dict[int, _Bucket] = {}

    def admit(self, chat: int, now: float, *, behind: int, waited: bool, is_kept: Callable[[], bool]) -> Verdict:
        """Charge `chat` one update. `behind`: the chat's updates waiting behind it (0: it is the
        last); `waited`: it was held for its token already (WAIT); `is_kept` is asked (it parses
        the update) only for an update that would not run at once.

        A backlog of a whole burst behind one update is a flood already, whatever the tokens
        left: the burst is spent at once, so the user is answered the last message now rather
        than the first BURST ones (each of which Telegram lets reach a chat at about 1/s)."""
        last = behind == 0
        bucket = self.buckets.get(chat)
        if bucket is None:
            if len(self.buckets) >= self.keep:
                self._forget(now)
            bucket = self.buckets[chat] = _Bucket(self.burst, now, float("-inf"))
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        if behind >= self.burst:
            bucket.tokens = 0.0
        superseded = waited and not last  # it waited for its token and a newer one came: that one gets it
        if bucket.tokens >= 1.0 and not superseded:
            bucket.tokens -= 1.0
            return Verdict.ADMIT
        if is_kept():
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            return Verdict.ADMIT  # over the limit and still run: the bucket stays empty (no debt)
        if last:
            return Verdict.WAIT
        return Verdict.NOTICE if self.dropped(chat, now) else Verdict.DROP

    def wait(self, chat: int, now: float) -> float:
        """Seconds until `chat` has a token again."""
        bucket = self.buckets.get(chat)
        if bucket is None:
            return 0.0
        return max(0.0, (1.0 - bucket.tokens) / self.rate - (now - bucket.at))

    def dropped(self, chat: int, now: float) -> bool:
        """A drop (here, or decided elsewhere: a queue coalesced at once) is part of the chat's
        burst; True when it is the burst's first, so the notice is owed. A chat first met by its
        flood starts with an empty bucket."""
        bucket = self.buckets.get(chat)
        if bucket is None:
            if len(self.buckets) >= self.keep:
                self._forget(now)
            bucket = self.buckets[chat] = _Bucket(0.0, now, float("-inf"))
        first = now - bucket.last_drop > self.quiet
        bucket.last_drop = now
        return first

    def _forget(self, now: float) -> None:
        idle = [chat for chat, b in self.buckets.items()
                if b.tokens + (now - b.at) * self.rate >= self.burst and now - b.last_drop > self.quiet]
        for chat in idle:
            del self.buckets[chat]
        if len(self.buckets) >= self.keep:  # every one busy (an attack from many chats): a tenth, oldest first
            for chat in list(self.buckets)[: len(self.buckets) - self.keep * 9 // 10]:
                del self.buckets[chat]
