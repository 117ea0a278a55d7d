"""Every Bot API request is counted and timed by method and outcome, and one made for an update or
a job joins its trace with its status and duration.

Registered first on the session, so the time counts the send limiter's waits and its retries of
429s and 5xx: a trace shows where an answer spent its time, and trt_telegram_requests_total shows
Telegram refusing or failing before users say so.
"""

from __future__ import annotations

import time

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType

from ingest.send_gate import ActingRefused
from telemetry import logs, tracing
from telemetry.metrics import METRICS

OUTCOMES: tuple[tuple[type[BaseException], str], ...] = (
    (TelegramBadRequest, "bad_request"), (TelegramForbiddenError, "forbidden"), (TelegramNotFound, "not_found"),
    (TelegramConflictError, "conflict"), (TelegramRetryAfter, "retry_after"), (TelegramServerError, "server_error"),
    (TelegramNetworkError, "network"),
)


def outcome_of(exc: BaseException) -> str:
    """A low-cardinality label for how a request ended."""
    if isinstance(exc, ActingRefused):  # the send gate's: nothing was sent
        return "refused"
    return next((label for kind, label in OUTCOMES if isinstance(exc, kind)), "other")


class TraceCalls(BaseRequestMiddleware):
    async def __call__(self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
                       method: TelegramMethod[TelegramType]) -> Response[TelegramType]:
        name = method.__api_method__
        began = time.perf_counter()
        outcome, status = "ok", "ok"
        try:
            return await make_request(bot, method)
        except TelegramAPIError as exc:
            outcome, status = outcome_of(exc), f"{type(exc).__name__}: {exc.message}"[:200]
            raise
        except BaseException as exc:
            outcome, status = outcome_of(exc), type(exc).__name__
            raise
        finally:
            seconds = time.perf_counter() - began
            METRICS.telegram_requests.labels(name, outcome).inc()
            METRICS.telegram_seconds.labels(name).observe(seconds)
            if logs.correlation_id.get() is not None:
                tracing.emit(f"telegram.{name}", {"status": status, "ms": round(seconds * 1000, 1)})
