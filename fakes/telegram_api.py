"""A fake of the Telegram Bot API, served by a real aiohttp server on 127.0.0.1.

Why it exists: the end-to-end tests and the demo mode must drive the bot's real aiogram client
over real HTTP — the way it builds requests (form data, multipart uploads, JSON-typed fields sent
as JSON *strings*), the error envelopes it turns into exceptions (401, 400, 409, 429 with
``retry_after``, 5xx), long polling, webhooks with the secret header — without a bot token, the
network or a human in a chat. Point the bot at it with ``TELEGRAM_API_BASE=<base_url>``, exactly
like a local Bot API server.

Wire format, as Telegram speaks it:

* ``POST|GET /bot<token>/<method>`` (method names are case-insensitive); parameters come from the
  query string, a JSON body, ``application/x-www-form-urlencoded`` or ``multipart/form-data``;
  files are multipart parts, referenced as ``attach://<part>`` or sent as the parameter itself;
* answers ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": N, "description": ...}``
  (plus ``"parameters": {"retry_after": N}`` for 429);
* ``GET /file/bot<token>/<file_path>`` serves files the fake knows (uploads, :meth:`add_file`);
* both also under a ``/_as/<caller>`` prefix (a base URL of ``<fake>/_as/<caller>``), recorded as
  the call's ``caller``: several bot processes on one fake are told apart by what they were given.

One fake is one bot's world (one webhook, one update queue, the chats and their messages);
``tokens`` only decide which tokens authenticate (the bot id is the token's digits). Tests steer
it with :meth:`FakeTelegram.push_update` (for getUpdates), :meth:`FakeTelegram.deliver` (to the
webhook), :meth:`FakeTelegram.inject` (errors, delays, hangs) and observe it through
:meth:`FakeTelegram.calls`, :meth:`FakeTelegram.sent_messages`, :meth:`FakeTelegram.chat_messages`
and :meth:`FakeTelegram.wait_for`, which wakes on every change instead of sleeping blindly.

Some of Telegram's checks that catch real bot bugs are reproduced: HTML ``parse_mode`` is parsed
(unsupported or unbalanced tags are a 400, entities come back with UTF-16 offsets), texts and
captions have their length limits, inline buttons their 64-byte ``callback_data``, edits answer
"message is not modified", a callback or pre-checkout query can be answered only once.

Standalone: ``python -m fakes.telegram_api --port 8081`` prints one JSON log line with the base
URL and serves until SIGINT or SIGTERM; ``POST /_fake/updates`` (an update, or the shorthand
``{"chat_id": 1, "text": "/start"}`` or ``{"chat_id": 1, "callback_data": "x"}``) queues it, or
delivers it when a webhook is set, and ``GET /_fake/calls`` lists what the bot called
(``?method=``, ``?chat_id=`` filter; ``?count=1`` answers only ``{"count": N}``).

The code lives in the package :mod:`fakes.telegram` (state, routes, method handlers by topic);
this module is its public entry: the names tests and the demo import, and the command line.
"""

from __future__ import annotations

from fakes.server import cli_parser, run_until_signal
from fakes.telegram.fake import FakeTelegram
from fakes.telegram.parse_mode import parse_html
from fakes.telegram.updates import (
    callback_update,
    message_update,
    photo_update,
    pre_checkout_update,
    successful_payment_update,
    user_dict,
)
from fakes.telegram.wire import (
    MEDIA_METHODS,
    METHODS,
    SEND_METHODS,
    Call,
    Delivery,
    Fault,
    FileRecord,
    TelegramError,
    Upload,
)
from fakes.telegram.world import Handler

__all__ = [
    "MEDIA_METHODS",
    "METHODS",
    "SEND_METHODS",
    "Call",
    "Delivery",
    "FakeTelegram",
    "Fault",
    "FileRecord",
    "Handler",
    "TelegramError",
    "Upload",
    "callback_update",
    "main",
    "message_update",
    "parse_html",
    "photo_update",
    "pre_checkout_update",
    "successful_payment_update",
    "user_dict",
]


def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("python -m fakes.telegram_api", "Serve a fake Telegram Bot API.")
    parser.add_argument(
        "--token", action="append", help="accepted bot token (repeatable); default: any well-formed token"
    )
    parser.add_argument("--no-fetch-urls", action="store_true", help="do not download URLs sent as media")
    args = parser.parse_args(argv)
    run_until_signal(
        lambda: FakeTelegram(tokens=args.token or None, fetch_urls=not args.no_fetch_urls), args.host, args.port
    )


if __name__ == "__main__":
    main()
