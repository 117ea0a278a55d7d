"""FakeTelegram: the fake Bot API assembled from its parts, with the table of the methods it serves.

Why it exists: the state (:mod:`fakes.telegram.world`), the HTTP routes (:mod:`fakes.telegram.routes`)
and the method handlers grouped by topic (messages, media, payments, chats, webhook) are mixins
of one object; this module puts them together, maps each Bot API method to its handler, and adds
the one public call that needs them all, :meth:`FakeTelegram.wait_for`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, overload

from fakes.telegram.chats import ChatMethods
from fakes.telegram.payments import PaymentMethods
from fakes.telegram.routes import TelegramRoutes
from fakes.telegram.webhook import WebhookMethods
from fakes.telegram.wire import Call
from fakes.telegram.world import Handler

T = TypeVar("T")


class FakeTelegram(TelegramRoutes, PaymentMethods, WebhookMethods, ChatMethods):
    """The Bot API on a real local port.

    ``tokens=None`` accepts any well-formed ``<digits>:<secret>`` token. Attributes meant to be
    read (and, for the settings, changed) by tests: ``webhook`` state through
    :meth:`webhook_info`, ``deliveries``, ``files``, ``blocked`` (chat ids whose user blocked the
    bot: sends answer 403), ``strict_chats`` (sends to chats never seen in an update answer
    400 "chat not found"), ``fetch_urls`` (send* with an http(s) URL downloads it, as Telegram does).
    """

    def _method_handlers(self) -> dict[str, Handler]:
        return {
            "getMe": self._get_me,
            "setWebhook": self._set_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "deleteWebhook": self._delete_webhook,
            "getUpdates": self._get_updates,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "editMessageCaption": self._edit_message_caption,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "answerPreCheckoutQuery": self._answer_pre_checkout_query,
            "sendPhoto": self._send_media,
            "sendVideo": self._send_media,
            "sendAudio": self._send_media,
            "sendDocument": self._send_media,
            "sendAnimation": self._send_media,
            "sendMediaGroup": self._send_media_group,
            "sendChatAction": self._send_chat_action,
            "sendInvoice": self._send_invoice,
            "refundStarPayment": self._refund_star_payment,
            "createInvoiceLink": self._create_invoice_link,
            "editUserStarSubscription": self._edit_user_star_subscription,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setMyDescription": self._set_my_description,
            "getMyDescription": self._get_my_description,
            "setMyShortDescription": self._set_my_short_description,
            "getMyShortDescription": self._get_my_short_description,
            "setChatMenuButton": self._set_chat_menu_button,
            "getChatMenuButton": self._get_chat_menu_button,
            "getFile": self._get_file,
            "copyMessage": self._copy_message,
            "forwardMessage": self._forward_message,
            "getChat": self._get_chat,
        }

    @overload
    async def wait_for(
        self,
        predicate_or_count: int,
        timeout: float = 5.0,
        what: str | None = None,
        *,
        method: str | None = None,
        chat_id: int | str | None = None,
    ) -> list[Call]: ...

    @overload
    async def wait_for(
        self,
        predicate_or_count: Callable[[], T | None],
        timeout: float = 5.0,
        what: str | None = None,
        *,
        method: str | None = None,
        chat_id: int | str | None = None,
    ) -> T: ...

    async def wait_for(
        self,
        predicate_or_count: Callable[[], T | None] | int,
        timeout: float = 5.0,
        what: str | None = None,
        *,
        method: str | None = None,
        chat_id: int | str | None = None,
    ) -> T | list[Call]:
        """Wait until ``predicate()`` is truthy (and return it), or until at least ``count`` calls
        (of ``method`` / ``chat_id``, if given) are recorded (and return them).

        Re-checked whenever the fake's state changes; raises TimeoutError describing the last calls.
        """
        if not isinstance(predicate_or_count, int):
            return await super().wait_for(predicate_or_count, timeout, what)
        count = predicate_or_count

        def enough() -> list[Call]:
            found = self.calls(method, chat_id)
            return found if len(found) >= count else []

        label = what or f"{count} call(s)" + (f" of {method}" if method else "") + (
            f" to chat {chat_id}" if chat_id is not None else ""
        )
        return await self._wait_until(enough, timeout, label)

    def _state_report(self) -> str:
        def show(call: Call) -> str:
            chat = f" chat={call.params['chat_id']}" if "chat_id" in call.params else ""
            return f"{call.method}{chat} -> {call.status}" + (f" ({call.error})" if call.error else "")

        last = "; ".join(show(call) for call in self._calls[-10:]) or "none"
        pending = sum(fault.remaining for fault in self._faults)
        return (
            f"{len(self._calls)} call(s) so far, last: {last}. Queued updates: {len(self._updates)}. "
            f"Webhook: {self._webhook.url or 'none'}. Pending faults: {pending}."
        )

    def _listening_line(self) -> dict[str, Any]:
        return {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": "info",
            "event": "fake_telegram_listening",
            **super()._listening_line(),
        }
