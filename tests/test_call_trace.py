"""Bot API requests counted and timed by method and outcome, over HTTP against the fake Telegram,
and traced only when made for an update or a job."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramServerError

from fakes.telegram_api import FakeTelegram
from ingest.bot_api import make_bot
from telemetry import logs, tracing
from telemetry.metrics import METRICS
from telemetry.trace_buffer import TraceEvent
from tests.procs import FAKE_TOKEN

pytestmark = pytest.mark.timeout(30)


def count(method: str, outcome: str) -> float:
    return METRICS.registry.get_sample_value("trt_telegram_requests_total",
                                             {"method": method, "outcome": outcome}) or 0.0


@pytest.fixture
async def bot() -> AsyncIterator[tuple[FakeTelegram, Bot]]:
    async with FakeTelegram() as fake:
        made = make_bot(FAKE_TOKEN, fake.base_url, timeout=5)
        yield fake, made
        await made.session.close()


@pytest.fixture
def traced() -> list[TraceEvent]:
    events: list[TraceEvent] = []

    def sink(event: TraceEvent) -> bool:
        events.append(event)
        return True

    tracing.install(sink)
    yield events
    tracing.install(None)


async def test_each_request_is_counted_by_its_outcome(bot: tuple[FakeTelegram, Bot]) -> None:
    fake, made = bot
    ok, bad, forbidden, failed = (count("sendMessage", "ok"), count("sendMessage", "bad_request"),
                                  count("sendMessage", "forbidden"), count("sendMessage", "server_error"))
    await made.send_message(5001, "hello")
    fake.inject("sendMessage", status=400, description="Bad Request: chat not found")
    with pytest.raises(TelegramBadRequest):
        await made.send_message(5001, "hello")
    fake.inject("sendMessage", status=403, description="Forbidden: bot was blocked by the user")
    with pytest.raises(TelegramForbiddenError):
        await made.send_message(5001, "hello")
    fake.inject("sendMessage", status=502, description="Bad Gateway")
    with pytest.raises(TelegramServerError):
        await made.send_message(5001, "hello")
    now = (count("sendMessage", "ok") - ok, count("sendMessage", "bad_request") - bad,
           count("sendMessage", "forbidden") - forbidden, count("sendMessage", "server_error") - failed)
    assert now == (1, 1, 1, 1), "one request of each outcome"
    assert (METRICS.registry.get_sample_value("trt_telegram_seconds_count", {"method": "sendMessage"}) or 0) >= 4


async def test_a_request_joins_the_trace_of_its_update_and_none_outside_a_story(
        bot: tuple[FakeTelegram, Bot], traced: list[TraceEvent]) -> None:
    fake, made = bot
    await made.send_message(5002, "no story")
    token = logs.correlation_id.set("u900")
    try:
        await made.send_message(5002, "in a story")
        fake.inject("sendMessage", status=400, description="Bad Request: message is too long")
        with pytest.raises(TelegramBadRequest):
            await made.send_message(5002, "too long")
    finally:
        logs.correlation_id.reset(token)
    assert [(e.correlation_id, e.event) for e in traced] == [("u900", "telegram.sendMessage")] * 2
    assert traced[0].data is not None and traced[0].data["status"] == "ok" and traced[0].data["ms"] >= 0
    assert traced[1].data is not None and "message is too long" in traced[1].data["status"]
