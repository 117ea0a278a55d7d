"""Every Bot API request made for an update or a job joins its trace: method, status, duration.

Registered first on the session, so the time counts the send limiter's waits and 429 retries: a
trace shows where an answer spent its time. Requests outside any story (the webhook setter's)
leave no trace.
"""

from __future__ import annotations

import time

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramAPIError
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType

from telemetry import logs, tracing


class TraceCalls(BaseRequestMiddleware):
    async def __call__(self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
                       method: TelegramMethod[TelegramType]) -> Response[TelegramType]:
        if logs.correlation_id.get() is None:
            return await make_request(bot, method)
        began = time.perf_counter()
        status = "ok"
        try:
            return await make_request(bot, method)
        except TelegramAPIError as exc:
            status = f"{type(exc).__name__}: {exc.message}"[:200]
            raise
        except BaseException as exc:
            status = type(exc).__name__
            raise
        finally:
            tracing.emit(f"telegram.{method.__api_method__}",
                         {"status": status, "ms": round((time.perf_counter() - began) * 1000, 1)})
