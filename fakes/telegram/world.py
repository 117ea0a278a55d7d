"""What one fake bot's world holds — chats and their messages, queued updates, the webhook, calls and
faults — and the bookkeeping every method handler relies on.

Why it exists: the method handlers (messages, media, payments, chats, webhook), the HTTP routes
and the tests all read and change the same world; :class:`TelegramWorld` keeps it in one place,
with the steering and observing API tests use on it (:meth:`TelegramWorld.push_update`,
:meth:`TelegramWorld.inject`, :meth:`TelegramWorld.calls`, ...), and answers the questions every
handler asks: which chat a call targets, who the bot is, which update ids are free.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fakes.server import FakeServer
from fakes.telegram.updates import bot_user, callback_update, chat_dict, message_update
from fakes.telegram.wire import SEND_METHODS, Call, Delivery, Fault, FileRecord, TelegramError, bad, now

_TOKEN_RE = re.compile(r"^(\d+):[A-Za-z0-9_-]+$")

Handler = Callable[[Call], Awaitable[Any]]  # runs one Bot API method: the "result" it answers, or raises
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"


@dataclass
class ChatState:
    """A chat as the fake knows it: its ``Chat`` object and the messages it shows now."""

    info: dict[str, Any]
    last_message_id: int = 0
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    known: bool = False  # seen in an update (matters with strict_chats)


@dataclass
class WebhookState:
    """The webhook set by setWebhook (``url == ""``: none), and the last delivery error."""

    url: str = ""
    secret_token: str | None = None
    max_connections: int = 40
    ip_address: str | None = None
    token: str | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class PollState:
    """The getUpdates request under way; ``terminated`` is the 409 a newer request or setWebhook ends it with."""

    terminated: str | None = None


class TelegramWorld(FakeServer):
    """One bot's world — calls and faults, chats and their messages, queued updates, the webhook,
    files — with the steering and observing API tests use on it, and the lookups every method
    handler shares. The arguments and the public attributes are described on :class:`FakeTelegram`.
    """

    _user_agent: ClassVar[str] = "TelegramBot (like TwitterBot)"
    _handler_cancellation: ClassVar[bool] = True  # a client that gives up (timeout) ends its hung or long poll

    def __init__(
        self,
        tokens: Iterable[str] | None = None,
        *,
        username: str = "trt_fake_bot",
        first_name: str = "TRT Fake",
        strict_chats: bool = False,
        fetch_urls: bool = True,
    ) -> None:
        super().__init__()
        self.tokens: set[str] | None = None if tokens is None else set(tokens)
        self.username = username
        self.first_name = first_name
        self.strict_chats = strict_chats
        self.fetch_urls = fetch_urls
        self.blocked: set[int] = set()
        self.deliveries: list[Delivery] = []
        self.internal_errors: list[Exception] = []  # exceptions the fake's own handlers raised (its bugs)
        self.files: dict[str, FileRecord] = {}
        self._files_by_path: dict[str, FileRecord] = {}
        self._calls: list[Call] = []
        self._faults: list[Fault] = []
        self._chats: dict[int, ChatState] = {}
        self._updates: list[dict[str, Any]] = []
        self._last_update_id = 0
        self._allowed_updates: list[str] = []
        self._webhook = WebhookState()
        self._poll: PollState | None = None
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._descriptions: dict[str, str] = {}  # language_code ("" = everyone else) -> description
        self._short_descriptions: dict[str, str] = {}  # language_code -> short description
        self._menu_buttons: dict[int | None, dict[str, Any]] = {}
        self._answered_queries: set[str] = set()
        self._file_counter = 0
        self._media_group_counter = 0
        self._handlers: dict[str, Handler] = self._method_handlers()

    def _method_handlers(self) -> dict[str, Handler]:
        """The Bot API methods served, by canonical name (:class:`FakeTelegram` lists them)."""
        return {}

    # ------------------------------------------------------------------ steering

    def inject(
        self,
        method: str = "*",
        status: int | None = None,
        description: str | None = None,
        count: int = 1,
        delay: float = 0.0,
        retry_after: int | None = None,
        hang: bool = False,
    ) -> Fault:
        """Fault the next ``count`` calls of ``method`` ("*" = any method); faults apply in order.

        * ``status`` (default 500; 429 when ``retry_after`` is given; no error at all when only
          ``delay`` or ``hang`` is given): answer that error with ``description`` (default:
          Telegram's, e.g. "Too Many Requests: retry after N" plus ``parameters.retry_after``);
        * ``delay``: wait that long first, then answer (the error, or normally);
        * ``hang``: never answer; the request ends when the client gives up or the fake stops.
        """
        if status is None and (retry_after is not None or not (delay > 0 or hang)):
            status = 429 if retry_after is not None else 500
        if status == 429 and retry_after is None:
            retry_after = 5
        fault = Fault(
            method=method,
            status=status,
            description=description,
            remaining=count,
            delay=delay,
            retry_after=retry_after,
            hang=hang,
        )
        self._faults.append(fault)
        return fault

    def next_update_id(self) -> int:
        """A fresh update_id, above every one seen so far."""
        self._last_update_id += 1
        return self._last_update_id

    def next_message_id(self, chat_id: int) -> int:
        """Reserve the next message_id of a chat (bot and user messages share the sequence)."""
        chat = self._chat(chat_id)
        chat.last_message_id += 1
        return chat.last_message_id

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for getUpdates (``update_id`` is assigned when missing); returns it."""
        if "update_id" not in update:
            update = {"update_id": self.next_update_id(), **update}
        self._remember_update(update)
        self._updates.append(update)
        self._updates.sort(key=lambda item: int(item["update_id"]))
        self._notify()
        return update

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates queued and not yet confirmed by a getUpdates offset."""
        return list(self._updates)

    def saw(self, update: dict[str, Any]) -> None:
        """An update a test fed the bot itself (not through this fake): its chat and message are
        remembered as if delivered, so the bot can copy or forward that message as in Telegram."""
        self._remember_update(update)

    def user_message(self, chat_id: int, text: str, **kwargs: Any) -> dict[str, Any]:
        """:func:`message_update` with a fresh update_id and message_id (not queued: push or deliver it)."""
        kwargs.setdefault("message_id", self.next_message_id(chat_id))
        return message_update(self.next_update_id(), chat_id, text, **kwargs)

    def user_callback(self, chat_id: int, data: str, message_id: int | None = None, **kwargs: Any) -> dict[str, Any]:
        """:func:`callback_update` on a message the fake holds (default: the bot's latest in the chat)."""
        chat = self._chats.get(chat_id)
        stored: dict[str, Any] | None = None
        if chat is not None:
            if message_id is None:
                own = [m for m in chat.messages.values() if m.get("from", {}).get("is_bot")]
                stored = own[-1] if own else None
            else:
                stored = chat.messages.get(message_id)
        if stored is not None:
            kwargs.setdefault("message", json.loads(json.dumps(stored)))
            message_id = int(stored["message_id"])
        return callback_update(self.next_update_id(), chat_id, data, message_id or 1, **kwargs)

    def block(self, chat_id: int) -> None:
        """The user of ``chat_id`` blocked the bot: sends to it answer 403."""
        self.blocked.add(chat_id)

    def set_webhook_error(self, message: str | None, date: int | None = None) -> None:
        """What getWebhookInfo reports as last_error_message / last_error_date (None clears it)."""
        self._webhook.last_error_message = message
        self._webhook.last_error_date = None if message is None else (date or now())
        self._notify()

    def reset(self) -> None:
        """Forget recorded calls, deliveries and pending faults (chats, webhook and updates stay)."""
        self._calls.clear()
        self._faults.clear()
        self.deliveries.clear()
        self._notify()

    # ------------------------------------------------------------------ observing

    def calls(self, method: str | None = None, chat_id: int | str | None = None) -> list[Call]:
        """Recorded calls in arrival order, optionally of one method (any case) and/or one chat."""
        wanted = None if method is None else method.lower()
        return [
            call
            for call in self._calls
            if (wanted is None or call.method.lower() == wanted)
            and (chat_id is None or str(call.params.get("chat_id")) == str(chat_id))
        ]

    def sent_messages(self, chat_id: int | str | None = None) -> list[Call]:
        """Successful sendMessage and media sends (photo, video, audio, document, animation, media group)."""
        return [call for call in self.calls(chat_id=chat_id) if call.method in SEND_METHODS and call.ok]

    def chat_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """What the chat shows now: user and bot messages after edits and deletions, oldest first."""
        chat = self._chats.get(chat_id)
        return [] if chat is None else [chat.messages[key] for key in sorted(chat.messages)]

    def webhook_info(self) -> dict[str, Any]:
        """What getWebhookInfo answers now."""
        return self._webhook_info()

    def _webhook_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self._webhook.url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self._webhook.url:
            info["max_connections"] = self._webhook.max_connections
            if self._webhook.ip_address:
                info["ip_address"] = self._webhook.ip_address
            if self._allowed_updates:
                info["allowed_updates"] = list(self._allowed_updates)
        if self._webhook.last_error_message:
            info["last_error_date"] = self._webhook.last_error_date
            info["last_error_message"] = self._webhook.last_error_message
        return info

    # ------------------------------------------------------------------ bookkeeping

    def _bot_id(self, token: str) -> int | None:
        match = _TOKEN_RE.match(token)
        if match is None or (self.tokens is not None and token not in self.tokens):
            return None
        return int(match.group(1))

    def _chat(self, chat_id: int, info: dict[str, Any] | None = None) -> ChatState:
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = ChatState(info=dict(info) if info else chat_dict(chat_id))
            self._chats[chat_id] = chat
        elif info:
            chat.info.update(info)
        return chat

    def _remember_message(self, message: Any) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("chat"), dict):
            return
        chat_id = message["chat"].get("id")
        message_id = message.get("message_id")
        if not isinstance(chat_id, int) or not isinstance(message_id, int):
            return
        chat = self._chat(chat_id, message["chat"])
        chat.known = True
        if not (message.get("from") or {}).get("is_bot"):
            chat.messages[message_id] = message
        chat.last_message_id = max(chat.last_message_id, message_id)

    def _remember_update(self, update: dict[str, Any]) -> None:
        update_id = update.get("update_id")
        if isinstance(update_id, int):
            self._last_update_id = max(self._last_update_id, update_id)
        for key in ("message", "edited_message", "channel_post", "business_message"):
            self._remember_message(update.get(key))
        query = update.get("callback_query")
        if isinstance(query, dict) and isinstance(query.get("message"), dict):
            message = query["message"]
            chat_id = (message.get("chat") or {}).get("id")
            if isinstance(chat_id, int):
                chat = self._chat(chat_id, message["chat"])
                chat.known = True
                chat.last_message_id = max(chat.last_message_id, int(message.get("message_id") or 0))
        for key in ("my_chat_member", "chat_member"):
            member = update.get(key)
            if isinstance(member, dict) and isinstance(member.get("chat"), dict):
                self._chat(int(member["chat"]["id"]), member["chat"]).known = True

    def _bot(self, call: Call) -> dict[str, Any]:
        return bot_user(self._bot_id(call.token) or 0, self.username, self.first_name)

    def _target_chat(self, call: Call, name: str = "chat_id", *, writing: bool = True) -> ChatState:
        value = call.params.get(name)
        if value is None or value == "":
            raise bad(f"{name} is empty")
        chat_id: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            chat_id = value
        elif isinstance(value, str) and value.startswith("@"):
            for known_id, known in self._chats.items():
                if str(known.info.get("username", "")).lower() == value[1:].lower():
                    chat_id = known_id
                    break
        if chat_id is None:
            raise bad("chat not found")
        chat = self._chats.get(chat_id)
        if (chat is None or not chat.known) and self.strict_chats:
            raise bad("chat not found")
        if writing and chat_id in self.blocked:
            raise TelegramError(403, "Forbidden: bot was blocked by the user")
        return self._chat(chat_id)

    def _answer_once(self, key: str) -> None:
        """Mark a callback or pre-checkout query answered: Telegram refuses a second answer."""
        if key in self._answered_queries:
            raise bad(QUERY_TOO_OLD)
        self._answered_queries.add(key)

    @staticmethod
    def _int_param(call: Call, name: str, missing: str) -> int:
        value = call.params.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad(missing)
        return value
