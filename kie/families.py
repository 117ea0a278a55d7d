"""Every KIE endpoint family the client can speak, by the name stored with each job.

Why it exists: a job is created and polled through its family (jobs.endpoint), so the client
must know them all from the start; each adapter adds itself here with one line, and the catalog
checks a model's ``endpoint`` against these names.
"""

from __future__ import annotations

from collections.abc import Mapping

from kie.endpoint import Endpoint
from kie.flux_kontext import FLUX_KONTEXT
from kie.gpt4o import GPT4O
from kie.jobs import JOBS
from kie.runway import ALEPH, RUNWAY
from kie.suno import SUNO, SUNO_LYRICS
from kie.veo import VEO

__all__ = ["ENDPOINTS", "family_of"]

ENDPOINTS: Mapping[str, Endpoint] = {
    JOBS.name: JOBS,
    VEO.name: VEO,
    RUNWAY.name: RUNWAY,
    ALEPH.name: ALEPH,
    SUNO.name: SUNO,
    SUNO_LYRICS.name: SUNO_LYRICS,
    GPT4O.name: GPT4O,
    FLUX_KONTEXT.name: FLUX_KONTEXT,
}


def family_of(model_id: str) -> str:
    """The family a catalog model id names: ``veo/extend`` is Veo's, anything else the jobs API's."""
    head = model_id.split("/", 1)[0]
    return head if head in ENDPOINTS and head != JOBS.name else JOBS.name
