"""FakeKie: the fake KIE jobs API as tests steer and observe it.

Why it exists: tests decide how the next tasks end (:meth:`FakeKie.plan`), fault the next
requests (:meth:`FakeKie.inject`), finish held tasks (:meth:`FakeKie.finish`), and wait for
task states and callbacks; this module is that API, over the routes and the task simulation.
"""

from __future__ import annotations

from typing import Any

from fakes.kie.dedicated import DedicatedRoutes
from fakes.kie.wire import TERMINAL_STATES, Call, CallbackAttempt, FakeTask, Injection, MediaKind, Outcome, Plan


class FakeKie(DedicatedRoutes):
    """KIE's jobs API and its dedicated families on a real local port. ``api_key=None`` accepts any
    non-empty Bearer token.

    Attributes meant to be read (and, for the settings, changed) by tests: ``tasks``,
    ``callback_attempts``, ``files``, ``credits``, ``models``, ``prices``, ``duration``,
    ``callbacks``, ``callback_duplicates``, ``hmac_key``, ``mirror_http_status``, ``hd_seconds``
    (Veo's 1080p is "processing" that long after the original succeeded; None = ``duration``),
    ``stage_marks`` (when Suno's "text" and "first" stages come, as fractions of a task's duration),
    ``durations`` (seconds per dedicated plan key, e.g. ``{"suno": 150}``, when a task's plan names none).

    A dedicated family's task is planned like a jobs model, by its key: ``"<family>/<operation>/<model>"``
    (``veo/generate/veo3_fast``, ``suno/extend/V5``), ``"<family>/<operation>"`` (``veo/4k``,
    ``suno/upload-cover``) or ``"<family>"`` (``suno``, ``gpt4o``), the narrowest first, then "*".
    """

    # ------------------------------------------------------------------ steering

    def plan(
        self,
        model: str = "*",
        outcome: Outcome = "success",
        *,
        duration: float | None = None,
        fail_code: str = "500",
        fail_msg: str = "Internal error, please try again later.",
        result_urls: list[str] | None = None,
        result_object: Any = None,
        result_count: int = 1,
        kind: MediaKind | None = None,
        hold: bool = False,
        count: int | None = None,
        file_faults: dict[int, tuple[int, float | None]] | None = None,
        raw_state: str | None = None,
        odd_shapes: bool | None = None,
        stages: tuple[str, ...] | None = None,
        stage_order: tuple[str, ...] | None = None,
        duplicates: int | None = None,
    ) -> Plan:
        """Set how subsequent tasks of ``model`` ("*" = any model without its own plan) behave.

        ``count`` limits the plan to that many tasks; counted plans queue up and are used before
        the standing plan (``count=None``, which replaces the previous standing plan of that model).
        A model's own plans win over "*" plans. ``hold`` stops the task at "generating" until
        :meth:`finish`. ``file_faults`` breaks result files: index -> (HTTP status their download
        answers, for how many seconds after the task ends; None = for good).

        The dedicated families also read: ``fail_code`` as the family's number (Veo/4o "400" content
        policy, Suno "531" credits refunded, Runway "400"); ``raw_state``, the family's own terminal
        word or flag (Suno "SENSITIVE_WORD_ERROR" or, on a success, "CALLBACK_EXCEPTION" with the songs
        there and no callback; 4o "CREATE_TASK_FAILED"; Veo/Flux "2" or "3"); ``odd_shapes`` (True/False;
        None = every other task of the family: Veo's resultUrls as a JSON string, 4o's result_urls and
        string successFlag, Aleph's schema-shaped callback, 4K's snake callback); ``stages``, Suno's
        stages before the end (default text and first on a success, none on a failure; ``("text",)``
        fails after the words); ``stage_order``, Suno's stage callbacks held to the end and sent in this
        order (``("complete", "first", "text")``: out of order); ``duplicates``, extra copies of each
        callback of these tasks; ``result_count``, 4o's variants when the body names no nVariants;
        ``result_object``, the lyrics variants ``[{"title", "text"}]``.
        """
        if outcome not in TERMINAL_STATES:
            raise ValueError(f"outcome must be 'success' or 'fail', not {outcome!r}")
        new = Plan(
            outcome=outcome,
            duration=duration,
            fail_code=str(fail_code),
            fail_msg=fail_msg,
            result_urls=None if result_urls is None else list(result_urls),
            result_object=result_object,
            result_count=result_count,
            kind=kind,
            hold=hold,
            remaining=count,
            file_faults=None if file_faults is None else dict(file_faults),
            raw_state=raw_state,
            odd_shapes=odd_shapes,
            stages=None if stages is None else tuple(stages),
            stage_order=None if stage_order is None else tuple(stage_order),
            duplicates=duplicates,
        )
        if count is None:
            self._standing_plans[model] = new
        else:
            self._plans.setdefault(model, []).append(new)
        return new

    def inject(
        self,
        path: str = "*",
        *,
        code: int | None = None,
        http_status: int | None = None,
        count: int = 1,
        delay: float = 0.0,
        hang: bool = False,
        msg: str | None = None,
        drop_after_create: bool = False,
        body: str | bytes | None = None,
        content_type: str = "text/html",
        headers: dict[str, str] | None = None,
        after_create: bool = False,
    ) -> Injection:
        """Fault the next ``count`` requests whose path ends with ``path`` ("*" = every path).

        * ``code``: answer ``{"code": code, "msg": msg, "data": null}`` with HTTP ``http_status``
          (default: ``code`` itself; pass 200 for KIE's "HTTP 200, error in the body" style);
        * ``body``: answer these raw bytes instead (e.g. a CDN's HTML 502), HTTP ``http_status`` or 502;
        * ``headers``: extra headers on a ``code`` or ``body`` answer (a CDN's 429 says ``Retry-After``);
        * ``after_create`` (with ``body``): handle the request for real first (createTask makes its
          task), then answer the raw body (Cloudflare's 502/520 page after the origin made the task);
        * ``delay``: wait that long first (then fault, or answer normally when nothing else is set);
        * ``hang``: never answer; the connection is closed when the fake stops;
        * ``drop_after_create``: handle the request for real (the task is created and kept in
          ``tasks``), then close the connection instead of answering (with ``hang``: hang instead).
        """
        injection = Injection(
            path=path,
            code=code,
            http_status=http_status,
            remaining=count,
            delay=delay,
            hang=hang,
            msg=msg,
            drop_after_create=drop_after_create,
            body=body,
            content_type=content_type,
            headers=None if headers is None else dict(headers),
            after_create=after_create,
        )
        self._injections.append(injection)
        return injection

    def finish(
        self,
        task_id: str,
        outcome: Outcome = "success",
        *,
        fail_code: str | None = None,
        fail_msg: str | None = None,
    ) -> FakeTask:
        """Bring a running task (typically a held one) to its terminal state now."""
        task = self.tasks[task_id]
        if task.terminal:
            raise ValueError(f"task {task_id} is already {task.state}")
        self._complete(task, outcome, fail_code=fail_code, fail_msg=fail_msg)
        return task

    def reset(self) -> None:
        """Forget calls, plans, injections and callback attempts (tasks and credits stay)."""
        self._calls.clear()
        self._plans.clear()
        self._standing_plans.clear()
        self._injections.clear()
        self.callback_attempts.clear()
        self._callback_locks.clear()
        self._notify()

    # ------------------------------------------------------------------ observing

    def calls(self, path: str | None = None) -> list[Call]:
        """Recorded requests, optionally only those whose path ends with ``path``."""
        return [call for call in self._calls if path is None or call.path.endswith(path)]

    def callbacks_for(self, task_id: str) -> list[CallbackAttempt]:
        return [attempt for attempt in self.callback_attempts if attempt.task_id == task_id]

    async def wait_for_state(self, task_id: str, *states: str, timeout: float = 5.0) -> FakeTask:
        """Wait until the task exists and is in one of ``states`` (default: a terminal state)."""
        wanted = states or TERMINAL_STATES

        def reached() -> FakeTask | None:
            task = self.tasks.get(task_id)
            return task if task is not None and task.state in wanted else None

        return await self.wait_for(reached, timeout, f"task {task_id} in {'/'.join(wanted)}")

    async def wait_for_callbacks(self, count: int, task_id: str | None = None, timeout: float = 5.0) -> list[Any]:
        """Wait until at least ``count`` callback attempts (for ``task_id``, if given) finished."""

        def done() -> list[CallbackAttempt]:
            attempts = self.callback_attempts if task_id is None else self.callbacks_for(task_id)
            return attempts if len(attempts) >= count else []

        return await self.wait_for(
            done, timeout, f"{count} callback attempt(s)" + (f" for {task_id}" if task_id else "")
        )

    def _state_report(self) -> str:
        tasks = ", ".join(f"{task.task_id}={task.state}" for task in self.tasks.values()) or "none"
        calls = "; ".join(f"{c.method} {c.path} -> {c.status}" for c in self._calls[-8:]) or "none"
        attempts = (
            "; ".join(f"{a.task_id}#{a.copy} -> {a.status or a.error}" for a in self.callback_attempts[-8:]) or "none"
        )
        return (
            f"Tasks: {tasks}. Last calls: {calls}. Callback attempts: {attempts}. "
            f"Pending injections: {sum(i.remaining for i in self._injections)}."
        )
