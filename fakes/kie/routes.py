"""The fake KIE's HTTP face: createTask, recordInfo, credit, file upload and the files it serves.

Why it exists: KIE answers in an envelope whose business status lives in the body's ``code``
(mirrored as the HTTP status, or HTTP 200 with the error in the body), and a request may be
faulted on the way in (:class:`Injection`: error envelopes, raw bodies, delays, hangs, a
connection dropped after the task was created). The middleware here records every request,
applies the faults, and the handlers validate and answer; tasks then run in :class:`KieWorld`.
"""

from __future__ import annotations

import hmac
import json
import mimetypes
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from fakes.kie.wire import (
    CREATE_PATH,
    CREDIT_PATH,
    DEFAULT_MESSAGES,
    FILES_PREFIX,
    RECORD_PATH,
    UPLOAD_PATH,
    Call,
    Injection,
)
from fakes.kie.world import KieWorld
from fakes.server import drop, take_fault

_CALL_KEY: Any = web.RequestKey("fake_kie_call", Call) if hasattr(web, "RequestKey") else "fake_kie_call"


class KieRoutes(KieWorld):
    """The routes, the recording and faulting middleware, and KIE's envelopes."""

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_post(CREATE_PATH, self._create_task)
        app.router.add_get(RECORD_PATH, self._record_info)
        app.router.add_get(CREDIT_PATH, self._credit)
        app.router.add_post(UPLOAD_PATH, self._upload)
        app.router.add_get(FILES_PREFIX + "{name:.+}", self._file)
        return app

    # ------------------------------------------------------------------ plumbing

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        call = await self._record(request)
        request[_CALL_KEY] = call
        injection = take_fault(self._injections, request.path)
        try:
            if injection is not None:
                if injection.delay > 0:
                    await self._pause(injection.delay)
                if injection.hang and not injection.drop_after_create:
                    call.injected = "hang"
                    await self._stopping.wait()
                    return drop(request)
                if injection.body is not None and not injection.after_create:
                    call.injected = "body"
                    response: web.StreamResponse = self._raw(injection)
                    call.status = response.status
                    return response
                if injection.code is not None:
                    call.injected = "code"
                    response = self._envelope(injection.code, injection.msg, http_status=injection.http_status)
                    response.headers.update(injection.headers or {})
                    call.status = response.status
                    return response
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                if request.path.startswith("/api/"):
                    response = self._envelope(exc.status, exc.reason, http_status=exc.status)
                else:
                    raise
            if injection is not None and injection.drop_after_create:
                call.injected = "drop"
                if injection.hang:
                    await self._stopping.wait()
                return drop(request)
            if injection is not None and injection.after_create and injection.body is not None:
                call.injected = "body_after_create"
                response = self._raw(injection)
            call.status = response.status
            return response
        except web.HTTPException as exc:
            call.status = exc.status
            raise
        finally:
            self._notify()

    async def _record(self, request: web.Request) -> Call:
        headers = {
            name: ("<redacted>" if name.lower() == "authorization" else value)
            for name, value in request.headers.items()
        }
        body: Any = None
        if request.can_read_body and not request.content_type.startswith("multipart/"):
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
        call = Call(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            json=body,
            headers=headers,
            at=time.time(),
        )
        self._calls.append(call)
        return call

    def _envelope(
        self, code: int, msg: str | None = None, data: Any = None, *, http_status: int | None = None
    ) -> web.Response:
        body = {"code": code, self.msg_field: msg or DEFAULT_MESSAGES.get(code, "error"), "data": data}
        if http_status is None:
            http_status = code if code != 200 and self.mirror_http_status and 100 <= code <= 599 else 200
        return web.json_response(body, status=http_status)

    @staticmethod
    def _raw(injection: Injection) -> web.Response:
        """An injected raw answer (a CDN's HTML page), not KIE's envelope."""
        body = injection.body.encode() if isinstance(injection.body, str) else (injection.body or b"")
        return web.Response(body=body, status=injection.http_status or 502, content_type=injection.content_type,
                            headers=injection.headers)

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        return self.api_key is None or hmac.compare_digest(token.encode(), self.api_key.encode())

    def _unauthorized(self) -> web.Response:
        return self._envelope(401, http_status=401)

    # ------------------------------------------------------------------ handlers

    async def _create_task(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        body = request[_CALL_KEY].json
        if not isinstance(body, dict):
            return self._envelope(422, "Request body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model.strip():
            return self._envelope(422, "model is required")
        if "*" not in self.models and model not in self.models:
            return self._envelope(422, f"The model name you specified ({model}) is not supported")
        task_input = body.get("input")
        if not isinstance(task_input, dict):
            return self._envelope(422, "input is required and must be an object")
        callback_url = body.get("callBackUrl") or None
        if callback_url is not None and not (
            isinstance(callback_url, str) and callback_url.startswith(("http://", "https://"))
        ):
            return self._envelope(422, "callBackUrl must be an http(s) URL")
        price = self.prices.get(model, self.default_price)
        if self.credits < price:
            return self._envelope(402)
        self.credits -= price
        task = self._new_task(model, task_input, callback_url, json.dumps(body, ensure_ascii=False), price)
        return self._envelope(200, "success", {"taskId": task.task_id})

    async def _record_info(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        task_id = request.query.get("taskId", "").strip()
        if not task_id:
            return self._envelope(422, "taskId is required")
        task = self.tasks.get(task_id)
        if task is None or task.family != "jobs":  # a dedicated family's task is not the jobs API's
            return self._envelope(404, f"Task not found: {task_id}")
        return self._envelope(200, "success", task.record())

    async def _credit(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        return self._envelope(200, "success", self.credits)

    async def _upload(self, request: web.Request) -> web.Response:
        def answer(code: int, msg: str, data: Any = None) -> web.Response:
            body = {"success": code == 200, "code": code, "msg": msg, "data": data}
            return web.json_response(body, status=code if self.mirror_http_status else 200)

        if not self._authorized(request):
            return answer(401, DEFAULT_MESSAGES[401])
        if not request.content_type.startswith("multipart/"):
            return answer(400, "multipart/form-data expected")
        fields: dict[str, str] = {}
        data: bytes | None = None
        part_name: str | None = None
        part_type: str | None = None
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, aiohttp.BodyPartReader):
                continue
            if part.name == "file":
                data = bytes(await part.read(decode=False))
                part_name = part.filename
                part_type = part.headers.get(aiohttp.hdrs.CONTENT_TYPE)
            elif part.name:
                fields[part.name] = await part.text()
        call: Call = request[_CALL_KEY]
        call.form = {**fields, "file": "<missing>" if data is None else f"<{len(data)} bytes {part_name or ''}>"}
        if data is None:
            return answer(400, "file is required")
        file_name = _safe_name(fields.get("fileName") or part_name or "upload.bin")
        upload_path = "/".join(_safe_name(segment) for segment in fields.get("uploadPath", "").split("/") if segment)
        content_type = (
            part_type
            if part_type and part_type != "application/octet-stream"
            else mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        )
        stored = "/".join(filter(None, ("uploads", uuid.uuid4().hex[:12], upload_path, file_name)))
        url = self.add_file(stored, data, content_type)
        return answer(
            200,
            "File uploaded successfully",
            {
                "fileName": file_name,
                "filePath": "/".join(filter(None, (upload_path, file_name))),
                "downloadUrl": url,
                "fileUrl": url,
                "fileSize": len(data),
                "mimeType": content_type,
                "uploadedAt": datetime.now(UTC).isoformat(),
            },
        )

    async def _file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name in self.redirects:
            raise web.HTTPFound(self.redirects[name])
        fault = self.file_faults.get(name)
        if fault is not None and (fault[1] is None or time.time() < fault[1]):
            return web.Response(status=fault[0], text=f"fault {fault[0]}")
        stored = self.files.get(name)
        if stored is None:
            raise web.HTTPNotFound(text="file not found")
        data, content_type = stored
        return web.Response(body=data, content_type=content_type)


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(name.replace("\\", "/"))).strip("._")
    return cleaned or "file"
