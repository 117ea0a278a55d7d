"""Typed results of KIE calls: what the rest of the program sees instead of KIE's JSON.

Why it exists: KIE's answers are loose (``param`` and ``resultJson`` are JSON *strings*, keys are
absent while a task runs, task ids come in several shapes, a callback may say ``task_id``);
parsing happens once, in kie/, and everything above works with these frozen records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NewType

__all__ = ["Callback", "Credits", "ResultItem", "TaskCreated", "TaskRecord", "TaskState", "Upload"]

Credits = NewType("Credits", int)  # KIE credits left on the account (1 credit ≈ $0.005)


class TaskState(StrEnum):
    """A task's state; ``UNKNOWN`` stands for a state KIE added after this code was written."""

    WAITING = "waiting"
    QUEUING = "queuing"
    GENERATING = "generating"
    SUCCESS = "success"
    FAIL = "fail"
    UNKNOWN = "unknown"

    @property
    def terminal(self) -> bool:
        return self in (TaskState.SUCCESS, TaskState.FAIL)

    @classmethod
    def parse(cls, value: object) -> TaskState:
        """KIE's state string (any case); anything else is UNKNOWN, so a poller keeps asking."""
        if isinstance(value, str):
            try:
                return cls(value.strip().lower())
            except ValueError:
                pass
        return cls.UNKNOWN


@dataclass(frozen=True)
class TaskCreated:
    """A task KIE accepted, and how to ask about it again: its opaque id and the endpoint family.

    It is also the reference a poller rebuilds from what it stored: ``client.record(task)``
    works the same way for every family (only "jobs" exists today).
    """

    task_id: str
    endpoint: str = "jobs"


@dataclass(frozen=True)
class ResultItem:
    """One file of a result, with what its family says about it beside the URL.

    A Suno task makes two songs, each with a title, a cover picture, a length and an audio id that
    extend, cover and the rest act on; a Veo or 4o result is a list of URLs only. Families that
    know nothing but the URL leave the rest None. ``ref`` is the family's own id for this file
    (Suno's audioId), kept so an action on the result can name it.
    """

    url: str
    title: str | None = None
    cover_url: str | None = None
    ref: str | None = None
    duration: float | None = None
    lyrics: str | None = None  # Suno: the words sung (the prompt KIE used), shown beside the song


@dataclass(frozen=True)
class TaskRecord:
    """A task as KIE reports it (recordInfo or a callback). Times are ms epochs, ``cost_ms`` ms."""

    task_id: str
    model: str
    state: TaskState
    result_urls: list[str] = field(default_factory=list)
    result_object: Any = None  # text models answer {"resultObject": ...} instead of URLs
    fail_code: str | None = None
    fail_msg: str | None = None
    cost_ms: int | None = None
    created_ms: int | None = None
    updated_ms: int | None = None
    completed_ms: int | None = None
    param: dict[str, Any] | None = None  # the original request, parsed from its JSON string
    # the callBackUrl the original request named (from ``param``): the job a task belongs to, as
    # KIE itself remembers it; a task found through a callback is adopted only when it names ours
    callback_url: str | None = None
    raw_state: str | None = None  # KIE's own word for the state, for UNKNOWN ones
    endpoint: str = "jobs"
    # each result file with its family's details (Suno's title, cover, audioId); families that
    # give only URLs leave it empty and result_urls says all
    items: tuple[ResultItem, ...] = ()
    # a stage short of the end that the user may be told about (Suno's "text", "first"): the task
    # is still running (state GENERATING), nothing is delivered or charged before SUCCESS
    stage: str | None = None

    def files(self) -> tuple[ResultItem, ...]:
        """The result's files: the family's items, or the bare URLs as items."""
        return self.items or tuple(ResultItem(url) for url in self.result_urls)

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    @property
    def succeeded(self) -> bool:
        return self.state is TaskState.SUCCESS

    @property
    def failed(self) -> bool:
        return self.state is TaskState.FAIL


@dataclass(frozen=True)
class Callback:
    """A parsed callback: the task's record, the envelope's code and message, and the credits."""

    record: TaskRecord
    code: int | None
    message: str
    consume_credits: int | None = None  # 0 for failed tasks
    remained_credits: int | None = None
    signed: bool = False  # True when an HMAC signature was checked and matched

    @property
    def task_id(self) -> str:
        return self.record.task_id


@dataclass(frozen=True)
class Upload:
    """A file KIE's upload service now hosts; KIE deletes it after ``expires`` (about 3 days)."""

    file_url: str
    download_url: str
    expires: datetime
    file_name: str | None = None
    size: int | None = None
    mime: str | None = None
