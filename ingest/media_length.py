"""How long an audio or video file plays, read from its bytes, never from what its sender declared.

Telegram documents the `duration` of Audio, Voice and Video as "defined by the sender": any client
can send a 15 s file as "1 s", and a per-second price would trust it while KIE bills the real
length. The jobs actor downloads every input before it goes to KIE, so it measures here and ends
the job (a release, a plain-words reason) when the measured length is longer than what was priced
or than the field takes.

The parsing is mutagen's (WAV, MP3, Ogg Opus/Vorbis/FLAC, FLAC, MP4/M4A/MOV, AIFF, AAC): pure
Python, installed from PyPI with pip like every other dependency, so it works on Render's Python
runtime, where ffprobe/ffmpeg is not installed and cannot be relied on. It reads containers, not
decoded samples, so three guards stand in for a decoder:
- an MP4 counts the longest of the movie header, every track's header and media header, and a
  fragmented file's mehd (mutagen alone reports the audio track: a 1 s sound in a 15 s video);
- MP3 and Opus have a highest bitrate their codec can carry, so their bytes give a floor on how
  long they play whatever their Xing header or last granule position claims;
- a length that is not positive, not a number, or over MAX_SECONDS (24 h) is a header not to be
  trusted: None, as for bytes nothing here can read (WebM/Matroska included: mutagen has no parser).
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import struct
from collections.abc import Iterator

import mutagen
from mutagen.aac import AAC
from mutagen.aiff import AIFF
from mutagen.flac import FLAC
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

log = logging.getLogger(__name__)

MAX_SECONDS = 24 * 3600.0  # longer than any input a model takes: a header claiming more is lying or broken
MP3_MAX_BPS = 320_000  # MPEG-1 Layer III's highest bitrate (MPEG-2/2.5 top out lower)
OPUS_MAX_BPS = 510_000  # Opus's highest bitrate (RFC 6716)

# content sniffing first (mutagen scores each parser on the header); the MIME type only picks a
# parser for a file the sniffing does not recognise (an MP3 without ID3 whose first bytes are not a sync)
_PARSERS: list[type[mutagen.FileType]] = [WAVE, MP3, OggOpus, OggVorbis, OggFLAC, FLAC, MP4, AIFF, AAC]
_BY_MIME: dict[str, type[mutagen.FileType]] = {
    "audio/mpeg": MP3, "audio/mp3": MP3, "audio/x-mpeg": MP3,
    "audio/wav": WAVE, "audio/x-wav": WAVE, "audio/wave": WAVE, "audio/vnd.wave": WAVE,
    "audio/ogg": OggOpus, "audio/opus": OggOpus, "audio/x-opus+ogg": OggOpus,
    "audio/flac": FLAC, "audio/x-flac": FLAC,
    "audio/mp4": MP4, "audio/m4a": MP4, "audio/x-m4a": MP4, "video/mp4": MP4, "video/quicktime": MP4,
    "audio/aac": AAC, "audio/x-aiff": AIFF, "audio/aiff": AIFF,
}


async def measure_seconds(data: bytes, mime: str) -> float | None:
    """The file's playing length in seconds, or None when it cannot be measured (not a format
    read here, broken, or a length not to be trusted). Parsing runs in a thread: a 20 MB file is
    read in milliseconds, but never on the event loop."""
    return await asyncio.to_thread(measure_seconds_sync, data, mime)


def measure_seconds_sync(data: bytes, mime: str) -> float | None:
    """measure_seconds without the thread (for code already off the event loop)."""
    try:
        seconds = _measure(data, mime.split(";", 1)[0].strip().lower())
    except Exception as exc:  # a parser's error on hostile bytes is "cannot measure", never a crash
        log.info("media_length_unreadable", extra={"error_text": type(exc).__name__, "mime": mime[:80]})
        return None
    if seconds is None or not math.isfinite(seconds) or seconds <= 0 or seconds > MAX_SECONDS:
        return None
    return seconds


def _measure(data: bytes, mime: str) -> float | None:
    parsed = _parse(data, mime)
    if parsed is None:
        return None
    length = float(getattr(parsed.info, "length", 0.0) or 0.0)
    if isinstance(parsed, MP4):
        return max([length, *_mp4_lengths(data)])
    if isinstance(parsed, MP3):
        tags = parsed.tags
        start = int(getattr(tags, "size", 0) or 0) if tags is not None else 0
        end = len(data) - (128 if data[-128:-125] == b"TAG" else 0)
        return max(length, _floor(end - start, MP3_MAX_BPS))
    if isinstance(parsed, OggOpus):
        return max(length, _floor(len(data), OPUS_MAX_BPS))
    return length


def _parse(data: bytes, mime: str) -> mutagen.FileType | None:
    sniffed: mutagen.FileType | None = mutagen.File(io.BytesIO(data), options=_PARSERS)
    if sniffed is not None:
        return sniffed
    kind = _BY_MIME.get(mime)
    return kind(io.BytesIO(data)) if kind is not None else None


def _floor(size: int, max_bps: int) -> float:
    """The shortest a stream of `size` bytes can play at its codec's highest bitrate."""
    return max(0, size) * 8 / max_bps


# --- MP4: the longest length any of its headers gives -------------------------------------------


def _mp4_lengths(data: bytes) -> Iterator[float]:
    """Seconds from the movie header (mvhd), each track's tkhd (in the movie's timescale) and
    mdhd (in its own), and a fragmented movie's mehd."""
    moov = next((body for name, body in _boxes(data, 0, len(data)) if name == b"moov"), None)
    if moov is None:
        return
    start, end = moov
    movie_scale = 0
    children = list(_boxes(data, start, end))
    for name, (s, _e) in children:
        if name == b"mvhd":
            movie_scale, duration = _scale_and_duration(data, s)
            if movie_scale:
                yield duration / movie_scale
    for name, (s, e) in children:
        if name == b"trak":
            for inner, (ts, te) in _boxes(data, s, e):
                if inner == b"tkhd" and movie_scale:
                    yield _tkhd_duration(data, ts) / movie_scale
                elif inner == b"mdia":
                    for leaf, (ms, _me) in _boxes(data, ts, te):
                        if leaf == b"mdhd":
                            scale, duration = _scale_and_duration(data, ms)
                            if scale:
                                yield duration / scale
        elif name == b"mvex" and movie_scale:
            for inner, (ms, _me) in _boxes(data, s, e):
                if inner == b"mehd":
                    wide = data[ms] == 1
                    yield struct.unpack_from(">Q" if wide else ">I", data, ms + 4)[0] / movie_scale


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, tuple[int, int]]]:
    """The boxes between start and end: name and (body start, body end); stops at a broken one."""
    at = start
    while at + 8 <= end:
        size, name = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            if at + 16 > end:
                return
            size, header = struct.unpack_from(">Q", data, at + 8)[0], 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            return
        yield name, (at + header, at + size)
        at += size


def _scale_and_duration(data: bytes, at: int) -> tuple[int, int]:
    """mvhd and mdhd share their layout: version, flags, two times, then timescale and duration."""
    if data[at] == 1:
        return struct.unpack_from(">I", data, at + 20)[0], struct.unpack_from(">Q", data, at + 24)[0]
    scale, duration = struct.unpack_from(">II", data, at + 12)
    return scale, duration


def _tkhd_duration(data: bytes, at: int) -> int:
    """tkhd: version, flags, two times, the track id and a reserved word, then the duration."""
    if data[at] == 1:
        return int(struct.unpack_from(">Q", data, at + 28)[0])
    return int(struct.unpack_from(">I", data, at + 20)[0])
