"""The demo's web chat: a page that plays a Telegram user against the fake Telegram Bot API.

Why it exists: `python run.py demo` should let a newcomer try everything a user can do in
Telegram without a token. The page only plays the user's side: what the user does becomes a
real-format update delivered to the bot's webhook by the fake, exactly as Telegram delivers it,
and what the page shows is the fake's record of the chat (the bot's messages after its edits and
deletions, its answers to button presses). Served by the fake Telegram of the demo only, never
by `serve` (the service never imports the fakes).

* :mod:`~fakes.webchat.view`: the chat as the page shows it, read from the fake's state;
* :mod:`~fakes.webchat.routes`: the page, its files and the user's actions over HTTP, and
  :class:`~fakes.webchat.routes.ChatTelegram`, the fake Telegram that serves them;
* ``page.html``, ``chat.css``, ``chat.js``: the page itself, plain files with no build step.
"""

from fakes.webchat.routes import DEFAULT_CHAT, ChatTelegram, WebChat

__all__ = ["DEFAULT_CHAT", "ChatTelegram", "WebChat"]
