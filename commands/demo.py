"""`python run.py demo`: the whole tree on the embedded database, talking to a fake Telegram Bot
API and a fake KIE served on 127.0.0.1, so a newcomer without a token sees the bot work.

Nothing leaves the machine: the token, the API bases and the webhook URL are the demo's own,
whatever the environment says. The fake Telegram sets its webhook to our /webhook exactly as
Telegram would, a scripted user sends /start, and every message the bot sends is logged as
`demo_bot_said`. More can be sent with curl (the `demo_ready` line prints the commands).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
from typing import Any

from commands.serve import serve
from config import Settings
from fakes.kie_api import FakeKie
from fakes.telegram_api import Call, FakeTelegram
from store.database import Database
from telemetry import logs

log = logs.get("demo")

DEMO_TOKEN = "100000001:TRT-demo-token-not-a-real-one"
DEMO_CHAT = 1001


def demo_settings(settings: Settings, telegram_base: str, kie_base: str) -> Settings:
    return dataclasses.replace(
        settings,
        telegram_bot_token=DEMO_TOKEN,
        bot_id=int(DEMO_TOKEN.split(":")[0]),
        telegram_api_base=telegram_base,
        kie_api_base=kie_base,
        kie_api_key="demo-kie-key-" + secrets.token_hex(4),
        webhook_base_url=f"http://127.0.0.1:{settings.port}",
        bot_mode="webhook",
        webhook_secret=secrets.token_urlsafe(24),
    )


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw.isdigit() else default


async def run(settings: Settings, database: Database, t0: float) -> int:
    telegram = FakeTelegram()
    kie = FakeKie()
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
    logs.setup(settings.log_format, settings.log_level, settings.secrets())
    log.info("demo_fakes_started", extra={"telegram": telegram.base_url, "kie": kie.base_url})
    helpers = [asyncio.create_task(_narrate(telegram)), asyncio.create_task(_script(telegram, settings))]
    try:
        return await serve(settings, database, t0)
    finally:
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        await telegram.stop()
        await kie.stop()


async def _script(telegram: FakeTelegram, settings: Settings) -> None:
    """Waits for the bot to set its webhook on the fake, then plays a user sending /start."""
    await telegram.wait_for(lambda: telegram.webhook_info().get("url"), timeout=120, what="the webhook set")
    base = telegram.base_url
    log.info("demo_ready", extra={
        "say": f"curl -s {base}/_fake/updates -H 'Content-Type: application/json' "
               f"-d '{{\"chat_id\": {DEMO_CHAT}, \"text\": \"/help\"}}'",
        "press": f"curl -s {base}/_fake/updates -H 'Content-Type: application/json' "
                 f"-d '{{\"chat_id\": {DEMO_CHAT}, \"callback_data\": \"menu:image\"}}'",
        "calls": f"curl -s {base}/_fake/calls",
        "health": f"curl -s http://127.0.0.1:{settings.port}/health",
    })
    update = telegram.user_message(DEMO_CHAT, "/start", first_name="Demo")
    log.info("demo_user_said", extra={"chat_id": DEMO_CHAT, "text": "/start"})
    status = await telegram.deliver(update)
    if status != 200:
        log.warning("demo_delivery_failed", extra={"status": status})


async def _narrate(telegram: FakeTelegram) -> None:
    """Logs every message the bot sends, with its buttons, as it arrives at the fake."""
    seen = 0
    while True:
        def more(count: int = seen) -> bool:
            return len(telegram.sent_messages()) > count

        with contextlib.suppress(TimeoutError):
            await telegram.wait_for(more, timeout=3600)
        sent = telegram.sent_messages()
        for call in sent[seen:]:
            log.info("demo_bot_said", extra={"chat_id": call.chat_id, "text": call.text, "buttons": _buttons(call)})
        seen = len(sent)


def _buttons(call: Call) -> list[str]:
    markup: Any = call.params.get("reply_markup") or {}
    return [f"{b.get('text')} [{b.get('callback_data')}]"
            for row in markup.get("inline_keyboard", []) for b in row]
