"""The aiogram Bot pointed at TELEGRAM_API_BASE (Telegram, a local Bot API server, or the fake)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from http import HTTPStatus
from typing import Any, cast

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import InlineKeyboardMarkup, InputFile
from pydantic import ValidationError

from ingest.bot_http import BotHttp, HttpError
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


def response_model(returning: Any) -> Any:
    """Response[returning], built once."""
    model = _RESPONSE_MODELS.get(returning)
    if model is None:
        # a generic parametrized at run time by the method's return type: no static type to check
        model = _RESPONSE_MODELS[returning] = Response[returning]
    return model


# The JSON form of the inline keyboards sent lately, by the object: aiogram's keyboards are frozen,
# and most are built once (bot/keyboards.py caches the menus), so walking one into JSON again on
# every send was a tenth of /start's send path. Each entry keeps its keyboard alive, so an id is
# never reused while it is here.
_MARKUPS: OrderedDict[int, tuple[InlineKeyboardMarkup, Any]] = OrderedDict()
MARKUPS_KEPT = 256


class JsonSession(AiohttpSession):
    """Sends a method's parameters as one JSON body (Telegram takes JSON as well as forms),
    through the lean client (ingest/bot_http.py); multipart stays with aiohttp for uploads.
    aiogram builds a multipart form for every call, which was the largest part of the send
    path's CPU in bench.e2e."""

    _http: BotHttp | None = None
    _http_loop: asyncio.AbstractEventLoop | None = None

    def _lean(self) -> BotHttp:
        """The lean client of the running loop (its connections belong to the loop that opened them)."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._http_loop is not loop:
            if self._http is not None and not self._http_loop_closed():
                self._http.close()
            self._http, self._http_loop = BotHttp(), loop
        return self._http

    def _http_loop_closed(self) -> bool:
        return self._http_loop is None or self._http_loop.is_closed()

    async def close(self) -> None:
        await super().close()
        if self._http is not None and not self._http_loop_closed():
            self._http.close()
        self._http = None

    async def make_request(self, bot: Bot, method: TelegramMethod[TelegramType],
                           timeout: int | None = None) -> TelegramType:
        files: dict[str, InputFile] = {}
        payload: dict[str, Any] = {}
        markup = getattr(method, "reply_markup", None)
        keyboard = markup if isinstance(markup, InlineKeyboardMarkup) else None
        dumped = method.model_dump(warnings=False, exclude={"reply_markup"} if keyboard is not None else None)
        for key, value in dumped.items():
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if prepared is not None:
                payload[key] = prepared
        if keyboard is not None:
            payload["reply_markup"] = self._keyboard(keyboard, bot)
        response_model(method.__returning__)  # for aiogram's check_response too
        if files:
            return await super().make_request(bot, method, timeout)
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        try:
            async with asyncio.timeout(self.timeout if timeout is None else timeout):
                status, raw = await self._lean().post(url, self.json_dumps(payload).encode())
        except TimeoutError as exc:  # the same errors aiogram's own session raises
            raise TelegramNetworkError(method=method, message="Request timeout error") from exc
        except HttpError as exc:
            raise TelegramNetworkError(method=method, message=f"{type(exc).__name__}: {exc}") from exc
        raw_result = raw.decode("utf-8", errors="replace")  # Telegram answers in UTF-8; a broken body fails as JSON
        response = self.check_response(bot=bot, method=method, status_code=status, content=raw_result)
        return cast(TelegramType, response.result)

    def _keyboard(self, keyboard: InlineKeyboardMarkup, bot: Bot) -> Any:
        """The keyboard's JSON form, walked once per keyboard object (an inline keyboard holds
        no file, so nothing goes to `files`)."""
        kept = _MARKUPS.get(id(keyboard))
        if kept is not None and kept[0] is keyboard:
            _MARKUPS.move_to_end(id(keyboard))
            return kept[1]
        prepared = self.prepare_value(keyboard.model_dump(warnings=False), bot=bot, files={}, _dumps_json=False)
        _MARKUPS[id(keyboard)] = (keyboard, prepared)
        if len(_MARKUPS) > MARKUPS_KEPT:
            _MARKUPS.popitem(last=False)
        return prepared

    def check_response(self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int,
                       content: str) -> Response[TelegramType]:
        """aiogram's, except that a sent message's inline keyboard, which Telegram echoes back,
        is the keyboard we sent rather than a copy validated again (most of a send's response
        validation: 97 of 123 µs for the main menu). Anything unexpected goes to aiogram's, which
        raises its errors for it."""
        markup = getattr(method, "reply_markup", None)
        if isinstance(markup, InlineKeyboardMarkup) and HTTPStatus.OK <= status_code <= HTTPStatus.IM_USED:
            try:
                data = self.json_loads(content)
            except ValueError:
                data = None
            result = data.get("result") if isinstance(data, dict) and data.get("ok") is True else None
            if isinstance(result, dict) and isinstance(result.get("reply_markup"), dict):
                result["reply_markup"] = markup
                try:
                    response: Response[TelegramType] = response_model(method.__returning__).model_validate(
                        data, context={"bot": bot})
                    return response
                except ValidationError:
                    pass
        return super().check_response(bot=bot, method=method, status_code=status_code, content=content)


def make_bot(token: str, api_base: str, timeout: float = 10.0, *, limiter: SendLimiter | None = None) -> Bot:
    """A Bot whose requests time out after `timeout` seconds; with a limiter (the dispatcher's bot)
    they are paced and wait out 429s, without one a 429 reaches the caller (webhook_setter)."""
    session = JsonSession(api=TelegramAPIServer.from_base(api_base), timeout=timeout)
    session.middleware(AwayWhileCalling())  # outermost: a dispatcher handler's turn is free while it waits
    session.middleware(TraceCalls())  # its time counts the limiter's waits
    if limiter is not None:
        session.middleware(limiter)
    return Bot(token, session=session)
