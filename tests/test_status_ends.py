"""Every status message ends as done or failed (issue 19): the wizard's real Confirm (the
conversation layer fed through aiogram's Dispatcher, tests/wizard_kit.Chat) and the jobs actor
in process (tests/test_kie_poller.py's `world`: a real PostgreSQL, the fake KIE and the fake
Telegram over HTTP), five jobs at once, of one user and of several; also when a job ends before
the wizard recorded its status message (the wizard sends "accepted, queueing" and records it
after Confirm's commit, while the actor may already have delivered).

What is checked is what the chat shows at the end: each job's status message (the one recorded
on its row, and every "accepted" message the wizard sent) reads done, and each photo is followed
by its original file replying to it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.methods import SendMessage

from bot import delivery_texts
from ingest.bot_api import make_bot
from ingest.send_limiter import SendLimiter
from messages.jobs import WakeJobs
from store import job_parts, jobs
from tests.procs import eventually
from tests.test_kie_poller import TOKEN, Make, World, world  # noqa: F401  (world: the fixture)
from tests.wizard_kit import Chat, settings_with

pytestmark = pytest.mark.timeout(120)
MODEL = "google/nano-banana"


def done_text(job: jobs.Job) -> str:
    """The start of a status message's last word for a job that succeeded (the time varies)."""
    return delivery_texts.ended("ru", "Nano Banana", 0, job.user_number, done=True).rsplit(" ", 2)[0]


class Wizard:
    """A user's chat with the real conversation layer, on the world's fake Telegram, waking the
    world's jobs actor as the dispatcher's services do."""

    def __init__(self, w: World, bot: Bot, user: int) -> None:
        settings = settings_with(max_active_jobs_per_user=10, free_daily_limit=0)
        self.chat = Chat(w.money, w.tg, bot, settings, user=user)

        def wake() -> None:
            w.box.tell_nowait(WakeJobs())
        self.chat._wake = wake  # type: ignore[method-assign]
        self.chat.dp = self.chat.dispatcher()
        self.user = user

    def wizard_button(self, match: Any) -> str:
        """The newest wizard button (w:...) whose (text, data) `match` accepts, on any message sent
        or edited in the chat: the jobs actor's photos and edits land in the chat meanwhile, so
        the chat's latest message need not be the wizard's."""
        for call in reversed(self.chat.fake.calls(chat_id=self.user)):
            if call.ok:
                found = [d for text, d in self.chat.buttons(call) if d.startswith("w:") and match(text, d)]
                if found:
                    return found[0]
        raise AssertionError("no such wizard button in the chat")

    async def fill(self, prompt: str) -> None:
        """Menu -> the model -> a prompt -> a ratio: the confirmation."""
        await self.chat.open_model(MODEL)
        await self.chat.say(prompt)
        await self.chat.press(self.wizard_button(lambda text, data: "1:1" in text))

    async def ok(self) -> None:
        await self.chat.press(self.wizard_button(lambda text, data: data.split(":")[2] == "ok"))

    async def confirm(self, prompt: str) -> None:
        await self.fill(prompt)
        await self.ok()


def accepted(w: World, chat: int) -> list[int]:
    """The message ids of the wizard's "accepted, queueing" status messages still in the chat."""
    gone = {c.params.get("message_id") for c in w.tg.calls("deleteMessage", chat) if c.ok}
    return [c.result["message_id"] for c in w.tg.calls("sendMessage", chat)
            if c.ok and "принято" in c.params.get("text", "") and c.result["message_id"] not in gone]


def shown(w: World, chat: int, message_id: int) -> str:
    """What the bot's message reads now: its last edit, else what was sent (the messages a test
    feeds the Dispatcher share the fake's message ids, so the chat's view cannot be used)."""
    text = ""
    for c in w.tg.calls(chat_id=chat):
        if not c.ok:
            continue
        sent = c.method == "sendMessage" and c.result["message_id"] == message_id
        if sent or (c.method == "editMessageText" and c.params.get("message_id") == message_id):
            text = c.params.get("text", "")
    return text


async def all_told(w: World, user: int, count: int) -> list[jobs.Job]:
    async def probe() -> list[jobs.Job] | None:
        found = await jobs.user_jobs(w.money.db, w.money.bot_id, user, 0, 100)
        return found if len(found) == count and all(j.delivered_at is not None for j in found) else None
    return await eventually(probe, 60, f"{count} jobs of {user} told", interval=0.05)


def photos_with_originals(w: World, chat: int) -> None:
    """Each photo's original file replies to that photo, and comes right after it."""
    sends = [c for c in w.tg.calls(chat_id=chat) if c.ok and c.method in ("sendPhoto", "sendDocument")]
    assert [c.method for c in sends] == ["sendPhoto", "sendDocument"] * (len(sends) // 2)
    for photo, document in zip(sends[::2], sends[1::2], strict=True):
        assert (document.params.get("reply_parameters") or {}).get("message_id") == photo.result["message_id"]


async def ends_done(w: World, user: int, count: int) -> None:
    told = await all_told(w, user, count)
    assert all(j.state == "succeeded" for j in told), [(j.id, j.state, j.failure) for j in told]
    recorded = {j.status_message_id for j in told}
    assert None not in recorded and len(recorded) == count, "each job has its own status message"
    sent = accepted(w, user)
    assert set(sent) == recorded, "every status message the wizard sent is a job's"

    expected = {j.status_message_id: done_text(j) for j in told}

    async def settled() -> bool | None:
        return all(shown(w, user, m).startswith(expected[m]) for m in sent) or None
    try:
        await eventually(settled, 20, "every status message reads done")
    except Exception:
        raise AssertionError({m: (shown(w, user, m), expected[m]) for m in sent}) from None
    photos_with_originals(w, user)


@pytest.fixture
async def wizard_bot(world: Make) -> Any:  # noqa: F811
    made: list[Bot] = []

    def make(w: World) -> Bot:
        bot = make_bot(TOKEN, w.tg.base_url, timeout=10, limiter=SendLimiter(0, 0, max_retries=2))
        made.append(bot)
        return bot
    yield make
    for bot in made:
        await bot.session.close()


async def test_five_jobs_of_one_user_each_end_their_status_message_as_done(world: Make, wizard_bot: Any) -> None:  # noqa: F811
    w = await world(kie={"duration": 0.2})
    user = Wizard(w, wizard_bot(w), 7301)
    await user.chat.top_up(100_000)
    for n in range(5):
        await user.confirm(f"a cat number {n}")
    await ends_done(w, 7301, 5)


async def test_five_users_at_once_each_end_their_status_message_as_done(world: Make, wizard_bot: Any) -> None:  # noqa: F811
    w = await world(kie={"duration": 0.2})
    users = [Wizard(w, wizard_bot(w), 7310 + n) for n in range(5)]
    for user in users:
        await user.chat.top_up(100_000)
    await asyncio.gather(*(user.confirm("a dog in a hat") for user in users))
    for user in users:
        await ends_done(w, user.user, 1)


async def test_a_job_that_ends_before_the_wizard_recorded_its_status_message_still_reads_done(
        world: Make, wizard_bot: Any) -> None:  # noqa: F811
    """The wizard's "accepted" message is slow to send (Telegram took its time): the actor
    delivers the result meanwhile, and the message, recorded after, is still given its last word."""
    w = await world(kie={"duration": 0.0})
    user = Wizard(w, wizard_bot(w), 7320)
    await user.chat.top_up(100_000)
    for n in range(5):
        await user.fill(f"a fast fox {n}")
        # the next sendMessage is the status message: it answers after the job was delivered
        w.tg.inject("sendMessage", delay=1.5, count=1)
        await user.ok()
    await ends_done(w, 7320, 5)
    for job in await jobs.user_jobs(w.money.db, w.money.bot_id, 7320, 0, 10):
        assert len([c for c in w.tg.calls("sendPhoto", 7320) if c.ok
                    and (c.params.get("caption") or "").endswith(f"{job.input['prompt']}»")]) == 1, "sent once"




async def test_a_failure_whose_apology_telegram_refused_still_ends_a_status_message_recorded_late(
        world: Make) -> None:  # noqa: F811
    """A job that failed at once (no KIE key here), its apology refused by Telegram (a 400), told
    without any part in the chat; the wizard's status message, recorded after that, still gets
    its last word (and the apology is tried again) instead of staying at "accepted"."""
    w = await world(env={"KIE_API_KEY": ""})
    w.tg.inject("sendMessage", status=400, description="Bad Request: message is too long", count=1)
    job = await w.job(7330, status=False)
    told = await w.told(job.id)
    assert told.state == "failed" and not await job_parts.parts(w.money.db, job.id)
    queued = await w.helper.send_message(7330, "⏳ accepted, queueing")
    await jobs.set_status_message(w.money.db, w.money.name, w.money.epoch, job.id, queued.message_id)
    w.box.tell_nowait(WakeJobs())

    async def last_word() -> bool | None:
        return "did not work out" in shown(w, 7330, queued.message_id) or None
    await eventually(last_word, 20, "the late status message given its last word")
    assert await w.told(job.id)
    assert await w.ledger(7330) == ["top_up", "hold", "release"]



class CutShort(BaseRequestMiddleware):
    """Cancels `victim` (the update's handler, as its deadline does) right after Telegram
    answered the first sendMessage whose text holds `words`: that message is in the chat, and
    whatever the handler meant to do after it is cut off."""

    def __init__(self, words: str) -> None:
        self.words = words
        self.victim: asyncio.Task[Any] | None = None

    async def __call__(self, make_request: Any, bot: Bot, method: Any) -> Any:
        result = await make_request(bot, method)
        if self.victim is not None and isinstance(method, SendMessage) and self.words in method.text:
            self.victim.cancel()
            self.victim = None
        return result


async def test_a_confirm_cut_short_after_its_status_message_went_out_leaves_no_status_message_behind(
        world: Make, wizard_bot: Any) -> None:  # noqa: F811
    """The update's deadline fires right after the status message went out, before it was
    recorded; the update runs again (the dispatcher's RunAgain after a committed intent). Every
    status message left in the chat must be the job's and end as done: before, the first stayed
    "accepted, queueing" for ever and a second one was sent."""
    w = await world(kie={"duration": 0.2})
    bot = wizard_bot(w)
    cut = CutShort("принято")
    bot.session.middleware(cut)
    user = Wizard(w, bot, 7340)
    await user.chat.top_up(100_000)
    await user.fill("a slow heron")
    cut.victim = asyncio.create_task(user.ok())
    with pytest.raises(asyncio.CancelledError):
        await cut.victim
    await user.ok()  # the same Confirm, run again
    await ends_done(w, 7340, 1)
