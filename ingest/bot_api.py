"""The aiogram Bot pointed at TELEGRAM_API_BASE (Telegram, a local Bot API server, or the fake)."""

from __future__ import annotations

from typing import Any, cast

import aiohttp
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import InputFile

from ingest.call_trace import TraceCalls
from ingest.send_limiter import SendLimiter
from ingest.turns import AwayWhileCalling

# the update types the bot handles: what setWebhook / getUpdates ask Telegram for
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "pre_checkout_query", "my_chat_member",
                   "subscription"]


# pydantic keeps a parametrized generic only weakly: without a strong reference the Response[T]
# that aiogram's check_response asks for is garbage after each call and built again, schema and
# all, on the next (a tenth of the dispatcher's CPU in bench.e2e)
_RESPONSE_MODELS: dict[Any, Any] = {}


class JsonSession(AiohttpSession):
    """Sends a method's parameters as one JSON body (Telegram takes JSON as well as forms);
    multipart stays for uploads. aiogram builds a multipart form for every call, which was the
    largest part of the send path's CPU in bench.e2e."""

    async def make_request(self, bot: Bot, method: TelegramMethod[TelegramType],
                           timeout: int | None = None) -> TelegramType:
        files: dict[str, InputFile] = {}
        payload: dict[str, Any] = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if prepared is not None:
                payload[key] = prepared
        returning = method.__returning__
        if returning not in _RESPONSE_MODELS:
            # a generic parametrized at run time by the method's return type: no static type to check
            _RESPONSE_MODELS[returning] = Response[returning]  # type: ignore[valid-type]
        if files:
            return await super().make_request(bot, method, timeout)
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        limit = aiohttp.ClientTimeout(total=self.timeout if timeout is None else timeout)
        try:
            async with session.post(url, data=self.json_dumps(payload).encode(), timeout=limit,
                                    headers={"Content-Type": "application/json"}) as resp:
                raw_result = await resp.text()
        except TimeoutError as exc:  # the same errors aiogram's own session raises
            raise TelegramNetworkError(method=method, message="Request timeout error") from exc
        except aiohttp.ClientError as exc:
            raise TelegramNetworkError(method=method, message=f"{type(exc).__name__}: {exc}") from exc
        response = self.check_response(bot=bot, method=method, status_code=resp.status, content=raw_result)
        return cast(TelegramType, response.result)


def make_bot(token: str, api_base: str, timeout: float = 10.0, *, limiter: SendLimiter | None = None) -> Bot:
    """A Bot whose requests time out after `timeout` seconds; with a limiter (the dispatcher's bot)
    they are paced and wait out 429s, without one a 429 reaches the caller (webhook_setter)."""
    session = JsonSession(api=TelegramAPIServer.from_base(api_base), timeout=timeout)
    session.middleware(AwayWhileCalling())  # outermost: a dispatcher handler's turn is free while it waits
    session.middleware(TraceCalls())  # its time counts the limiter's waits
    if limiter is not None:
        session.middleware(limiter)
    return Bot(token, session=session)
