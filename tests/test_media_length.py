"""ingest/media_length.py measures a file's playing length from its bytes: real files of each
format Telegram delivers (WAV and MP3 audio, Ogg Opus voice, FLAC, MP4 video and M4A), built here
byte by byte (no encoder, no network), each declared nothing; and the lies a sender can tell in a
header: a short MP4 movie header over a long track, an Opus or MP3 whose header claims less than
its bytes can hold, a 149-hour WAV header, garbage."""

from __future__ import annotations

import io
import struct
import wave

import pytest
from mutagen.ogg import OggPage

from bot import delivery_texts
from ingest.media_length import MAX_SECONDS, measure_seconds, measure_seconds_sync

pytestmark = pytest.mark.timeout(30)


# --- real files, built by hand ------------------------------------------------------------------


def wav(seconds: float, rate: int = 8000) -> bytes:
    """PCM through the standard library's wave module: 8-bit mono silence."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(rate)
        w.writeframes(b"\x80" * int(seconds * rate))
    return out.getvalue()


def mp3(seconds: float) -> bytes:
    """MPEG-1 Layer III frames at 128 kbit/s, 44.1 kHz (417 bytes and 1152 samples each), silent."""
    frame = b"\xff\xfb\x90\x00" + b"\x00" * 413
    return frame * round(seconds * 44_100 / 1152)


def ogg_opus(seconds: float, pre_skip: int = 312, padding: int = 0) -> bytes:
    """An Ogg Opus stream as Telegram's voice messages are: OpusHead, OpusTags, and audio pages
    whose last granule position (48 kHz samples, pre-skip included) gives the length."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, pre_skip, 48_000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 3) + b"trt" + struct.pack("<I", 0)
    pages: list[OggPage] = []
    for sequence, (packet, granule) in enumerate([(head, 0), (tags, 0)]):
        page = OggPage()
        page.serial, page.sequence, page.position, page.packets = 7, sequence, granule, [packet]
        page.first = sequence == 0
        pages.append(page)
    chunks = max(1, padding // 60_000 + 1)
    for index in range(chunks):
        page = OggPage()
        page.serial, page.sequence = 7, 2 + index
        page.position = int(seconds * 48_000) + pre_skip if index == chunks - 1 else 0
        page.packets = [b"\xfc" + b"\x00" * (min(padding, 60_000) if padding else 20)]
        page.last = index == chunks - 1
        pages.append(page)
    return b"".join(p.write() for p in pages)


def flac(seconds: float, rate: int = 44_100) -> bytes:
    """fLaC and its STREAMINFO block (the last metadata block): 20-bit rate, 36-bit sample count."""
    samples = int(seconds * rate)
    bits = (rate << 44) | (0 << 41) | (15 << 36) | samples  # mono, 16 bits per sample
    info = struct.pack(">HH", 4096, 4096) + (0).to_bytes(3, "big") * 2 + bits.to_bytes(8, "big") + b"\x00" * 16
    return b"fLaC" + bytes([0x80]) + len(info).to_bytes(3, "big") + info + b"\xff\xf8" + b"\x00" * 30


def box(name: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), name) + body


def mvhd(scale: int, duration: int) -> bytes:
    return box(b"mvhd", struct.pack(">IIIII", 0, 0, 0, scale, duration) + b"\x00" * 80)


def trak(kind: bytes, movie_duration: int, scale: int, duration: int) -> bytes:
    tkhd = box(b"tkhd", struct.pack(">IIIIII", 7, 0, 0, 1, 0, movie_duration) + b"\x00" * 60)
    mdhd = box(b"mdhd", struct.pack(">IIIII", 0, 0, 0, scale, duration) + b"\x00" * 4)
    hdlr = box(b"hdlr", struct.pack(">II", 0, 0) + kind + b"\x00" * 12 + b"\x00")
    return box(b"trak", tkhd + box(b"mdia", mdhd + hdlr))


def mp4(movie: float, tracks: list[tuple[bytes, float]] = (), brand: bytes = b"isom") -> bytes:  # type: ignore[assignment]
    """ftyp and moov (mvhd and the tracks' tkhd/mdhd) and an empty mdat: what a reader of lengths reads."""
    ftyp = box(b"ftyp", brand + struct.pack(">I", 512) + brand + b"mp41")
    moov = box(b"moov", mvhd(1000, int(movie * 1000)) + b"".join(
        trak(kind, int(seconds * 1000), 48_000 if kind == b"soun" else 90_000,
             int(seconds * (48_000 if kind == b"soun" else 90_000))) for kind, seconds in tracks))
    return ftyp + moov + box(b"mdat", b"\x00" * 64)


# --- what is measured ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "data", "mime"), [
    ("wav", wav(15), "audio/x-wav"),
    ("mp3", mp3(15), "audio/mpeg"),
    ("ogg opus voice", ogg_opus(15), "audio/ogg"),
    ("flac", flac(15), "audio/flac"),
    ("mp4 video with sound", mp4(15, [(b"vide", 15), (b"soun", 15)]), "video/mp4"),
    ("m4a", mp4(15, [(b"soun", 15)], brand=b"M4A "), "audio/mp4"),
    ("mp4 without tracks (a video note's header)", mp4(15), "video/mp4"),
])
async def test_a_15_second_file_of_each_format_measures_15_seconds(name: str, data: bytes, mime: str) -> None:
    seconds = await measure_seconds(data, mime)
    assert seconds == pytest.approx(15, abs=0.1), name


async def test_the_type_telegram_names_does_not_decide_what_the_bytes_are() -> None:
    assert await measure_seconds(wav(15), "application/octet-stream") == pytest.approx(15)
    assert await measure_seconds(wav(15), "video/mp4") == pytest.approx(15)


async def test_an_mp4_whose_movie_header_says_1_second_counts_its_longest_track() -> None:
    lying = mp4(1, [(b"vide", 15), (b"soun", 1)])
    assert await measure_seconds(lying, "video/mp4") == pytest.approx(15)
    sound_short = mp4(15, [(b"vide", 15), (b"soun", 1)])  # mutagen alone reports the sound track
    assert await measure_seconds(sound_short, "video/mp4") == pytest.approx(15)


async def test_an_opus_whose_last_granule_claims_1_second_plays_at_least_what_its_bytes_hold() -> None:
    """Opus carries at most 510 kbit/s: 960 KB cannot play in 1 s, whatever the granule says."""
    padded = ogg_opus(1, padding=960_000)
    seconds = await measure_seconds(padded, "audio/ogg")
    assert seconds is not None and seconds >= len(padded) * 8 / 510_000 > 15


async def test_an_mp3_measures_at_least_what_its_bytes_hold_at_320_kbits() -> None:
    data = mp3(15)
    seconds = await measure_seconds(data, "audio/mpeg")
    assert seconds is not None and seconds >= len(data) * 8 / 320_000


# --- what cannot be measured --------------------------------------------------------------------


@pytest.mark.parametrize(("name", "data", "mime"), [
    ("garbage", b"this is not a media file at all " * 200, "audio/mpeg"),
    ("garbage as video", bytes(range(256)) * 100, "video/mp4"),
    ("empty", b"", "audio/ogg"),
    ("a truncated wav", wav(15)[:30], "audio/x-wav"),
    ("a webm (EBML header)", b"\x1a\x45\xdf\xa3" + b"\x00" * 500, "video/webm"),
    ("an empty wav", wav(0), "audio/x-wav"),
    ("an mp4 without a moov", box(b"ftyp", b"isom\x00\x00\x02\x00isom") + box(b"mdat", b"\x00" * 100), "video/mp4"),
])
async def test_what_cannot_be_read_is_none(name: str, data: bytes, mime: str) -> None:
    assert await measure_seconds(data, mime) is None, name


def test_a_header_claiming_more_than_a_day_is_not_trusted() -> None:
    data = bytearray(wav(1))
    at = data.find(b"data")
    data[at + 4:at + 8] = struct.pack("<I", 0xFFFFFFF0)  # 4.29e9 samples at 8 kHz: 149 hours
    assert measure_seconds_sync(bytes(data), "audio/x-wav") is None
    assert measure_seconds_sync(mp4(MAX_SECONDS + 10, [(b"vide", 5)]), "video/mp4") is None


# --- what the user reads when the measurement ends a job ----------------------------------------


def test_a_too_long_or_unmeasurable_input_is_told_in_plain_words_with_the_money_back() -> None:
    for lang in ("ru", "en"):
        for reason in ("input_too_long", "input_unmeasurable"):
            key = delivery_texts.FAILURE_TEXT[reason]
            assert key in delivery_texts.TEXTS[lang], (lang, key)
            text = delivery_texts.failure(lang, reason, "money")
            assert text == delivery_texts.t(lang, key) + "\n" + delivery_texts.t(lang, "refund_money")
            assert delivery_texts.failure(lang, reason, "free").endswith(delivery_texts.t(lang, "refund_free"))
            assert delivery_texts.failure(lang, reason, "admin") == delivery_texts.t(lang, key)
    ru = delivery_texts.failure("ru", "input_too_long", "money", got=15.2, limit=15.0)
    assert ru.startswith("Ваш файл длится 16 с, а можно не больше 15 с") and "Деньги вернулись" in ru
    en = delivery_texts.failure("en", "input_too_long", "money", got=14.01, limit=1)
    assert en.startswith("Your file plays for 15 s, and at most 1 s fit") and "money is back" in en
    assert "{" not in delivery_texts.failure("en", "input_unmeasurable", "money", got=3, limit=1)
