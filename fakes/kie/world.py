"""What the fake KIE holds — credits, tasks, files — and how a task progresses on its own.

Why it exists: a task created over HTTP lives on after the request: timers move it through
waiting → queuing → generating → success|fail as its :class:`Plan` says, a successful one gets
result files the fake then serves (a PNG in the frame asked for, a real H.264 clip, a real MP3:
:mod:`fakes.kie.results`), and its end is POSTed to the task's ``callBackUrl`` (signed, possibly
duplicated). :class:`KieWorld` runs that simulation; the routes only create tasks and read them.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import aiohttp

from fakes.kie import results
from fakes.kie.wire import (
    DEFAULT_MESSAGES,
    FILES_PREFIX,
    JOB_MODELS,
    RUNNING_STATES,
    SUCCESS_CALLBACK_MSG,
    TERMINAL_STATES,
    Call,
    CallbackAttempt,
    FakeTask,
    Injection,
    MediaKind,
    Outcome,
    Plan,
    media_kind,
    ms,
    sign_callback,
)
from fakes.server import FakeServer

_STATE_ORDER = {state: index for index, state in enumerate((*RUNNING_STATES, *TERMINAL_STATES))}
_CONTENT_TYPES: dict[MediaKind, tuple[str, str]] = {
    "image": ("image/png", "png"),
    "video": ("video/mp4", "mp4"),
    "audio": ("audio/mpeg", "mp3"),
}


def _result_file(kind: MediaKind, task: FakeTask) -> bytes:
    """A finished task's file: a picture in the frame its input asks for, a real playable clip
    (nearest shipped frame), a real MP3 (:mod:`fakes.kie.results`)."""
    if kind == "image":
        return results.picture(task.task_id, task.input)
    if kind == "video":
        return results.clip(task.input)
    return results.sound()


class KieWorld(FakeServer):
    """The fake's state and settings, the files it serves, and the task simulation."""

    _user_agent: ClassVar[str] = "KIE-Webhook-Fake/1.0"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        duration: float = 1.0,
        credits: int = 10_000,
        default_price: int = 10,
        prices: Mapping[str, int] | None = None,
        models: Iterable[str] | None = None,
        callbacks: bool = True,
        callback_duplicates: int = 0,
        callback_timeout: float = 15.0,
        hmac_key: str | None = None,
        mirror_http_status: bool = True,
        msg_field: str = "msg",
        public_base_url: str | None = None,
        hd_seconds: float | None = None,
        stage_marks: tuple[float, float] = (0.5, 0.75),
        durations: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.duration = duration
        self.credits = credits
        self.default_price = default_price
        self.prices: dict[str, int] = dict(prices or {})
        self.models: set[str] = set(JOB_MODELS if models is None else models)  # "*" in it accepts any model
        self.callbacks = callbacks
        self.callback_duplicates = callback_duplicates  # extra copies of each callback
        self.callback_timeout = callback_timeout
        self.hmac_key = hmac_key
        self.mirror_http_status = mirror_http_status  # False: built-in errors answer HTTP 200 + code in body
        self.msg_field = msg_field  # KIE sometimes says "message"
        self.public_base_url = public_base_url  # host name result URLs use, if the bot sees the fake elsewhere
        # Veo's get-1080p-video answers "processing" until this long after the original succeeded (None = duration)
        self.hd_seconds = hd_seconds
        # Suno's "text" and "first" stages, as fractions of the task's duration (the end is 1.0)
        self.stage_marks = stage_marks
        # seconds a dedicated family's task takes by plan key ("suno": 120, "veo/4k": 300), when its plan
        # names none; else ``duration`` (the demo gives Suno KIE's minutes while pictures stay quick)
        self.durations: dict[str, float] = dict(durations or {})

        self.tasks: dict[str, FakeTask] = {}
        self.callback_attempts: list[CallbackAttempt] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        self.redirects: dict[str, str] = {}  # file name -> Location its download is redirected to
        # file name -> (HTTP status its download answers, until (time.time()); None = for good)
        self.file_faults: dict[str, tuple[int, float | None]] = {}
        self._calls: list[Call] = []
        self._plans: dict[str, list[Plan]] = {}  # counted plans, used first, in order
        self._standing_plans: dict[str, Plan] = {}  # count=None plans
        self._injections: list[Injection] = []
        self._timers: dict[str, list[asyncio.TimerHandle]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._callback_locks: dict[str, asyncio.Lock] = {}  # a task's callbacks leave in the order sent
        self._task_counter = 0

    async def _before_shutdown(self) -> None:
        """Cancel the tasks' timers and the callbacks under way (waiters are woken once the server is closed)."""
        for handles in self._timers.values():
            for handle in handles:
                handle.cancel()
        self._timers.clear()
        pending = list(self._background)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def add_file(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Serve ``data`` under ``/files/<name>`` and return its URL."""
        self.files[name] = (data, content_type)
        return self._file_url(name)

    def add_redirect(self, name: str, location: str) -> str:
        """Answer downloads of ``/files/<name>`` with a 302 to ``location``; return its URL."""
        self.redirects[name] = location
        return self._file_url(name)

    def _file_url(self, name: str) -> str:
        return f"{self.public_base_url or self.base_url}{FILES_PREFIX}{quote(name)}"

    # ------------------------------------------------------------------ task lifecycle

    def _take_plan(self, model: str, *broader: str) -> Plan:
        """The plan for a task of ``model``: its own, then ``broader`` keys' (a family's), then "*"."""
        for key in (model, *broader, "*"):
            queue = self._plans.get(key)
            if queue:
                chosen = queue[0]
                chosen.remaining = (chosen.remaining or 1) - 1
                if chosen.remaining <= 0:
                    queue.pop(0)
                return chosen
            if key in self._standing_plans:
                return self._standing_plans[key]
        return Plan()

    def _new_task_id(self, model: str, now: int) -> str:
        self._task_counter += 1
        if self._task_counter % 2 == 0:
            return uuid.uuid4().hex
        slug = re.sub(r"[^A-Za-z0-9]+", "-", model).strip("-") or "model"
        stamp = now
        while f"task_{slug}_{stamp}" in self.tasks:
            stamp += 1
        return f"task_{slug}_{stamp}"

    def _new_task(
        self, model: str, task_input: dict[str, Any], callback_url: str | None, param: str, price: int
    ) -> FakeTask:
        plan = self._take_plan(model)
        now = ms()
        task = FakeTask(
            task_id=self._new_task_id(model, now),
            model=model,
            input=task_input,
            callback_url=callback_url,
            param=param,
            plan=plan,
            price=price,
            create_time=now,
            update_time=now,
        )
        self.tasks[task.task_id] = task
        duration = max(0.0, self.duration if plan.duration is None else plan.duration)
        loop = asyncio.get_running_loop()
        handles = [
            loop.call_later(duration * 0.25, self._advance, task, "queuing"),
            loop.call_later(duration * 0.5, self._advance, task, "generating"),
        ]
        if not plan.hold:
            handles.append(loop.call_later(duration, self._complete, task, plan.outcome))
        self._timers[task.task_id] = handles
        return task

    def _advance(self, task: FakeTask, state: str) -> None:
        if _STATE_ORDER[state] <= _STATE_ORDER[task.state]:
            return
        task.state = state
        task.states.append(state)
        task.update_time = max(ms(), task.create_time)
        self._notify()

    def _complete(
        self, task: FakeTask, outcome: Outcome, *, fail_code: str | None = None, fail_msg: str | None = None
    ) -> None:
        if task.terminal:
            return
        for handle in self._timers.pop(task.task_id, []):
            handle.cancel()
        if outcome == "success":
            plan = task.plan
            if plan.result_object is not None:
                task.result_object = plan.result_object
            elif plan.result_urls is not None:
                task.result_urls = list(plan.result_urls)
            else:
                kind = plan.kind or media_kind(task.model)
                content_type, extension = _CONTENT_TYPES[kind]
                names = [f"results/{task.task_id}_{index}.{extension}" for index in range(max(1, plan.result_count))]
                task.result_urls = [
                    self.add_file(name, _result_file(kind, task), content_type) for name in names
                ]
                for index, (status, seconds) in (plan.file_faults or {}).items():
                    if 0 <= index < len(names):
                        self.file_faults[names[index]] = (status, None if seconds is None else time.time() + seconds)
            task.consume_credits = task.price
        else:
            task.fail_code = str(fail_code or task.plan.fail_code)
            task.fail_msg = fail_msg or task.plan.fail_msg
            task.consume_credits = 0
            self.credits += task.price  # failed tasks are not billed
        task.state = outcome
        task.states.append(outcome)
        task.complete_time = max(ms(), task.create_time)
        task.update_time = task.complete_time
        self._notify()
        success = task.state == "success"
        body = {
            "code": 200 if success else 501,
            "msg": SUCCESS_CALLBACK_MSG if success else (task.fail_msg or DEFAULT_MESSAGES[501]),
            "data": task.callback_data(self.credits),
        }
        self._call_back(task, [(None, body)])

    def _call_back(self, task: FakeTask, bodies: list[tuple[str | None, dict[str, Any]]]) -> None:
        """POST ``bodies`` (each with its stage, or None) to the task's callBackUrl, in the background."""
        if not (self.callbacks and task.callback_url and bodies and self._session is not None
                and not self._stopping.is_set()):
            return
        background = asyncio.get_running_loop().create_task(self._send_callbacks(task, bodies))
        self._background.add(background)
        background.add_done_callback(self._background.discard)

    async def _send_callbacks(self, task: FakeTask, bodies: list[tuple[str | None, dict[str, Any]]]) -> None:
        """Each body, then its duplicates, signed when the world has a key; a task's sends never overtake."""
        lock = self._callback_locks.setdefault(task.task_id, asyncio.Lock())
        async with lock:
            for stage, body in bodies:
                await self._send_callback(task, stage, body)

    async def _send_callback(self, task: FakeTask, stage: str | None, body: dict[str, Any]) -> None:
        assert task.callback_url is not None
        payload = json.dumps(body, ensure_ascii=False).encode()
        duplicates = self.callback_duplicates if task.plan.duplicates is None else task.plan.duplicates
        for copy in range(1 + max(0, duplicates)):
            if self._session is None:
                return
            headers = {"Content-Type": "application/json"}
            if self.hmac_key:
                timestamp = str(int(time.time()))
                headers["X-Webhook-Timestamp"] = timestamp
                headers["X-Webhook-Signature"] = sign_callback(task.task_id, timestamp, self.hmac_key)
            attempt = CallbackAttempt(
                task_id=task.task_id, url=task.callback_url, copy=copy, body=body, headers=headers, at=time.time(),
                stage=stage,
            )
            try:
                async with self._session.post(
                    task.callback_url,
                    data=payload,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.callback_timeout),
                ) as response:
                    await response.read()
                    attempt.status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                attempt.error = f"{type(exc).__name__}: {exc}"
            self.callback_attempts.append(attempt)
            self._notify()
