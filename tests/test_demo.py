"""`python run.py demo`: the whole tree with the fake Telegram and fake KIE, no token needed."""

from __future__ import annotations

import signal
from typing import Any

import aiohttp
import pytest

from tests.procs import TrtProcess, eventually, free_port

pytestmark = pytest.mark.timeout(120)


def said(proc: TrtProcess) -> list[dict[str, Any]]:
    return [line for line in proc.log_lines() if line.get("event") == "demo_bot_said"]


async def test_demo_answers_start_with_the_menu_and_takes_more_by_curl(database_url, spawn) -> None:
    telegram_port = free_port()
    proc = spawn({"DATABASE_URL": database_url, "DEMO_TELEGRAM_PORT": str(telegram_port),
                  "DEMO_KIE_PORT": str(free_port())}, command="demo")
    await proc.wait_healthy()

    async def menu() -> list[dict[str, Any]] | None:
        return said(proc) or None
    [first] = await eventually(menu, 60, "the bot's answer to the scripted /start")
    assert "menu:balance" in " ".join(first["buttons"]) and first["text"]
    ready = next(line for line in proc.log_lines() if line.get("event") == "demo_ready")
    assert f"127.0.0.1:{telegram_port}/_fake/updates" in ready["say"]

    async with aiohttp.ClientSession() as session, session.post(
            f"http://127.0.0.1:{telegram_port}/_fake/updates", json={"chat_id": 1001, "text": "/help"}) as response:
        assert response.status == 200 and (await response.json())["webhook_status"] == 200

    async def help_reply() -> bool:
        return len(said(proc)) >= 2
    await eventually(help_reply, 30, "the answer to /help sent by curl")
    buttons = said(proc)[1]["buttons"]
    assert len(buttons) == 1 and "[menu:open]" in buttons[0], "help comes with a single Menu button"
    health = await proc.health()
    assert health["role"] == "ACTIVE" and health["status"] == "pass", health["problems"]
    assert "TRT-demo-token" not in proc.log_text()
    proc.signal(signal.SIGTERM)
    assert await proc.wait_exit(30) == 0
