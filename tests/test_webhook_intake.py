"""/webhook's durable ack when the database fails in an unusual way: still a 503 (Telegram
redelivers), never a 500 with a traceback."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import config
from fakes.telegram_api import message_update
from ingest.webhook_intake import SECRET_HEADER, WebhookIntake
from store.database import DB_ERRORS, DB_UNAVAILABLE
from tests.procs import FAKE_TOKEN

pytestmark = pytest.mark.timeout(30)


class _ShutDownMidStatement:
    """A pool whose connection is caught by a server shutdown (asyncpg's own words for it)."""

    async def fetch(self, *args: Any, **kwargs: Any) -> Any:
        raise asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress")


class _Database:
    def require(self) -> _ShutDownMidStatement:
        return _ShutDownMidStatement()


def test_every_not_now_database_error_is_a_database_error() -> None:
    """DB_UNAVAILABLE is documented as the "not now" part of DB_ERRORS, which every caller catches."""
    assert [e for e in DB_UNAVAILABLE if not issubclass(e, DB_ERRORS)] == []


async def test_an_insert_caught_by_a_server_shutdown_is_a_503_not_a_500() -> None:
    """bench.soak (a PostgreSQL restart under load) saw /webhook answer 500 with a traceback
    (http_handler_failed): asyncpg's InternalClientError was not among the database errors."""
    settings = config.load("serve", {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "WEBHOOK_SECRET": "intake-secret_0123",
                                     "DATABASE_URL": "postgresql://127.0.0.1:1/none"})
    intake = WebhookIntake(settings, _Database(), lambda batch, at: None, lambda user: "updating")  # type: ignore[arg-type]
    app = web.Application()
    app.router.add_post("/webhook", intake.handle)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.post("/webhook", data=json.dumps(message_update(1, 10, "/start")),
                                     headers={SECRET_HEADER: "intake-secret_0123",
                                              "Content-Type": "application/json"})
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
    await intake.close()
