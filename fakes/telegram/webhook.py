"""How updates reach the bot: ``setWebhook``/``deleteWebhook``/``getWebhookInfo`` and long-polling ``getUpdates``.

Why it exists: the bot switches between the two delivery modes and Telegram enforces that only
one is used — ``getUpdates`` answers 409 while a webhook is set, a newer ``getUpdates`` ends the
previous one with 409 — which the fake reproduces. Pushing an update to the webhook is
:meth:`TelegramRoutes.deliver` (it is an HTTP client call); queueing one is
:meth:`TelegramWorld.push_update`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Any

from fakes.telegram.wire import Call, TelegramError, bad
from fakes.telegram.world import PollState, TelegramWorld, WebhookState

_WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)

_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class WebhookMethods(TelegramWorld):
    """The webhook settings and the getUpdates long poll."""

    async def _set_webhook(self, call: Call) -> bool:
        url = str(call.params.get("url") or "")
        if not url:
            return await self._delete_webhook(call)
        if not re.match(r"^https?://[^/\s]+", url):
            raise bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = call.params.get("secret_token")
        if secret is not None and (not isinstance(secret, str) or not _SECRET_RE.match(secret)):
            raise bad("secret token contains unallowed characters")
        max_connections = call.params.get("max_connections", 40)
        if not isinstance(max_connections, int) or not 1 <= max_connections <= 100:
            max_connections = 40
        allowed = call.params.get("allowed_updates")
        if allowed is not None and not isinstance(allowed, list):
            raise bad("can't parse allowed updates JSON object")
        if call.params.get("drop_pending_updates"):
            self._updates.clear()
        same = self._webhook.url == url
        self._webhook = WebhookState(
            url=url,
            secret_token=secret or None,
            max_connections=max_connections,
            ip_address=call.params.get("ip_address") or None,
            token=call.token,
            last_error_date=self._webhook.last_error_date if same else None,
            last_error_message=self._webhook.last_error_message if same else None,
        )
        if allowed is not None:
            self._allowed_updates = [str(item) for item in allowed]
        if self._poll is not None:
            self._poll.terminated = _WEBHOOK_ACTIVE
        call.description = "Webhook is already set" if same else "Webhook was set"
        self._notify()
        return True

    async def _get_webhook_info(self, call: Call) -> dict[str, Any]:
        return self._webhook_info()

    async def _delete_webhook(self, call: Call) -> bool:
        had = bool(self._webhook.url)
        self._webhook = WebhookState()
        if call.params.get("drop_pending_updates"):
            self._updates.clear()
        call.description = "Webhook was deleted" if had else "Webhook is already deleted"
        self._notify()
        return True

    async def _get_updates(self, call: Call) -> list[dict[str, Any]]:
        if self._webhook.url:
            raise TelegramError(409, _WEBHOOK_ACTIVE)
        offset = call.params.get("offset")
        limit = call.params.get("limit")
        timeout = call.params.get("timeout")
        limit = limit if isinstance(limit, int) and 1 <= limit <= 100 else 100
        wait = float(timeout) if isinstance(timeout, int) and timeout > 0 else 0.0
        allowed = call.params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(item) for item in allowed]
        if isinstance(offset, int) and offset != 0:
            if offset > 0:
                self._updates = [u for u in self._updates if int(u["update_id"]) >= offset]
            else:
                self._updates = self._updates[offset:]
        if self._poll is not None:
            self._poll.terminated = (
                "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
            )
            self._notify()
        poll = PollState()
        self._poll = poll
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        try:
            while True:
                changed = self._changed
                if poll.terminated:
                    raise TelegramError(409, poll.terminated)
                ready = self._updates[:limit]
                remaining = deadline - loop.time()
                if ready or remaining <= 0 or self._stopping.is_set():
                    return [json.loads(json.dumps(update)) for update in ready]
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await changed.wait()
        finally:
            if self._poll is poll:
                self._poll = None
