"""The fake's HTTP face: Bot API requests in, webhook POSTs out, file downloads and the ``/_fake`` control endpoints.

Why it exists: every call — an HTTP request, or the method a webhook answers with — goes through
the same pipeline here: parameters read from the query string, JSON, form or multipart body and
typed back, the token authenticated, an injected fault applied, the method's handler run, and
the outcome recorded on the :class:`Call` and answered in Telegram's envelope. The handlers
themselves live in the topic modules (messages, media, payments, chats, webhook).
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import time
from typing import Any

import aiohttp
from aiohttp import web

from fakes.server import drop, take_fault
from fakes.telegram.wire import CANONICAL, Call, Delivery, TelegramError, Upload, attach_key, bad, coerce
from fakes.telegram.world import TelegramWorld

_MAX_UPLOAD = 50 * 1024 * 1024

_HANG = object()  # a handler outcome: close the connection without answering


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


class TelegramRoutes(TelegramWorld):
    """HTTP routes and the call pipeline every Bot API call goes through."""

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=_MAX_UPLOAD + 1024 * 1024)
        app.router.add_route("*", r"/bot{token:[^/]+}/{method:[^/]+}", self._api)
        app.router.add_get(r"/file/bot{token:[^/]+}/{path:.+}", self._download)
        # the same under /_as/<caller>: several clients on one fake, told apart by their base URL
        app.router.add_route("*", r"/_as/{caller:[^/]+}/bot{token:[^/]+}/{method:[^/]+}", self._api)
        app.router.add_get(r"/_as/{caller:[^/]+}/file/bot{token:[^/]+}/{path:.+}", self._download)
        app.router.add_post("/_fake/updates", self._control_update)
        app.router.add_get("/_fake/calls", self._control_calls)
        return app

    # ------------------------------------------------------------------ the Bot API

    async def _api(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        name = request.match_info["method"]
        call = Call(method=CANONICAL.get(name.lower(), name), params={}, token=token, at=time.monotonic())
        try:
            call.content_type = request.content_type if request.can_read_body else None
            call.host = request.host
            call.caller = request.match_info.get("caller")
            call.params, call.uploads = await self._read_params(request)
            call.files = self._file_sizes(call.params, call.uploads)
        except TelegramError as exc:
            self._calls.append(call)
            self._finish(call, exc.status, error=exc.description)
            return web.json_response(exc.payload(), status=exc.status)
        self._calls.append(call)
        self._notify()
        try:
            outcome = await self._execute(call, faults=True)
        except TelegramError as exc:
            self._finish(call, exc.status, error=exc.description)
            return web.json_response(exc.payload(), status=exc.status)
        if outcome is _HANG:
            return drop(request)
        body: dict[str, Any] = {"ok": True, "result": outcome}
        if call.description:
            body["description"] = call.description
        return web.json_response(body)

    async def _execute(self, call: Call, *, faults: bool) -> Any:
        """Authenticate, apply a fault, run the method; records the outcome on ``call``."""
        try:
            if self._bot_id(call.token) is None:
                raise TelegramError(401, "Unauthorized")
            handler = self._handlers.get(call.method)
            if handler is None:
                raise TelegramError(404, "Not Found")
            fault = take_fault(self._faults, call.method) if faults else None
            if fault is not None:
                if fault.delay > 0:
                    await self._pause(fault.delay)
                if fault.hang:
                    await self._stopping.wait()
                    return _HANG
                if fault.status is not None:
                    description = fault.description
                    if description is None and fault.status == 429:
                        description = f"Too Many Requests: retry after {fault.retry_after}"
                    raise TelegramError(fault.status, description, fault.retry_after)
            result = await handler(call)
        except asyncio.CancelledError:
            self._notify()  # the client went away: status stays None
            raise
        except (TelegramError, aiohttp.ClientError):
            raise
        except Exception as exc:  # a bug of the fake: answer 500 and keep it for the test to see
            self.internal_errors.append(exc)
            raise TelegramError(500, f"Internal Server Error: fake failed with {type(exc).__name__}: {exc}") from exc
        self._finish(call, 200, result=result)
        return result

    def _finish(self, call: Call, status: int, *, result: Any = None, error: str | None = None) -> None:
        call.status = status
        call.result = result
        if error is not None:
            call.error = error
        self._notify()

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
        raw: dict[str, Any] = dict(request.query)
        uploads: dict[str, Upload] = {}
        if request.content_length is not None and request.content_length > _MAX_UPLOAD:
            raise TelegramError(413, "Request Entity Too Large")
        content_type = request.content_type
        if request.method == "POST" and request.can_read_body:
            if content_type == "application/json":
                try:
                    body = json.loads(await request.read() or b"{}")
                except ValueError as exc:
                    raise bad("can't parse JSON object") from exc
                if not isinstance(body, dict):
                    raise bad("request body must be a JSON object")
                raw.update(body)
            elif content_type.startswith("multipart/"):
                total = 0
                reader = await request.multipart()
                async for part in reader:
                    if not isinstance(part, aiohttp.BodyPartReader) or not part.name:
                        continue
                    if part.filename is not None:
                        data = bytes(await part.read(decode=False))
                        total += len(data)
                        if total > _MAX_UPLOAD:
                            raise TelegramError(413, "Request Entity Too Large")
                        uploads[part.name] = Upload(
                            part=part.name,
                            filename=part.filename,
                            content_type=part.headers.get(aiohttp.hdrs.CONTENT_TYPE),
                            data=data,
                        )
                    else:
                        raw[part.name] = await part.text()
            else:
                try:
                    form = await request.post()
                except web.HTTPRequestEntityTooLarge as exc:
                    raise TelegramError(413, "Request Entity Too Large") from exc
                raw.update({key: value for key, value in form.items() if isinstance(value, str)})
        params = {key: coerce(key, value) for key, value in raw.items()}
        return params, uploads

    @staticmethod
    def _file_sizes(params: dict[str, Any], uploads: dict[str, Upload]) -> dict[str, int]:
        sizes: dict[str, int] = {}
        claimed: set[str] = set()
        for name, value in params.items():
            key = attach_key(value)
            if key in uploads:
                sizes[name] = len(uploads[key].data)
                claimed.add(key)
            if isinstance(value, list):
                for index, item in enumerate(value):
                    if not isinstance(item, dict):
                        continue
                    for sub, inner in item.items():
                        key = attach_key(inner)
                        if key in uploads:
                            label = f"{name}[{index}]" if sub == "media" else f"{name}[{index}].{sub}"
                            sizes[label] = len(uploads[key].data)
                            claimed.add(key)
        for key, upload in uploads.items():
            if key not in claimed:
                sizes[key] = len(upload.data)
        return sizes

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if self._bot_id(request.match_info["token"]) is None:
            return web.json_response(TelegramError(401).payload(), status=401)
        record = self._files_by_path.get(request.match_info["path"])
        if record is None or record.data is None:
            return web.json_response(TelegramError(404).payload(), status=404)
        content_type = record.mime_type or mimetypes.guess_type(record.file_path)[0] or "application/octet-stream"
        return web.Response(body=record.data, content_type=content_type)

    # ------------------------------------------------------------------ webhook push

    async def deliver(self, update: dict[str, Any], timeout: float = 60.0) -> int:
        """POST ``update`` to the webhook like Telegram does and return the HTTP status.

        Sends ``X-Telegram-Bot-Api-Secret-Token`` when a secret is set. A 2xx answer whose JSON body
        names a ``method`` is executed as that API call (recorded with source "webhook-reply").
        A non-2xx answer or a connection error becomes the webhook's last_error; connection errors
        are raised after being recorded.
        """
        if not self._webhook.url:
            raise RuntimeError("no webhook is set: the bot has not called setWebhook (or deleted it)")
        if self._session is None:
            raise RuntimeError("FakeTelegram is not started")
        if "update_id" not in update:
            update = {"update_id": self.next_update_id(), **update}
        self._remember_update(update)
        headers = {"Content-Type": "application/json"}
        if self._webhook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self._webhook.secret_token
        delivery = Delivery(update=update, url=self._webhook.url, at=time.monotonic())
        self.deliveries.append(delivery)
        try:
            async with self._session.post(
                self._webhook.url,
                data=json.dumps(update, ensure_ascii=False).encode(),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                delivery.body = await response.read()
                delivery.status = response.status
                reason = response.reason or ""
        except (aiohttp.ClientError, TimeoutError) as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
            refused = isinstance(exc, aiohttp.ClientConnectionError)
            self.set_webhook_error("Connection refused" if refused else "Read timeout expired")
            raise
        if not 200 <= delivery.status < 300:
            self.set_webhook_error(f"Wrong response from the webhook: {delivery.status} {reason}".strip())
        else:
            delivery.reply = await self._webhook_reply(delivery.body)
        self._notify()
        return delivery.status

    async def _webhook_reply(self, body: bytes) -> Call | None:
        try:
            payload = json.loads(body) if body.strip() else None
        except ValueError:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("method"), str):
            return None
        name = str(payload.pop("method"))
        call = Call(
            method=CANONICAL.get(name.lower(), name),
            params={},
            token=self._webhook.token or "",
            at=time.monotonic(),
            source="webhook-reply",
        )
        self._calls.append(call)
        try:
            call.params = {key: coerce(key, value) for key, value in payload.items()}
            await self._execute(call, faults=False)
        except TelegramError as exc:
            self._finish(call, exc.status, error=exc.description)
        self._notify()
        return call

    # ------------------------------------------------------------------ control endpoints

    async def _control_update(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"ok": False, "description": "JSON body expected"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"ok": False, "description": "JSON object expected"}, status=400)
        if "update_id" in body or not ({"chat_id", "text", "callback_data"} & body.keys()):
            update = body
        elif "callback_data" in body:
            update = self.user_callback(int(body["chat_id"]), str(body["callback_data"]))
        else:
            update = self.user_message(int(body["chat_id"]), str(body.get("text", "")))
        if self._webhook.url:
            try:
                status = await self.deliver(update)
            except (aiohttp.ClientError, TimeoutError) as exc:
                return web.json_response({"ok": False, "update": update, "description": str(exc)}, status=502)
            return web.json_response({"ok": True, "update": update, "webhook_status": status})
        return web.json_response({"ok": True, "update": self.push_update(update), "queued": len(self._updates)})

    async def _control_calls(self, request: web.Request) -> web.Response:
        chat = request.query.get("chat_id")
        found = self.calls(request.query.get("method") or None, chat)
        if request.query.get("count"):  # ?count=1: only how many, for pollers that watch progress
            return web.json_response({"count": len(found)})
        return web.json_response(
            [
                {
                    "method": call.method,
                    "params": _jsonable(call.params),
                    "files": call.files,
                    "status": call.status,
                    "result": _jsonable(call.result),
                    "error": call.error,
                    "source": call.source,
                    "caller": call.caller,
                    "at": call.at,  # time.monotonic() of arrival: comparable across local processes
                }
                for call in found
            ]
        )
