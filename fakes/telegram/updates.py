"""Builders of the updates a user's actions produce: messages, button presses, photos, payments.

Why it exists: tests, the demo and the fake itself (:meth:`FakeTelegram.user_message` and its
siblings, the ``/_fake/updates`` shorthand) need real-looking ``Update`` dicts — users, chats,
``bot_command`` entities with UTF-16 offsets — without a human in a chat. These are plain
functions of their arguments; they know nothing of a running fake.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from fakes.telegram.wire import now, utf16_len

_COMMAND_RE = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")


def user_dict(
    user_id: int,
    first_name: str = "Test",
    language_code: str | None = "ru",
    username: str | None = None,
    last_name: str | None = None,
) -> dict[str, Any]:
    """A Telegram ``User`` of a human."""
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if last_name:
        user["last_name"] = last_name
    if username:
        user["username"] = username
    if language_code:
        user["language_code"] = language_code
    return user


def chat_dict(chat_id: int, user: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``Chat`` of ``chat_id``: a private chat with ``user``, or a supergroup for a negative id."""
    if chat_id < 0:
        return {"id": chat_id, "type": "supergroup", "title": f"Group {abs(chat_id)}"}
    chat: dict[str, Any] = {"id": chat_id, "type": "private", "first_name": (user or {}).get("first_name", "Test")}
    for key in ("last_name", "username"):
        if user and user.get(key):
            chat[key] = user[key]
    return chat


def _default_user_id(chat_id: int) -> int:
    return chat_id if chat_id > 0 else 100_001


def _user_message(
    update_id: int, chat_id: int, user: dict[str, Any], message_id: int | None, date: int | None = None
) -> dict[str, Any]:
    """The common part of a message from ``user`` (``message_id`` defaults to ``update_id``)."""
    return {
        "message_id": update_id if message_id is None else message_id,
        "from": user,
        "chat": chat_dict(chat_id, user),
        "date": date or now(),
    }


def _command_entities(text: str) -> list[dict[str, Any]]:
    return [
        {"type": "bot_command", "offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group())}
        for m in _COMMAND_RE.finditer(text)
    ]


def bot_user(bot_id: int, username: str = "trt_fake_bot", first_name: str = "TRT Fake") -> dict[str, Any]:
    """The ``User`` of a bot."""
    return {"id": bot_id, "is_bot": True, "first_name": first_name, "username": username}


def message_update(
    update_id: int,
    chat_id: int,
    text: str,
    user_id: int | None = None,
    language_code: str | None = "ru",
    first_name: str = "Test",
    *,
    username: str | None = None,
    message_id: int | None = None,
    date: int | None = None,
) -> dict[str, Any]:
    """An update with a text message from a user; "/command" words get ``bot_command`` entities.

    ``message_id`` defaults to ``update_id`` (:meth:`FakeTelegram.user_message` picks a free one).
    """
    user = user_dict(user_id or _default_user_id(chat_id), first_name, language_code, username)
    message = {**_user_message(update_id, chat_id, user, message_id, date), "text": text}
    entities = _command_entities(text)
    if entities:
        message["entities"] = entities
    return {"update_id": update_id, "message": message}


def callback_update(
    update_id: int,
    chat_id: int,
    data: str,
    message_id: int = 1,
    language_code: str | None = "ru",
    *,
    user_id: int | None = None,
    first_name: str = "Test",
    username: str | None = None,
    message: dict[str, Any] | None = None,
    message_text: str = "…",
    bot_id: int = 1,
    query_id: str | None = None,
) -> dict[str, Any]:
    """An update with a callback query (an inline button press) on message ``message_id``.

    ``message`` replaces the bot message the button belongs to (e.g. one from
    :meth:`FakeTelegram.chat_messages`); otherwise a text message from bot ``bot_id`` is built.
    """
    uid = user_id or _default_user_id(chat_id)
    user = user_dict(uid, first_name, language_code, username)
    if message is None:
        message = {
            "message_id": message_id,
            "from": bot_user(bot_id),
            "chat": chat_dict(chat_id, user),
            "date": now(),
            "text": message_text,
        }
    chat_instance = str(-(int(hashlib.sha256(f"chat:{chat_id}".encode()).hexdigest()[:15], 16)))
    return {
        "update_id": update_id,
        "callback_query": {
            "id": query_id or str(uid * 1_000_000 + update_id % 1_000_000),
            "from": user,
            "message": message,
            "chat_instance": chat_instance,
            "data": data,
        },
    }


def photo_update(
    update_id: int,
    chat_id: int,
    file_id: str,
    file_unique_id: str | None = None,
    *,
    caption: str | None = None,
    width: int = 1280,
    height: int = 960,
    file_size: int | None = None,
    user_id: int | None = None,
    language_code: str | None = "ru",
    first_name: str = "Test",
    message_id: int | None = None,
) -> dict[str, Any]:
    """An update with a photo from a user (register the bytes with :meth:`FakeTelegram.add_file`)."""
    user = user_dict(user_id or _default_user_id(chat_id), first_name, language_code)
    unique = file_unique_id or "AQAD" + hashlib.sha256(file_id.encode()).hexdigest()[:12]
    size: dict[str, Any] = {"file_id": file_id, "file_unique_id": unique, "width": width, "height": height}
    if file_size is not None:
        size["file_size"] = file_size
    message = {**_user_message(update_id, chat_id, user, message_id), "photo": [size]}
    if caption is not None:
        message["caption"] = caption
    return {"update_id": update_id, "message": message}


def pre_checkout_update(
    update_id: int,
    user_id: int,
    total_amount: int,
    invoice_payload: str,
    currency: str = "XTR",
    *,
    query_id: str | None = None,
    language_code: str | None = "ru",
    first_name: str = "Test",
) -> dict[str, Any]:
    """An update with a pre-checkout query (the bot must answer it within 10 s)."""
    return {
        "update_id": update_id,
        "pre_checkout_query": {
            "id": query_id or str(user_id * 1_000_000 + update_id % 1_000_000),
            "from": user_dict(user_id, first_name, language_code),
            "currency": currency,
            "total_amount": total_amount,
            "invoice_payload": invoice_payload,
        },
    }


def successful_payment_update(
    update_id: int,
    chat_id: int,
    total_amount: int,
    invoice_payload: str,
    currency: str = "XTR",
    *,
    telegram_payment_charge_id: str | None = None,
    user_id: int | None = None,
    language_code: str | None = "ru",
    first_name: str = "Test",
    message_id: int | None = None,
    subscription_expiration_date: int | None = None,
    is_first_recurring: bool = False,
) -> dict[str, Any]:
    """An update with the service message of a completed payment; with
    ``subscription_expiration_date`` a subscription's (``is_recurring``; the first one also
    ``is_first_recurring``), as Telegram sends the first payment and every renewal."""
    user = user_dict(user_id or _default_user_id(chat_id), first_name, language_code)
    digest = hashlib.sha256(f"{chat_id}:{update_id}".encode()).hexdigest()
    charge = telegram_payment_charge_id or f"stxFake{digest[:24]}"
    payment: dict[str, Any] = {
        "currency": currency,
        "total_amount": total_amount,
        "invoice_payload": invoice_payload,
        "telegram_payment_charge_id": charge,
        "provider_payment_charge_id": "",
    }
    if subscription_expiration_date is not None:
        payment.update(subscription_expiration_date=subscription_expiration_date, is_recurring=True)
        if is_first_recurring:
            payment["is_first_recurring"] = True
    return {
        "update_id": update_id,
        "message": {**_user_message(update_id, chat_id, user, message_id), "successful_payment": payment},
    }


def recurring_payment_update(
    update_id: int,
    chat_id: int,
    total_amount: int,
    invoice_payload: str,
    subscription_expiration_date: int,
    *,
    telegram_payment_charge_id: str | None = None,
    first: bool = False,
    language_code: str | None = "ru",
) -> dict[str, Any]:
    """A subscription's payment (the first, `first`, or a renewal): a successful_payment with
    is_recurring and the subscription_expiration_date (unix time) Telegram extends it to."""
    update = successful_payment_update(update_id, chat_id, total_amount, invoice_payload,
                                       telegram_payment_charge_id=telegram_payment_charge_id,
                                       language_code=language_code)
    paid = update["message"]["successful_payment"]
    paid["is_recurring"] = True
    paid["subscription_expiration_date"] = subscription_expiration_date
    if first:
        paid["is_first_recurring"] = True
    return update


def subscription_update(
    update_id: int,
    user_id: int,
    invoice_payload: str,
    state: str,
    *,
    language_code: str | None = "ru",
    first_name: str = "Test",
) -> dict[str, Any]:
    """Bot API 10.2's ``subscription`` update (BotSubscriptionUpdated): the user canceled or
    re-enabled a subscription (state canceled / active), or its renewal failed (failed)."""
    return {
        "update_id": update_id,
        "subscription": {
            "user": user_dict(user_id, first_name, language_code),
            "invoice_payload": invoice_payload,
            "state": state,
        },
    }
