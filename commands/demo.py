"""`python run.py demo`: the whole tree on the embedded database, talking to a fake Telegram Bot
API and a fake KIE served on 127.0.0.1, so a newcomer without a token sees the bot work.

Nothing leaves the machine: the token, the API and upload bases and the webhook URL are the
demo's own, whatever the environment says (KIE's callbacks come back to our /kie-callback). The
fake Telegram sets its webhook to our /webhook exactly as Telegram would, and a scripted user,
who has a welcome bonus to spend, makes a whole generation: /start, an image model, a prompt,
each step the model asks (optional ones skipped), Confirm, and the picture from the fake KIE.
Every message the bot sends is logged as `demo_bot_said`, every action of the user as
`demo_user_said` / `demo_user_pressed`, the result as `demo_generation_delivered`.

A person takes part through the web chat the fake Telegram serves (fakes/webchat; its address is
printed on stdout and in the `demo_ready` line): a page that plays a Telegram user in a chat of
its own, so everything a user can do in Telegram can be tried without a token. More can be sent
with curl too (the `demo_ready` line prints the commands).

The script reads the bot's screens as a user does: it presses buttons it finds by their
callback_data prefixes (bot/keyboards.py) in what the bot sent, waits for each answer within a
bound, and gives up with a `demo_script_stopped` line rather than hang or fail the service when
a screen is not what it expects.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot import keyboards
from commands.serve import serve
from config import Settings
from fakes.kie_api import FakeKie
from fakes.telegram_api import SEND_METHODS, Call, FakeTelegram, message_update
from fakes.webchat import ChatTelegram
from store.database import Database
from telemetry import logs

log = logs.get("demo")

DEMO_TOKEN = "100000001:TRT-demo-token-not-a-real-one"
DEMO_CHAT = 1001
DEMO_ADMIN = 1000
DEMO_BONUS = 100_000  # kopecks (1,000 ₽) credited to each new user: the scripted user pays with it
DEMO_PROMPT = "A lighthouse on a cliff at sunset, watercolor"
DEMO_FAMILY = "text_to_image"  # the scripted user makes a picture
ANSWER_SECONDS = 30.0  # the bot's answer to one action
RESULT_SECONDS = 120.0  # Confirm to the result
MOST_STEPS = 12  # wizard screens answered before giving up
EDITS = ("editMessageText", "editMessageCaption", "editMessageReplyMarkup", "editMessageMedia")
MEDIA = ("sendPhoto", "sendDocument", "sendVideo", "sendAudio", "sendAnimation", "sendMediaGroup")


class ScriptStopped(Exception):
    """The scripted user cannot go on: the bot did not answer in time, or not as expected."""


def demo_settings(settings: Settings, telegram_base: str, kie_base: str) -> Settings:
    return dataclasses.replace(
        settings,
        telegram_bot_token=DEMO_TOKEN,
        bot_id=int(DEMO_TOKEN.split(":")[0]),
        telegram_api_base=telegram_base,
        kie_api_base=kie_base,
        kie_upload_base=kie_base,  # a user's photo goes to the fake's upload service, never to KIE's
        # results come from the fake on loopback over http: trusted by name, the rule itself unchanged
        download_trusted_hosts=(*settings.download_trusted_hosts, urlsplit(kie_base).netloc),
        kie_api_key="demo-kie-key-" + secrets.token_hex(4),
        kie_webhook_hmac_key=None,
        webhook_base_url=f"http://127.0.0.1:{settings.port}",
        bot_mode="webhook",
        webhook_secret=secrets.token_urlsafe(24),
        welcome_bonus=DEMO_BONUS,
        # the web chat's /demo/?chat=1000 runs the shop (/admin); the page's own user pays like anyone
        admin_ids=settings.admin_ids | {DEMO_ADMIN},
    )


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw.isdigit() else default


def _kie_seconds() -> float:
    """DEMO_KIE_SECONDS: how long the fake KIE takes per task (1 s; longer shows the progress)."""
    raw = os.environ.get("DEMO_KIE_SECONDS", "").strip()
    try:
        return min(max(float(raw), 0.0), 600.0) if raw else 1.0
    except ValueError:
        return 1.0


def _family_seconds() -> dict[str, float]:
    """DEMO_SUNO_SECONDS: how long a song takes at the fake KIE (default DEMO_KIE_SECONDS's); KIE's
    take minutes, its "text" and "first song" callbacks coming halfway and three quarters in."""
    raw = os.environ.get("DEMO_SUNO_SECONDS", "").strip()
    try:
        return {"suno": min(max(float(raw), 0.0), 600.0)} if raw else {}
    except ValueError:
        return {}


async def run(settings: Settings, database: Database, t0: float) -> int:
    telegram = ChatTelegram(first_name="TRT", username="trt_demo_bot")
    kie = FakeKie(duration=_kie_seconds(), durations=_family_seconds())
    try:
        await telegram.start("127.0.0.1", _port("DEMO_TELEGRAM_PORT", 8081))
        await kie.start("127.0.0.1", _port("DEMO_KIE_PORT", 8082))
    except OSError as exc:
        log.critical("demo_port_busy", extra={"error_text": str(exc),
                                              "hint": "set DEMO_TELEGRAM_PORT / DEMO_KIE_PORT to free ports"})
        await telegram.stop()
        await kie.stop()
        return 1
    settings = demo_settings(settings, telegram.base_url, kie.base_url)
    logs.setup(settings.log_format, settings.log_level, settings.secrets(), instance=settings.instance_id)
    log.info("demo_fakes_started", extra={"telegram": telegram.base_url, "kie": kie.base_url})
    narrator = _Narrator(telegram)
    helpers = [asyncio.create_task(narrator.run()), asyncio.create_task(_script(telegram, settings, narrator))]
    try:
        return await serve(settings, database, t0)
    finally:
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        await telegram.stop()
        await kie.stop()


async def _script(telegram: FakeTelegram, settings: Settings, narrator: _Narrator) -> None:
    """Waits for the bot to set its webhook on the fake, then plays a user making a picture."""
    try:
        await telegram.wait_for(lambda: telegram.webhook_info().get("url"), timeout=120, what="the webhook set")
    except TimeoutError:
        log.warning("demo_script_stopped", extra={"why": "the bot set no webhook within 120 s"})
        return
    base = telegram.base_url

    def curl(body: dict[str, Any]) -> str:
        return f"curl -s {base}/_fake/updates -H 'Content-Type: application/json' -d '{json.dumps(body)}'"
    page = f"{base}/demo"
    log.info("demo_ready", extra={
        "web_chat": page,
        "say": curl({"chat_id": DEMO_CHAT, "text": "/help"}),
        "press": curl({"chat_id": DEMO_CHAT, "callback_data": keyboards.family_data(DEMO_FAMILY)}),
        "balance": curl({"chat_id": DEMO_CHAT, "callback_data": keyboards.MENU_BALANCE}),
        "history": curl({"chat_id": DEMO_CHAT, "callback_data": keyboards.MENU_HISTORY}),
        "calls": f"curl -s {base}/_fake/calls",
        "health": f"curl -s http://127.0.0.1:{settings.port}/health",
    })
    print(f"TRT demo: chat with the bot in a browser at {page}", file=sys.stdout, flush=True)
    user = _User(telegram, DEMO_CHAT, narrator)
    try:
        await user.make_a_picture()
    except ScriptStopped as exc:
        log.warning("demo_script_stopped", extra={"why": str(exc)})
    except (OSError, RuntimeError, aiohttp.ClientError) as exc:  # the webhook unreachable, the fake stopping
        log.warning("demo_script_stopped", extra={"why": f"{type(exc).__name__}: {exc}"})
    except Exception as exc:  # the script's own fault: the demo's service goes on without it
        log.error("demo_script_stopped", extra={"why": f"{type(exc).__name__}: {exc}"}, exc_info=True)


class _User:
    """The scripted user: each action an update delivered to the bot's webhook, then a bounded
    wait for the bot's answer in this chat."""

    def __init__(self, telegram: FakeTelegram, chat: int, narrator: _Narrator) -> None:
        self.telegram = telegram
        self.chat = chat
        self.narrator = narrator

    async def make_a_picture(self) -> None:
        # Real Telegram numbers updates upward across a bot's life; the embedded database keeps the
        # ids an earlier demo used, so this run's start above them (seconds since the epoch).
        first = message_update(max(int(time.time()), self.telegram.next_update_id()), self.chat, "/start",
                               first_name="Demo", message_id=self.telegram.next_message_id(self.chat))
        menu = await self.say(first, "/start")
        family = _first(menu, keyboards.family_data(DEMO_FAMILY, 0)) or _first(menu, keyboards.FAMILY)
        page = await self.press(menu, _need(family, "a family in the menu", menu))
        model = _first(page, keyboards.MODEL)
        card = await self.press(page, _need(model, "a model on the family's page", page))
        screen = await self.press(card, _need(_first(card, keyboards.START), "Start on the model's card", card))
        for _ in range(MOST_STEPS):
            confirm = _step(screen, "ok")
            if confirm is not None:
                await self.confirm(screen, confirm, model or "")
                return
            choice = _chosen_option(screen) or _step(screen, "skip") or _step(screen, "done")
            if choice is not None:
                screen = await self.press(screen, choice)
            else:
                screen = await self.say(self.telegram.user_message(self.chat, DEMO_PROMPT, first_name="Demo"),
                                        DEMO_PROMPT)
        raise ScriptStopped(f"no confirmation after {MOST_STEPS} steps; the last screen: {screen.text!r}")

    async def confirm(self, screen: Call, data: str, model: str) -> None:
        started = time.monotonic()
        new = await self._act(self._press_update(screen, data), f"pressed {data}", _answered_with_again,
                              RESULT_SECONDS, "the result of the generation")
        result = [c for c in new if c.method in MEDIA]
        again = [d for c in new for d in _data(c) if d.startswith(keyboards.AGAIN)]
        if not again:
            raise ScriptStopped(f"no result after Confirm; the bot said: {new[-1].text!r}")
        self.narrator.catch_up()
        log.info("demo_generation_delivered", extra={
            "chat_id": self.chat, "model": model.removeprefix(keyboards.MODEL), "job_id": again[0].rsplit(":", 1)[1],
            "sent_as": [c.method for c in result] or ["sendMessage"], "seconds": round(time.monotonic() - started, 2),
        })

    async def say(self, update: dict[str, Any], text: str) -> Call:
        new = await self._act(update, f"said {text}", _answered_with_buttons, ANSWER_SECONDS, f"an answer to {text!r}")
        return new[-1]

    async def press(self, screen: Call, data: str) -> Call:
        new = await self._act(self._press_update(screen, data), f"pressed {data}", _answered_with_buttons,
                              ANSWER_SECONDS, f"an answer to {data!r}")
        return new[-1]

    def _press_update(self, screen: Call, data: str) -> dict[str, Any]:
        message_id = screen.result.get("message_id") if isinstance(screen.result, dict) else None
        return self.telegram.user_callback(self.chat, data, message_id=message_id, first_name="Demo")

    async def _act(self, update: dict[str, Any], said: str, done: Callable[[list[Call]], list[Call] | None],
                   timeout: float, what: str) -> list[Call]:
        """Deliver `update` to the webhook; the bot's messages since (sent, or edited in place: one
        living message per flow), once `done` accepts them."""
        before = len(self._shown())
        self.narrator.catch_up()
        if "callback_query" in update:
            log.info("demo_user_pressed", extra={"chat_id": self.chat, "data": said.removeprefix("pressed ")})
        else:
            log.info("demo_user_said", extra={"chat_id": self.chat, "text": said.removeprefix("said ")})
        status = await self.telegram.deliver(update)
        if status != 200:
            raise ScriptStopped(f"the webhook answered {status} to the update that {said}")
        try:
            return await self.telegram.wait_for(lambda: done(self._shown()[before:]), timeout=timeout, what=what)
        except TimeoutError:
            raise ScriptStopped(f"no {what} within {timeout:g} s") from None

    def _shown(self) -> list[Call]:
        """The bot's messages in this chat as it showed them: each send, and each edit in place."""
        return [call for call in self.telegram.calls(chat_id=self.chat)
                if call.ok and (call.method in SEND_METHODS or call.method in EDITS)]


def _answered_with_buttons(new: list[Call]) -> list[Call] | None:
    """The bot's messages up to the first that has buttons (a screen the user can go on from)."""
    for index, call in enumerate(new):
        if _data(call):
            return new[:index + 1]
    return None


def _answered_with_again(new: list[Call]) -> list[Call] | None:
    """The bot's messages up to the first with an Again button: the result (a status message
    edited on the way, with or without buttons, is not the end)."""
    for index, call in enumerate(new):
        if any(d.startswith(keyboards.AGAIN) for d in _data(call)):
            return new[:index + 1]
    return None


def _data(call: Call) -> list[str]:
    markup: Any = call.params.get("reply_markup") or {}
    rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
    return [str(b["callback_data"]) for row in rows for b in row if isinstance(b, dict) and "callback_data" in b]


def _first(call: Call, prefix: str) -> str | None:
    return next((d for d in _data(call) if d.startswith(prefix)), None)


def _need(data: str | None, what: str, call: Call) -> str:
    if data is None:
        raise ScriptStopped(f"no {what}; the bot said: {call.text!r} with buttons {_data(call)}")
    return data


def _step(call: Call, action: str) -> str | None:
    """A wizard button (w:<nonce>:<action>[:arg]) by its action."""
    return next((d for d in _data(call) if d.startswith(keyboards.STEP) and d.split(":")[2:3] == [action]), None)


def _chosen_option(call: Call) -> str | None:
    """A wizard step's option: the one marked as chosen (the default), else the first."""
    markup: Any = call.params.get("reply_markup") or {}
    options = [(str(b.get("text", "")), str(b["callback_data"])) for row in markup.get("inline_keyboard", [])
               for b in row if str(b.get("callback_data", "")).startswith(keyboards.STEP)
               and str(b["callback_data"]).split(":")[2:3] in (["o"], ["b"])]
    marked = [d for text, d in options if text.startswith("✓")]
    return next(iter(marked or [d for _, d in options]), None)


class _Narrator:
    """Logs every message the bot sends, with its buttons, as it arrives at the fake; the script
    catches it up before each action it logs, so the log reads in the order things happened."""

    def __init__(self, telegram: FakeTelegram) -> None:
        self.telegram = telegram
        self.seen = 0

    def catch_up(self) -> None:
        sent = self.telegram.sent_messages()
        for call in sent[self.seen:]:
            log.info("demo_bot_said", extra={"chat_id": call.chat_id, "method": call.method, "text": call.text,
                                             "buttons": _buttons(call)})
        self.seen = len(sent)

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await self.telegram.wait_for(lambda: len(self.telegram.sent_messages()) > self.seen, timeout=3600)
            self.catch_up()


def _buttons(call: Call) -> list[str]:
    markup: Any = call.params.get("reply_markup") or {}
    return [f"{b.get('text')} [{b.get('callback_data')}]"
            for row in markup.get("inline_keyboard", []) for b in row]
