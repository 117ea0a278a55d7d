"""The fake Telegram Bot API, in parts; import it from :mod:`fakes.telegram_api`.

* :mod:`~fakes.telegram.wire`: method names, errors, and the records of calls, faults, files;
* :mod:`~fakes.telegram.updates`: builders of the updates users' actions produce;
* :mod:`~fakes.telegram.parse_mode`: the HTML ``parse_mode`` parser;
* :mod:`~fakes.telegram.world`: the state of the bot's world and the steering/observing API;
* :mod:`~fakes.telegram.routes`: HTTP routes, webhook delivery and the call pipeline;
* :mod:`~fakes.telegram.messages`, :mod:`~fakes.telegram.media`, :mod:`~fakes.telegram.payments`,
  :mod:`~fakes.telegram.chats`, :mod:`~fakes.telegram.webhook`: the method handlers, by topic;
* :mod:`~fakes.telegram.fake`: :class:`FakeTelegram`, the parts put together.
"""
