"""The stock aiogram 3 webhook app the pipeline benchmarks compare with.

    .venv/bin/python -m bench.stock_app --port 8090 --api-base http://127.0.0.1:8081 --secret S

SimpleRequestHandler(handle_in_background=True) with the same routers as TRT (bot.handlers, on
aiogram's MemoryStorage): it acknowledges before anything is stored, so an update that was
acknowledged is lost if the process dies; that is the difference the benchmark puts a price on.
"""

from __future__ import annotations

import argparse

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.conversation import build_dispatcher
from tests.procs import FAKE_TOKEN


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stock_app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    bot = Bot(FAKE_TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(args.api_base), timeout=30))
    dp = build_dispatcher()
    app = web.Application()
    SimpleRequestHandler(dispatcher=dp, bot=bot, secret_token=args.secret, handle_in_background=True).register(
        app, path="/webhook")
    app.router.add_get("/health", lambda _: web.json_response({"status": "pass"}))
    setup_application(app, dp, bot=bot)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
