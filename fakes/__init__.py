"""Fakes of the external services the bot talks to — the Telegram Bot API and KIE AI's jobs API.

Each is a real aiohttp server on 127.0.0.1 speaking the service's wire format, which the bot's
real clients reach over real HTTP: the end-to-end tests steer and observe them, and
``python run.py demo`` (:mod:`commands.demo`) serves them so a newcomer without a token or KIE
credits sees the whole bot work. That is why they live here and not under ``tests/``: the demo
ships them, so they are program code (typed, linted and reviewed like the rest).

* :mod:`fakes.server`: what both share — start/stop, ``wait_for`` woken on every change, the
  ``python -m`` command line;
* :mod:`fakes.telegram_api` (code in :mod:`fakes.telegram`): the fake Telegram Bot API,
  ``python -m fakes.telegram_api --port 8081``;
* :mod:`fakes.kie_api` (code in :mod:`fakes.kie`): the fake KIE API, ``python -m fakes.kie_api --port 8082``.
"""
