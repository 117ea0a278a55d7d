"""`python run.py demo`: the whole tree with the fake Telegram and fake KIE, no token needed; the
scripted user makes a whole generation, and the log tells it."""

from __future__ import annotations

import signal
from typing import Any

import aiohttp
import pytest

import config
from bot import keyboards
from catalog.loader import shipped
from commands.demo import DEMO_CHAT, demo_settings
from fakes.kie.results import picture_size, requested_ratio
from tests.procs import TrtProcess, eventually, free_port

pytestmark = pytest.mark.timeout(150)
CATALOG = shipped()


def said(proc: TrtProcess) -> list[dict[str, Any]]:
    return [line for line in proc.log_lines() if line.get("event") == "demo_bot_said"]


def test_the_demo_points_every_kie_host_at_the_fake_and_gives_its_users_money() -> None:
    settings = config.load("demo", {})
    demo = demo_settings(settings, "http://127.0.0.1:1/tg", "http://127.0.0.1:2")
    assert demo.kie_api_base == demo.kie_upload_base == "http://127.0.0.1:2", "a user's photo never leaves"
    assert demo.telegram_api_base == "http://127.0.0.1:1/tg" and demo.kie_webhook_hmac_key is None
    assert demo.webhook_base_url == f"http://127.0.0.1:{settings.port}", "KIE's callbacks come back to us"
    assert demo.welcome_bonus > 0


async def test_demo_makes_a_whole_generation_and_takes_more_by_curl(database_url: str, spawn: Any) -> None:
    telegram_port = free_port()
    proc = spawn({"DATABASE_URL": database_url, "DEMO_TELEGRAM_PORT": str(telegram_port),
                  "DEMO_KIE_PORT": str(free_port())}, command="demo")
    await proc.wait_healthy()

    async def delivered() -> dict[str, Any] | None:
        return next((line for line in proc.log_lines() if line.get("event") == "demo_generation_delivered"), None)
    done = await eventually(delivered, 90, "demo_generation_delivered: the scripted user's picture", interval=0.2)
    assert not [line for line in proc.log_lines() if line.get("event") == "demo_script_stopped"]
    assert done["chat_id"] == DEMO_CHAT and "sendPhoto" in done["sent_as"] and done["seconds"] < 60
    assert done["model"] and int(done["job_id"]) > 0

    lines = proc.log_lines()
    pressed = [line["data"] for line in lines if line.get("event") == "demo_user_pressed"]
    typed = [line["text"] for line in lines if line.get("event") == "demo_user_said"]
    assert typed[0] == "/start" and len(typed) >= 2, "/start, then a prompt"
    assert pressed[0].startswith(keyboards.family_data("text_to_image")) and pressed[1].startswith(keyboards.MODEL)
    assert pressed[2].startswith(keyboards.START) and pressed[-1].startswith(keyboards.STEP)
    assert pressed[-1].endswith(":ok"), "the last press is Confirm"
    bot = said(proc)
    assert "menu:balance" in " ".join(bot[0]["buttons"]) and bot[0]["text"], "/start answered with the menu"
    methods = [line["method"] for line in bot]
    assert "sendPhoto" in methods and "sendDocument" in methods, "the picture, and its original file"
    photo = bot[methods.index("sendPhoto")]
    assert photo["chat_id"] == DEMO_CHAT and photo["text"], "the picture with its caption"
    assert any(keyboards.again_data(int(done["job_id"])) in " ".join(line["buttons"]) for line in bot)
    ready = next(line for line in lines if line.get("event") == "demo_ready")
    assert f"127.0.0.1:{telegram_port}/_fake/updates" in ready["say"]
    assert keyboards.family_data("text_to_image") in ready["press"] and "menu:image" not in str(ready)

    model = CATALOG.model(str(done["model"]))
    width, height = picture_size(requested_ratio({f.name: f.default for f in model.fields if f.default}))
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{telegram_port}/_fake/calls?method=sendPhoto") as response:
        [picture] = [call["result"]["photo"][-1] for call in await response.json() if call.get("result")]
    assert (picture["width"], picture["height"]) == (width, height), "the fake KIE drew the frame the job asked for"

    before = len(bot)
    async with aiohttp.ClientSession() as session, session.post(
            f"http://127.0.0.1:{telegram_port}/_fake/updates", json={"chat_id": DEMO_CHAT, "text": "/help"}
    ) as response:
        assert response.status == 200 and (await response.json())["webhook_status"] == 200

    async def help_reply() -> list[dict[str, Any]] | None:
        return said(proc)[before:] or None
    [answer] = await eventually(help_reply, 30, "the answer to /help sent by curl")
    assert len(answer["buttons"]) == 1 and "[menu:open]" in answer["buttons"][0], "help has a single Menu button"
    health = await proc.health()
    assert health["role"] == "ACTIVE" and health["status"] == "pass", health["problems"]

    async def captured() -> bool:
        jobs = (await proc.health())["actors"]["kie_poller"]
        return bool(jobs["counts"].get("succeeded") == 1 and not any(jobs["jobs"].values()))
    await eventually(captured, 15, "the demo's job succeeded and none left running in /health")
    assert "TRT-demo-token" not in proc.log_text()
    proc.signal(signal.SIGTERM)
    assert await proc.wait_exit(30) == 0
