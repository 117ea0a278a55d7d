"""The seam for KIE's endpoint families: the jobs API now; Veo, Suno, Midjourney, Runway, 4o Image, Flux Kontext later.

Why it exists: those families start a task, report on it and call back each in their own shape
(``successFlag`` instead of ``state``, ``data.response.resultUrls``, ``data.video_url``, three
callbacks per Suno task). An :class:`Endpoint` turns the client's four questions — start this,
which task was started, how is this task, what does this callback say — into that family's
requests and parses its answers into the same typed records, so the client's transport
(envelope, errors, limiter, retries, timeouts) and everything above it (``client.record(task)``
in the poller, the callback route) stay the same for every family.

The families and their catalog ids (kie/families.py holds the registry): a dedicated family's
model id is ``<family>/<operation>[/<variant>]`` — ``veo/generate/veo3_fast``, ``veo/extend``,
``veo/1080p``, ``suno/generate/V5``, ``suno/extend``, ``runway/generate``, ``aleph/generate``,
``gpt4o/generate``, ``flux-kontext/generate/flux-kontext-pro``. The operation picks the path;
the variant, when there is one, is sent as the family's model field. The task input is the
wizard's values named as KIE's body fields (``prompt``, ``aspectRatio``, ``taskId``...); keys
starting with ``_`` are ours and never sent. Each family's status word is mapped onto
:class:`~kie.models.TaskState` (DEDICATED.md §1.2) and its raw word kept in ``raw_state``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from kie.models import Callback, TaskRecord

__all__ = ["Endpoint", "Request"]


@dataclass(frozen=True)
class Request:
    """One KIE API request: where it goes, what it carries, and the limiter class it counts in."""

    method: Literal["GET", "POST"]
    path: str
    rate: str | None  # a Limiter class (limiter.CREATE, limiter.RECORD), None = not limited
    json: Mapping[str, Any] | None = None
    params: Mapping[str, str] | None = None


class Endpoint(Protocol):
    """One family of KIE endpoints, as the client and the callback route use it."""

    @property
    def name(self) -> str:
        """The family's name, stored with each job ("jobs", later "veo", "suno", ...)."""

    def create_request(self, model: str, task_input: Mapping[str, Any], callback_url: str | None) -> Request:
        """The request that starts a task, validated locally (raises InvalidRequest)."""

    def created_task_id(self, data: Any) -> str | None:
        """The task id in a start answer's ``data``, if there is one (error answers included)."""

    def record_request(self, task_id: str) -> Request:
        """The request that reports on a task."""

    def record(self, data: Any, task_id: str) -> TaskRecord:
        """The task's record from a report's ``data`` (raises BadResponse when it is none)."""

    def callback_task_id(self, body: Mapping[str, Any]) -> str | None:
        """The task id a callback body names (what its signature covers), if any."""

    def callback(self, body: Mapping[str, Any]) -> Callback:
        """The parsed callback body (raises BadResponse when it is malformed)."""

    def poll_floor(self, task_id: str) -> float:
        """The fewest seconds between two status calls of this task that its family asks for (0: the
        poller's own pace): Veo's 1080p GET answers "processing" for minutes, retried every 20-30 s."""

    def local_task_id(self, model: str, task_input: Mapping[str, Any]) -> str | None:
        """A task that needs no create call, or None (most): Veo's 1080p is fetched by a GET on
        the original's task until it is ready, so its "task" is that GET, polled like any other."""
