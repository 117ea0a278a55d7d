"""How long a family's generation usually takes before the bot has measured its own (the model
card's "typical time"): rough figures from KIE's docs and experience, in seconds, from Confirm to
the result in the chat. Once a model has finished jobs, their median (store.jobs.usual_seconds)
is shown instead.
"""

from __future__ import annotations

TYPICAL_SECONDS: dict[str, int] = {
    "text_to_image": 40,
    "image_edit": 45,
    "text_to_video": 240,
    "image_to_video": 240,
    "video_to_video": 300,
    "music": 180,  # Suno: KIE gives no figure; its quickstart polls for up to 10 min, songs come in 2-4 min
    "avatar": 300,
    "audio": 20,
    "image_upscale": 40,
    "video_upscale": 300,
    "background_removal": 15,
}
DEFAULT_SECONDS = 120  # a family not listed above


def typical_seconds(family: str) -> int:
    return TYPICAL_SECONDS.get(family, DEFAULT_SECONDS)
