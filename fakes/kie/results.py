"""The files a finished fake KIE task serves: pictures in the frame the task asked for, a real
playable clip, a real sound.

Why it exists: the demo is how a newcomer judges the bot, so what the fake returns must behave
like what KIE returns: a 16:9 picture is 16:9 (drawn here at request time, pure Python, so any
ratio a model offers comes out right), a video plays in a browser and in Telegram (H.264 MP4s
made once with ffmpeg by ``media/make_media.sh`` and shipped: the fake never runs ffmpeg), and a
sound plays (an MP3 made the same way). Tests that need other bytes still plan ``result_urls``.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

LONG_SIDE = 1280  # what Telegram keeps of a photo's longer side: a picture here is never smaller than shown
DEFAULT_RATIO = (1, 1)
# the input fields KIE's models name the frame in, most specific first
_SHAPE_FIELDS = ("aspect_ratio", "aspectRatio", "image_size", "ratio", "size", "orientation")
# words models use instead of a ratio (fal-style image_size names, orientation enums)
_SHAPE_WORDS: dict[str, tuple[int, int]] = {
    "square": (1, 1), "square_hd": (1, 1), "landscape": (16, 9), "portrait": (9, 16),
    "landscape_4_3": (4, 3), "landscape_16_9": (16, 9), "portrait_4_3": (3, 4), "portrait_16_9": (9, 16),
    "horizontal": (16, 9), "vertical": (9, 16),
}
_RATIO = re.compile(r"^\s*(\d{1,5}(?:\.\d+)?)\s*[:x×/]\s*(\d{1,5}(?:\.\d+)?)\s*$")
# the shipped clips by their frame (width:height), see media/make_media.sh
CLIPS: dict[tuple[int, int], str] = {(16, 9): "clip-16x9.mp4", (9, 16): "clip-9x16.mp4", (1, 1): "clip-1x1.mp4"}
SOUND = "tone.mp3"
# a Suno task's two songs and their covers: real MP3s of different tunes and lengths, JPEG covers
SONGS: tuple[tuple[str, str, float], ...] = (("song-a.mp3", "cover-a.jpg", 6.03), ("song-b.mp3", "cover-b.jpg", 5.04))


def requested_ratio(task_input: Mapping[str, Any]) -> tuple[int, int] | None:
    """The frame a task's input asks for ("16:9", "1024x1536", "landscape_4_3", "portrait"...),
    as width and height parts; None when it names none (or "auto")."""
    for name in _SHAPE_FIELDS:
        value = task_input.get(name)
        if not isinstance(value, str):
            continue
        word = value.strip().lower()
        if word in _SHAPE_WORDS:
            return _SHAPE_WORDS[word]
        match = _RATIO.match(word)
        if match:
            width, height = float(match.group(1)), float(match.group(2))
            if width > 0 and height > 0 and 1 / 8 <= width / height <= 8:
                return _whole(width, height)
    return None


def _whole(width: float, height: float) -> tuple[int, int]:
    """A ratio in whole numbers (1.5:1 -> 3:2), small enough to compare."""
    scale = 1
    while scale < 100 and (abs(width * scale - round(width * scale)) > 1e-6
                           or abs(height * scale - round(height * scale)) > 1e-6):
        scale += 1
    return round(width * scale), round(height * scale)


def picture_size(ratio: tuple[int, int] | None) -> tuple[int, int]:
    """Pixels for a ratio: the longer side LONG_SIDE, the other in proportion (even, as encoders like)."""
    width, height = ratio or DEFAULT_RATIO
    if width >= height:
        return LONG_SIDE, max(2, round(LONG_SIDE * height / width / 2) * 2)
    return max(2, round(LONG_SIDE * width / height / 2) * 2), LONG_SIDE


def picture(seed: str, task_input: Mapping[str, Any]) -> bytes:
    """A PNG in the frame the input asks for: a sky whose colours depend on ``seed``, a sun, the ground."""
    width, height = picture_size(requested_ratio(task_input))
    return _picture(seed, width, height)


def _picture(seed: str, width: int, height: int) -> bytes:
    digest = hashlib.sha256(seed.encode()).digest()
    top, bottom, ground = digest[0:3], digest[3:6], bytes(c // 3 for c in digest[6:9])
    sun = (255, 236, 160)
    sun_x, sun_y, radius = width * (20 + digest[9] % 60) // 100, height * 35 // 100, max(4, min(width, height) // 8)
    horizon = height * 70 // 100
    rows = []
    for y in range(height):
        if y >= horizon:
            row = bytearray(b"\x00" + bytes(ground) * width)
        else:
            mix = y / max(1, horizon)
            colour = bytes(round(a + (b - a) * mix) for a, b in zip(top, bottom, strict=True))
            row = bytearray(b"\x00" + colour * width)
            dy = y - sun_y
            if abs(dy) < radius:
                half = int((radius * radius - dy * dy) ** 0.5)
                left, right = max(0, sun_x - half), min(width, sun_x + half)
                row[1 + 3 * left:1 + 3 * right] = bytes(sun) * (right - left)
        rows.append(bytes(row))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows), 6))
            + chunk(b"IEND", b""))


def clip(task_input: Mapping[str, Any] | None = None) -> bytes:
    """The shipped clip whose frame is nearest to the one asked for (16:9 when none is named)."""
    width, height = requested_ratio(task_input or {}) or (16, 9)
    wanted = width / height
    shape = min(CLIPS, key=lambda ratio: abs(ratio[0] / ratio[1] - wanted))
    return shipped(CLIPS[shape])


def sound() -> bytes:
    """The shipped sound: a chord of a second and a half, a real MP3 (shorter than any speech estimate)."""
    return shipped(SOUND)


def song(index: int) -> tuple[bytes, bytes, float]:
    """Song ``index`` (0 or 1, wrapping): its MP3, its JPEG cover, its length in seconds."""
    audio, cover, seconds = SONGS[index % len(SONGS)]
    return shipped(audio), shipped(cover), seconds


@lru_cache(maxsize=16)
def shipped(name: str) -> bytes:
    """A file from ``media/`` (read once)."""
    return resources.files(__package__).joinpath("media", name).read_bytes()
