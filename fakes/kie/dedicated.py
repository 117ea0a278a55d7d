"""The fake KIE's dedicated families over HTTP: Veo, Suno (and its lyrics), Runway, Aleph, 4o Image, Flux Kontext.

Why it exists: the bot's adapters for those families must be driven end to end without a key, so
the fake serves each family's create and status paths (:mod:`fakes.kie.families` holds the wire
shapes) with the jobs routes' envelope, key check, recording and faults, and runs each task as a
jobs task runs — the same :class:`~fakes.kie.wire.Plan` (outcome, duration, hold, file faults,
the family's own failure word), the same signed and duplicated callbacks — plus what only these
families do: Suno's three callback stages spaced over the task's time (``stage_marks``), two
songs with their covers per Suno task, Veo's 1080p answer that is "processing" for
``hd_seconds`` after the original succeeded, Veo's and Runway's extends and 4K, and 4o's
download-url.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from fakes.kie import families, results
from fakes.kie.families import CREATE_ROUTES, GPT4O_DOWNLOAD_PATH, RECORD_ROUTES, VEO_HD_PATH, FamilyTask
from fakes.kie.routes import _CALL_KEY, KieRoutes
from fakes.kie.wire import FakeTask, Outcome, ms

Handler = Callable[[web.Request], Awaitable[web.Response]]


class DedicatedRoutes(KieRoutes):
    """The dedicated families' routes and task simulation, beside the jobs API's."""

    def _build_app(self) -> web.Application:
        app = super()._build_app()
        for path, (family, operation) in CREATE_ROUTES.items():
            app.router.add_post(path, self._creator(family, operation))
        for path, family in RECORD_ROUTES.items():
            app.router.add_get(path, self._reporter(family))
        app.router.add_get(VEO_HD_PATH, self._veo_hd)
        app.router.add_post(GPT4O_DOWNLOAD_PATH, self._gpt4o_download_url)
        return app

    # ------------------------------------------------------------------ observing

    def tasks_of(self, family: str) -> list[FamilyTask]:
        """The tasks a family's create path made, oldest first."""
        return [task for task in self.tasks.values() if isinstance(task, FamilyTask) and task.family == family]

    def song(self, audio_id: str) -> tuple[FamilyTask, dict[str, Any]] | None:
        """The Suno task and song an audioId names."""
        for task in self.tasks_of("suno"):
            for item in task.items:
                if item["id"] == audio_id:
                    return task, item
        return None

    # ------------------------------------------------------------------ handlers

    def _creator(self, family: str, operation: str) -> Handler:
        async def create(request: web.Request) -> web.Response:
            return await self._create(request, family, operation)
        return create

    def _reporter(self, family: str) -> Handler:
        async def report(request: web.Request) -> web.Response:
            if not self._authorized(request):
                return self._unauthorized()
            task_id = request.query.get("taskId", "").strip()
            if not task_id:
                return self._envelope(422, "taskId is required")
            task = self.tasks.get(task_id)
            if not isinstance(task, FamilyTask) or task.family != family:
                return self._envelope(404, f"Task not found: {task_id}")
            return self._envelope(200, "success", families.record(task))
        return report

    async def _create(self, request: web.Request, family: str, operation: str) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        body = request[_CALL_KEY].json
        if not isinstance(body, dict):
            return self._envelope(422, "Request body must be a JSON object")
        callback_url = body.get("callBackUrl") or None
        if callback_url is not None and not (
            isinstance(callback_url, str) and callback_url.startswith(("http://", "https://"))
        ):
            return self._envelope(422, "callBackUrl must be an http(s) URL")
        problem = families.check_body(family, operation, body) or self._parent_problem(family, operation, body)
        if problem is not None:
            return self._envelope(*problem)
        keys = families.plan_keys(family, operation, body)
        price = next((self.prices[key] for key in keys if key in self.prices), self.default_price)
        if self.credits < price:
            return self._envelope(402)
        self.credits -= price
        task = self._new_family_task(family, operation, keys, body, callback_url, price)
        data: dict[str, Any] = {"taskId": task.task_id}
        if operation == "4k":  # answered at once; the URLs stay null until the task is done
            data.update(resultUrls=None, imageUrls=None)
        return self._envelope(200, "success", data)

    def _parent_problem(self, family: str, operation: str, body: dict[str, Any]) -> tuple[int, str] | None:
        """An extend or 4K acts on a finished task of the same family; a Suno extend on a known song."""
        if family == "suno" and operation == "extend":
            return None if self.song(body["audioId"]) else (422, f"audioId not found: {body['audioId']}")
        if operation not in ("extend", "4k"):
            return None
        parent = self.tasks.get(body["taskId"])
        if not isinstance(parent, FamilyTask) or parent.family != family or parent.operation == "4k":
            return 422, "record is empty"
        if parent.state != "success":
            return 422, "record status is not success"
        if operation == "4k" and body.get("index", 0) >= len(parent.items):
            return 422, "index out of range"
        return None

    async def _veo_hd(self, request: web.Request) -> web.Response:
        """GET get-1080p-video: "processing" (code 400) until ``hd_seconds`` after the original
        succeeded, then ``{"resultUrl"}``; 422 for a task that is unknown or did not succeed."""
        if not self._authorized(request):
            return self._unauthorized()
        task = self.tasks.get(request.query.get("taskId", "").strip())
        raw_index = request.query.get("index", "0").strip() or "0"
        if not raw_index.isdigit():
            return self._envelope(422, "index must be a non-negative integer")
        index = int(raw_index)
        if not isinstance(task, FamilyTask) or task.family != "veo" or task.operation == "4k":
            return self._envelope(422, "record is empty")
        if task.state != "success" or task.complete_time is None:
            return self._envelope(422, "record status is not success")
        if index >= len(task.items):
            return self._envelope(422, "index out of range")
        delay = self.duration if self.hd_seconds is None else self.hd_seconds
        if time.time() < task.complete_time / 1000 + delay:
            return self._envelope(400, families.HD_PROCESSING)
        name = f"results/{task.task_id}_1080p_{index}.mp4"
        if name not in self.files:
            self.add_file(name, results.clip(task.input), "video/mp4")
        return self._envelope(200, "success", {"resultUrl": self._file_url(name)})

    async def _gpt4o_download_url(self, request: web.Request) -> web.Response:
        """POST download-url {taskId, url}: a fresh URL for one of the task's images (KIE's lasts 20 min)."""
        if not self._authorized(request):
            return self._unauthorized()
        body = request[_CALL_KEY].json
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            return self._envelope(422, "taskId and url are required")
        task = self.tasks.get(str(body.get("taskId") or ""))
        if not isinstance(task, FamilyTask) or task.family != "gpt4o":
            return self._envelope(422, "record is empty")
        stored = self.files.get(unquote(body["url"].removeprefix(self._file_url(""))))
        if body["url"] not in task.urls or stored is None:
            return self._envelope(422, "url is not a result of this task")
        data, content_type = stored
        signed = f"signed/{secrets.token_hex(8)}/{body['url'].rsplit('/', 1)[-1]}"
        return self._envelope(200, "success", self.add_file(signed, data, content_type))

    # ------------------------------------------------------------------ task lifecycle

    def _family_task_id(self, family: str) -> str:
        if family == "veo":
            return f"veo_task_{uuid.uuid4().hex[:16]}"
        if family in ("runway", "aleph"):
            return str(uuid.uuid4())
        return uuid.uuid4().hex

    def _new_family_task(
        self, family: str, operation: str, keys: tuple[str, ...], body: dict[str, Any], callback_url: str | None,
        price: int,
    ) -> FamilyTask:
        plan = self._take_plan(*keys)
        earlier = len(self.tasks_of(family))
        now = ms()
        task = FamilyTask(
            task_id=self._family_task_id(family),
            model=keys[0],
            input=body,
            callback_url=callback_url,
            param=json.dumps(body, ensure_ascii=False),
            plan=plan,
            price=price,
            create_time=now,
            update_time=now,
            family=family,
            operation=operation,
            odd=plan.odd_shapes if plan.odd_shapes is not None else earlier % 2 == 1,
            parent_id=body.get("taskId") if operation in ("extend", "4k") else None,
        )
        self.tasks[task.task_id] = task
        if family == "suno":
            self._compose_songs(task)
        task.raws.append(families.raw_word(task))
        planned = plan.duration
        if planned is None:
            planned = next((self.durations[key] for key in keys if key in self.durations), self.duration)
        duration = max(0.0, planned)
        loop = asyncio.get_running_loop()
        handles = [
            loop.call_later(duration * 0.25, self._advance, task, "queuing"),
            loop.call_later(duration * 0.5, self._advance, task, "generating"),
        ]
        if family == "suno":
            stages = plan.stages if plan.stages is not None else (families.SUNO_STAGES if plan.outcome == "success"
                                                                  else ())
            for stage, mark in zip(families.SUNO_STAGES, self.stage_marks, strict=True):
                if stage in stages:
                    handles.append(loop.call_later(duration * mark, self._stage, task, stage))
        if not plan.hold:
            handles.append(loop.call_later(duration, self._complete, task, plan.outcome))
        self._timers[task.task_id] = handles
        return task

    def _track(self, task: FamilyTask) -> None:
        word = families.raw_word(task)
        if not task.raws or task.raws[-1] != word:
            task.raws.append(word)

    def _advance(self, task: FakeTask, state: str) -> None:
        super()._advance(task, state)
        if isinstance(task, FamilyTask):
            self._track(task)

    def _stage(self, task: FamilyTask, stage: str) -> None:
        """Suno's "text" or "first" stage: the record moves on and (unless held for the end) calls back."""
        if task.terminal:
            return
        task.stage = stage
        task.update_time = max(ms(), task.create_time)
        self._track(task)
        self._notify()
        if task.plan.stage_order is None:
            self._call_back(task, [(stage, families.suno_callback(task, stage))])

    def _compose_songs(self, task: FamilyTask) -> None:
        """Suno's two songs (words, titles, ids) exist from the start; the stages reveal them."""
        body = task.input
        model = str(body.get("model", "V5"))
        words = body.get("prompt") if body.get("customMode") is True else None
        if words is None:
            topic = str(body.get("prompt") or body.get("style") or "the fake KIE").strip()
            words = f"[Verse]\n{topic}\n[Chorus]\nla la la, {topic[:40]}"
        if body.get("instrumental") is True:
            words = ""
        title = str(body.get("title") or "Fake song")
        for index, suffix in enumerate(("A", "B")):
            audio, cover, seconds = results.song(index)
            stem = f"results/{task.task_id}_{index}"
            names = (f"{stem}.mp3", f"{stem}_stream.mp3", f"{stem}.jpg")
            for name, data, content_type in zip(names, (audio, audio, cover), ("audio/mpeg", "audio/mpeg",
                                                                                 "image/jpeg"), strict=True):
                self.add_file(name, data, content_type)
            task.file_names.append(names[0])
            urls = task.plan.result_urls or []
            task.items.append({
                "id": str(uuid.uuid4()), "url": urls[index] if index < len(urls) else self._file_url(names[0]),
                "stream": self._file_url(names[1]), "image": self._file_url(names[2]), "title": f"{title} ({suffix})",
                "duration": seconds, "tags": str(body.get("style") or "fake, demo"), "prompt": words,
                "model_name": f"chirp-{model.lower().replace('_', '-')}",
                "create_time": families.clock(task.create_time),
            })

    def _serve(self, task: FamilyTask, name: str, data: bytes, content_type: str) -> str:
        self.add_file(name, data, content_type)
        task.file_names.append(name)
        return self._file_url(name)

    def _make_results(self, task: FamilyTask) -> None:
        """The finished task's files (Suno's were made at its start), as its family returns them."""
        plan, stem = task.plan, f"results/{task.task_id}"
        given = list(plan.result_urls or [])
        if task.family == "suno":
            pass
        elif task.family == "suno-lyrics":
            variants = plan.result_object if isinstance(plan.result_object, list) else None
            topic = str(task.input.get("prompt", "")).strip()[:60]
            task.items = [dict(v) for v in variants] if variants else [
                {"title": f"{topic or 'Fake lyrics'} ({n})",
                 "text": f"[Verse]\n{topic}, take {n}\n[Chorus]\nsing it, {topic}"} for n in (1, 2)]
        elif task.family in ("veo", "runway", "aleph"):
            parent = self.tasks.get(task.parent_id or "")
            shape = {**parent.input, **task.input} if parent is not None else task.input  # an extend keeps its frame
            url = given[0] if given else self._serve(task, f"{stem}_0.mp4", results.clip(shape), "video/mp4")
            image = self._serve(task, f"{stem}_0.png", results.picture(task.task_id, shape), "image/png")
            task.items = [{"id": uuid.uuid4().hex, "url": url, "image": image}]
            if task.operation == "extend" and isinstance(parent, FamilyTask):
                # the whole video after extension, one stitched file (the fake's clip stands for it);
                # Runway's record has no such field and delivers the new clip
                task.full_urls = [self._serve(task, f"{stem}_full.mp4", results.clip(shape), "video/mp4")]
        elif task.family == "gpt4o":
            count = task.input.get("nVariants") or plan.result_count or 1
            task.items = [{"url": given[n] if n < len(given) else self._serve(
                task, f"{stem}_{n}.png", results.picture(f"{task.task_id}-{n}", task.input), "image/png")}
                for n in range(max(1, int(count)))]
        else:  # flux-kontext: the result, and the "origin" copy KIE keeps for 10 minutes
            url = given[0] if given else self._serve(
                task, f"{stem}_0.png", results.picture(task.task_id, task.input), "image/png")
            origin = self._serve(task, f"{stem}_origin.png", results.picture(task.task_id, task.input), "image/png")
            task.items = [{"url": url, "image": origin}]
        for index, (status, seconds) in (plan.file_faults or {}).items():
            if 0 <= index < len(task.file_names):
                self.file_faults[task.file_names[index]] = (status, None if seconds is None else time.time() + seconds)

    def _complete(
        self, task: FakeTask, outcome: Outcome, *, fail_code: str | None = None, fail_msg: str | None = None
    ) -> None:
        if not isinstance(task, FamilyTask):
            super()._complete(task, outcome, fail_code=fail_code, fail_msg=fail_msg)
            return
        if task.terminal:
            return
        for handle in self._timers.pop(task.task_id, []):
            handle.cancel()
        if outcome == "success":
            self._make_results(task)
            task.consume_credits = task.price
        else:
            task.fail_code = str(fail_code or task.plan.fail_code)
            task.fail_msg = fail_msg or task.plan.fail_msg
            task.consume_credits = 0
            self.credits += task.price  # failed tasks are not billed (Suno's 531 says so)
        task.state = outcome
        task.states.append(outcome)
        if task.family == "suno" and outcome == "success":
            task.stage = "complete"
        task.complete_time = max(ms(), task.create_time)
        task.update_time = task.complete_time
        self._track(task)
        self._notify()
        self._call_back(task, self._final_callbacks(task))

    def _final_callbacks(self, task: FamilyTask) -> list[tuple[str | None, dict[str, Any]]]:
        order = task.plan.stage_order
        if task.family in ("suno", "suno-lyrics"):
            end = "complete" if task.state == "success" else "error"
            if order is not None:  # every stage held back to now, sent in the plan's order
                return [(stage, families.suno_callback(task, stage)) for stage in order]
            if task.plan.raw_state == "CALLBACK_EXCEPTION":  # KIE could not reach us: no callback
                return []
            return [(end, families.suno_callback(task, end))]
        body = families.callback(task)
        return [] if body is None else [(None, body)]
