"""The catalog (catalog/models/*.yaml) is what the bot sells: it loads, it covers what the product
promises, every id, input, option, limit and price matches KIE's reference
(tests/data/kie_models_reference.yaml), a bad entry stops the start with one clear line per
problem, and a price in kopecks is computed the same exact way everywhere."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml

import catalog
from catalog import Catalog, CatalogError, Field, Model, Pricing, load, user_price_kopecks
from catalog.model import ENDPOINTS, MEDIA, same
from tests.procs import ROOT

pytestmark = pytest.mark.timeout(60)

REFERENCE_FILE = Path(__file__).with_name("data") / "kie_models_reference.yaml"
JOBS = "POST /api/v1/jobs/createTask"

# The ids the earlier TRT bot sold that the reference lists (its two Kling avatars are now
# kling/ai-avatar-standard and -pro): every one must stay on sale.
LEGACY_IDS = [
    "sora-2-text-to-video", "sora-2-image-to-video", "sora-watermark-remover",
    "grok-imagine/image-to-video", "grok-imagine/text-to-video", "grok-imagine/text-to-image", "grok-imagine/upscale",
    "wan/2-6-text-to-video", "wan/2-6-image-to-video", "wan/2-6-video-to-video",
    "kling-2.6/image-to-video", "kling-2.6/text-to-video", "bytedance/seedance-1.5-pro",
    "hailuo/2-3-image-to-video-pro", "hailuo/2-3-image-to-video-standard",
    "kling/v2-5-turbo-text-to-video-pro", "kling/v2-5-turbo-image-to-video-pro",
    "wan/2-5-image-to-video", "wan/2-5-text-to-video", "infinitalk/from-audio", "wan/2-2-a14b-speech-to-video-turbo",
    "z-image", "flux-2/pro-image-to-image", "flux-2/flex-image-to-image", "flux-2/flex-text-to-image",
    "flux-2/pro-text-to-image", "seedream/4.5-text-to-image", "seedream/4.5-edit", "nano-banana-pro",
    "google/nano-banana", "google/nano-banana-edit", "google/imagen4-fast", "google/imagen4-ultra", "google/imagen4",
    "recraft/remove-background", "topaz/image-upscale", "elevenlabs/sound-effect-v2",
    "elevenlabs/text-to-speech-multilingual-v2", "elevenlabs/text-to-speech-turbo-2-5", "elevenlabs/audio-isolation",
    "kling/ai-avatar-standard", "kling/ai-avatar-pro",
]
# the families the issue names: every one a chat can collect inputs for has something to sell
FAMILIES = ["text_to_image", "image_edit", "text_to_video", "image_to_video", "video_to_video", "image_upscale",
            "video_upscale", "background_removal", "audio", "avatar", "music"]

# Option values the reference does not list (it gives the type but no enum or range) and the
# catalog offers anyway, each with where the values come from. Anything else must be in the
# reference's enum, or inside its minimum..maximum.
VALUES_BEYOND_REFERENCE = {
    ("grok-imagine/text-to-video", "aspect_ratio"): "no enum given; grok-imagine/image-to-video's enum",
    ("grok-imagine/text-to-video", "mode"): "no enum given; grok-imagine/image-to-video's enum (without spicy)",
    ("grok-imagine/text-to-video", "duration"): "a number without range; 6 and 10 s, Grok Imagine's lengths",
    ("grok-imagine/image-to-video", "duration"): "a number without range; 6 and 10 s, Grok Imagine's lengths",
    ("kling/v3-turbo-text-to-video", "duration"): "a string without enum; 5 and 10 of kling-3.0/video's 3..15",
    ("kling/v3-turbo-image-to-video", "duration"): "a string without enum; 5 and 10 of kling-3.0/video's 3..15",
    ("bytedance/seedance-1.5-pro", "duration"): "a number without range; 4, 8, 12 s, Seedance 1.5 Pro's lengths",
    ("bytedance/seedance-2", "duration"): "an integer with default 5 and no range; 5 and 10 s",
    ("bytedance/seedance-2-fast", "duration"): "an integer with default 5 and no range; 5 and 10 s",
    ("bytedance/seedance-2-mini", "duration"): "an integer with default 5 and no range; 5 and 10 s",
}
# A required reference input the catalog does not send, with the reason. (None so far: every
# required input is asked or sent with a fixed value.)
REQUIRED_LEFT_OUT: dict[tuple[str, str], str] = {}
# Where the reference names no file types, what the catalog accepts (API.md: jpeg/png/webp images).
DEFAULT_MIME = {
    "image": {"image/jpeg", "image/png", "image/webp"},
    "video": {"video/mp4", "video/quicktime", "video/x-matroska"},
    "audio": {"audio/mpeg", "audio/wav", "audio/x-wav", "audio/aac", "audio/mp4", "audio/ogg"},
}
DEFAULT_MAX_BYTES = 10_000_000  # API.md: images usually up to 10 MB

Price = tuple[dict[str, Any], str, str]  # when, credits (as written), unit


def _grid(first: str, second: str, table: dict[str, dict[str, str]]) -> list[Price]:
    """Per-task prices laid out like the reference's "720p 5s 70 / 10s 140; 1080p ..." lines."""
    return [({first: a, second: b}, credits, "task") for a, row in table.items() for b, credits in row.items()]

# Prices the parser below cannot read from the reference's line, or reads differently: the
# expectation written out, from the line quoted beside it.
EXPECTED_PRICES: dict[str, list[Price]] = {
    # "1K/2K 18 cr; 4K 24 cr"
    "nano-banana-pro": [({}, "18", "task"), ({"resolution": "4K"}, "24", "task")],
    # "4 cr per task of 6 images; enable_pro/quality 5 cr per 4 images"
    "grok-imagine/text-to-image": [({}, "4", "task"), ({"enable_pro": True}, "5", "task")],
    # "<=2K 10 cr; 4K 20 cr; 8K 40 cr": by the result's size; the catalog takes images of at most
    # 2048 px, so factor 1 stays within 2K, 2 within 4K, 4 within 8K (never below KIE's price)
    "topaz/image-upscale": [({"upscale_factor": "1"}, "10", "task"), ({"upscale_factor": "2"}, "20", "task"),
                            ({"upscale_factor": "4"}, "40", "task")],
    # "0.24 cr/s" of a length the model picks (at most 22 s): the most it can cost, 0.24 x 22
    "elevenlabs/sound-effect-v2": [({}, "5.28", "task")],
    # "per second: 480p 1.75 (3.5 w/ audio); 720p 3.5 (7); 1080p 7.5 (15) cr/s"
    "bytedance/seedance-1.5-pro": [
        ({"resolution": "480p"}, "1.75", "second"), ({"resolution": "480p", "generate_audio": True}, "3.5", "second"),
        ({"resolution": "720p"}, "3.5", "second"), ({"resolution": "720p", "generate_audio": True}, "7", "second"),
        ({"resolution": "1080p"}, "7.5", "second"), ({"resolution": "1080p", "generate_audio": True}, "15", "second")],
    # "per second: 480p 19 (11.4 w/ video input); 720p 41 (25); 1080p 102 (62); 4K 208 (128) cr/s": no video input
    "bytedance/seedance-2": [({"resolution": "480p"}, "19", "second"), ({"resolution": "720p"}, "41", "second"),
                             ({"resolution": "1080p"}, "102", "second"), ({"resolution": "4k"}, "208", "second")],
    "bytedance/seedance-2-fast": [({"resolution": "480p"}, "15.5", "second"),
                                  ({"resolution": "720p"}, "33", "second")],
    "bytedance/seedance-2-mini": [({"resolution": "480p"}, "9.5", "second"),
                                  ({"resolution": "720p"}, "20.5", "second")],
    # "720p 5s 16 / 10s 36; 1080p 5s 36 / 10s 72 cr"
    "bytedance/v1-pro-fast-image-to-video": _grid("resolution", "duration", {
        "720p": {"5": "16", "10": "36"}, "1080p": {"5": "36", "10": "72"}}),
    # "5s: 480p 14 / 720p 30 / 1080p 70 cr; 10s double"
    "bytedance/v1-pro-text-to-video": _grid("resolution", "duration", {
        "480p": {"5": "14", "10": "28"}, "720p": {"5": "30", "10": "60"}, "1080p": {"5": "70", "10": "140"}}),
    # "5s: 480p 10 / 720p 22.5 / 1080p 50 cr; 10s double"
    "bytedance/v1-lite-text-to-video": _grid("resolution", "duration", {
        "480p": {"5": "10", "10": "20"}, "720p": {"5": "22.5", "10": "45"}, "1080p": {"5": "50", "10": "100"}}),
    # "no video input: 720p/1080p 4s 90, 6s 120, 8s 150, 10s 180 cr; 4K 4s 210 … 10s 300 cr": 4K's
    # 6 and 8 s are elided in the reference, so the catalog offers 720p and 1080p only
    "gemini-omni-video": [({"duration": "4"}, "90", "task"), ({"duration": "6"}, "120", "task"),
                          ({"duration": "8"}, "150", "task"), ({"duration": "10"}, "180", "task")],
    # "6s 768P 45; 10s 768P 90; 6s 1080P 80 cr" (10 s at 1080P is not offered: forbid)
    "hailuo/2-3-image-to-video-pro": _grid("duration", "resolution", {
        "6": {"768P": "45", "1080P": "80"}, "10": {"768P": "90"}}),
    # "6s 768P 30; 10s 768P 50; 6s 1080P 50 cr"
    "hailuo/2-3-image-to-video-standard": _grid("duration", "resolution", {
        "6": {"768P": "30", "1080P": "50"}, "10": {"768P": "50"}}),
    # "57 cr (6s 1080p)"
    "hailuo/02-text-to-video-pro": [({}, "57", "task")],
    "hailuo/02-image-to-video-pro": [({}, "57", "task")],
    # "6s 30; 10s 50 cr (768p)"
    "hailuo/02-text-to-video-standard": [({"duration": "6"}, "30", "task"), ({"duration": "10"}, "50", "task")],
    # "512P 6s 12 / 10s 20; 768P 10s 50 (6s ~30) cr": the approximate 30 is also
    # hailuo/02-text-to-video-standard's 6 s at 768p
    "hailuo/02-image-to-video-standard": _grid("resolution", "duration", {
        "512P": {"6": "12", "10": "20"}, "768P": {"6": "30", "10": "50"}}),
    # "480p 3 cr/s; 720p 12 cr/s (up to 15 s)": seconds of the audio
    "infinitalk/from-audio": [({"resolution": "480p"}, "3", "second"), ({"resolution": "720p"}, "12", "second")],
    # "5s 55 (110 with sound); 10s 110 (220 with sound) cr"
    "kling-2.6/text-to-video": [
        ({"duration": "5"}, "55", "task"), ({"duration": "5", "sound": True}, "110", "task"),
        ({"duration": "10"}, "110", "task"), ({"duration": "10", "sound": True}, "220", "task")],
    "kling-2.6/image-to-video": [
        ({"duration": "5"}, "55", "task"), ({"duration": "5", "sound": True}, "110", "task"),
        ({"duration": "10"}, "110", "task"), ({"duration": "10", "sound": True}, "220", "task")],
    # "8 cr/s (720p, ≤15 s)", "16 cr/s (1080p, ≤15 s)": seconds of the audio
    "kling/ai-avatar-standard": [({}, "8", "second")],
    "kling/ai-avatar-pro": [({}, "16", "second")],
    # "std(720p) 14 cr/s (20 with sound); pro(1080p) 18 cr/s (27 with sound); 4K 67 cr/s"
    "kling-3.0/video": [
        ({"mode": "std"}, "14", "second"), ({"mode": "std", "sound": True}, "20", "second"),
        ({"mode": "pro"}, "18", "second"), ({"mode": "pro", "sound": True}, "27", "second"),
        ({"mode": "4K"}, "67", "second")],
    # "1x/2x 8 cr/s; 4x 14 cr/s": seconds of the video
    "topaz/video-upscale": [({"upscale_factor": "1"}, "8", "second"), ({"upscale_factor": "2"}, "8", "second"),
                            ({"upscale_factor": "4"}, "14", "second")],
    # "720p 5s 70 / 10s 140 / 15s 210; 1080p 5s 104.5 / 10s 209.5 / 15s 315 cr"
    "wan/2-6-text-to-video": _grid("resolution", "duration", {
        "720p": {"5": "70", "10": "140", "15": "210"}, "1080p": {"5": "104.5", "10": "209.5", "15": "315"}}),
    # "720p 5s 70 / 10s 140; 1080p 5s 104.5 / 10s 209.5 cr"
    "wan/2-6-video-to-video": _grid("resolution", "duration", {
        "720p": {"5": "70", "10": "140"}, "1080p": {"5": "104.5", "10": "209.5"}}),
    # "5s: 480p 40 / 580p 60 / 720p 80 cr" (the enum has no 580p)
    "wan/2-2-a14b-text-to-video-turbo": [({"resolution": "480p"}, "40", "task"),
                                         ({"resolution": "720p"}, "80", "task")],
    "wan/2-2-a14b-image-to-video-turbo": [({"resolution": "480p"}, "40", "task"),
                                          ({"resolution": "720p"}, "80", "task")],
    # "480p 12 / 580p 18 / 720p 24 cr/s": the catalog fixes 80 frames at 16 fps, 5 s
    "wan/2-2-a14b-speech-to-video-turbo": [({"resolution": "480p"}, "60", "task"),
                                           ({"resolution": "580p"}, "90", "task"),
                                           ({"resolution": "720p"}, "120", "task")],
    # "720p 5s 60 / 10s 120; 1080p 5s 100 / 10s 200 cr"
    "wan/2-5-text-to-video": _grid("resolution", "duration", {
        "720p": {"5": "60", "10": "120"}, "1080p": {"5": "100", "10": "200"}}),
    # "10s 20 / 15s 25 cr? [F, Dec-2025; not in 2026 table]": the reference doubts it too
    "sora-2-text-to-video": [({"n_frames": "10"}, "20", "task"), ({"n_frames": "15"}, "25", "task")],
    "sora-2-image-to-video": [({"n_frames": "10"}, "20", "task"), ({"n_frames": "15"}, "25", "task")],
    # "standard 10s 150 / 15s 270; high 10s 330 / 15s 630 cr"
    "sora-2-pro-text-to-video": _grid("size", "n_frames", {
        "standard": {"10": "150", "15": "270"}, "high": {"10": "330", "15": "630"}}),
}
EXPECTED_PRICES["wan/2-5-image-to-video"] = EXPECTED_PRICES["wan/2-5-text-to-video"]  # the same line
EXPECTED_PRICES["sora-2-pro-image-to-video"] = EXPECTED_PRICES["sora-2-pro-text-to-video"]  # the same line
EXPECTED_PRICES["bytedance/v1-pro-image-to-video"] = EXPECTED_PRICES["bytedance/v1-pro-text-to-video"]
EXPECTED_PRICES["bytedance/v1-lite-image-to-video"] = EXPECTED_PRICES["bytedance/v1-lite-text-to-video"]
# "same as wan/2-6-text-to-video"
EXPECTED_PRICES["wan/2-6-image-to-video"] = EXPECTED_PRICES["wan/2-6-text-to-video"]
# Expectations whose numbers are derived, not quoted ("10s double", "same as", a length times a rate).
DERIVED = {"topaz/image-upscale", "elevenlabs/sound-effect-v2", "bytedance/v1-pro-text-to-video",
           "bytedance/v1-lite-text-to-video", "bytedance/v1-pro-image-to-video", "bytedance/v1-lite-image-to-video",
           "wan/2-6-image-to-video", "wan/2-2-a14b-speech-to-video-turbo", "hailuo/02-image-to-video-standard"}


@pytest.fixture(scope="module")
def shipped() -> Catalog:
    return load()


@pytest.fixture(scope="module")
def reference() -> dict[str, dict[str, Any]]:
    entries = yaml.safe_load(REFERENCE_FILE.read_text(encoding="utf-8"))
    return {entry["id"]: entry for entry in entries}


def jobs_models(shipped: Catalog) -> list[Model]:
    """The jobs API's models (the dedicated families' are held by tests/test_catalog_dedicated.py)."""
    return [m for m in shipped.everything if m.endpoint == "jobs"]


# --- the real catalog -------------------------------------------------------------------------


def test_the_shipped_catalog_loads_with_enough_models(shipped: Catalog) -> None:
    assert len(shipped.models) >= 80
    assert catalog.shipped() is catalog.shipped(), "loaded once per process"
    assert len({m.id for m in shipped.models}) == len(shipped.models)


def test_every_family_of_the_issue_has_models(shipped: Catalog) -> None:
    menu = [f.id for f in catalog.FAMILIES]
    assert [f.id for f in shipped.families()] == sorted(FAMILIES, key=menu.index), "all of them, in menu order"
    for family in FAMILIES:
        assert shipped.in_family(family), family
    audio = {m.id for m in shipped.in_family("audio")}
    assert any("text-to-speech" in i for i in audio) and any("sound-effect" in i for i in audio)


@pytest.mark.parametrize("model_id", LEGACY_IDS)
def test_every_legacy_id_is_on_sale(shipped: Catalog, reference: dict[str, dict[str, Any]], model_id: str) -> None:
    assert model_id in reference, "the legacy list names only ids the reference lists"
    assert model_id in shipped


def test_lists_start_with_what_people_use(shipped: Catalog) -> None:
    for family in shipped.families():
        models = shipped.in_family(family)
        flags = [m.popular for m in models]
        assert flags == sorted(flags, reverse=True), f"{family.id}: popular first"
        assert models[0].popular, f"{family.id} starts with a popular model"
        for popular in (True, False):
            orders = [m.order for m in models if m.popular is popular]
            assert orders == sorted(orders), f"{family.id}: then by order"
    assert [m.family for m in shipped.models] == sorted((m.family for m in shipped.models),
                                                        key=[f.id for f in catalog.FAMILIES].index)


def test_free_tier_offers_only_the_cheapest(shipped: Catalog) -> None:
    free = [(m.id, s.credits) for m in shipped.models for s in m.skus if s.free]
    assert free, "something is offered on the free tier"
    assert all(credits <= 1 for _, credits in free), free


def test_asked_fields_have_titles_and_texts_are_tidy(shipped: Catalog) -> None:
    for model in shipped.models:
        for text in (model.title, model.description):
            assert text.ru != text.en or model.title is text, f"{model.id}: an untranslated description"
            assert text.get("ru") == text.ru and text.get("en") == text.en and text.get(None) == text.ru
        assert re.search("[а-яё]", model.description.ru, re.I), f"{model.id}: the Russian description is Russian"
        for item in model.fields:
            assert not item.ask or item.title is not None, f"{model.id}.{item.name}"


def test_no_helper_models_and_only_known_endpoints(shipped: Catalog, reference: dict[str, dict[str, Any]]) -> None:
    """The jobs API's models here; the dedicated families' are held by tests/test_catalog_dedicated.py."""
    for model in shipped.everything:
        assert model.endpoint in ENDPOINTS, model.id
        if model.endpoint == "jobs":
            assert not model.hidden and not model.actions, model.id
            assert not str(reference[model.id]["gen_type"]).startswith("helper"), model.id


def test_timeouts_follow_the_output(shipped: Catalog) -> None:
    """API.md: give up after 10-15 minutes for video, a few minutes for images."""
    for model in shipped.models:
        if model.output == "video":
            assert 600 <= model.timeout_seconds <= 1800, model.id
        else:
            assert 120 <= model.timeout_seconds <= 900, model.id


# --- every id, field, option and limit against the reference ----------------------------------


def _ref_max_bytes(raw: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*MB", raw)
    assert match, raw
    return int(Decimal(match.group(1)) * 1_000_000)


def _type_fits(item: Field, kie_type: str) -> bool:
    values = item.values() if item.kind == "enum" else ()
    if kie_type == "string":
        return (item.kind in ("prompt", "text", "task") or (item.kind in MEDIA and not item.array)
                or (item.kind == "enum" and all(isinstance(v, str) for v in values)))
    if kie_type == "boolean":
        return item.kind == "bool"
    if kie_type == "integer":
        return item.kind == "int" or (item.kind == "enum" and all(type(v) is int for v in values))
    if kie_type == "number":
        return item.kind in ("int", "float") or (
            item.kind == "enum" and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values))
    if kie_type == "array<string>":
        return item.kind in MEDIA and item.array
    return item.kind == "json"  # array<object> and richer shapes are only ever sent as fixed values


def _field_problems(model: Model, item: Field, param: dict[str, Any]) -> list[str]:
    where = f"{model.id}.{item.name}"
    found = []
    if not _type_fits(item, param["type"]):
        found.append(f"{where}: a {item.kind} field (array={item.array}) does not fit KIE's {param['type']}")
    if item.kind == "enum":
        listed = param.get("enum")
        if listed is not None:
            shown = [v for v in listed if not (isinstance(v, str) and v.startswith("…"))]
            found += [f"{where}: option {v!r} is not in KIE's enum {shown}"
                      for v in item.values() if not any(same(v, s) for s in shown)]
        elif "minimum" in param and "maximum" in param:
            found += [f"{where}: option {v!r} is outside {param['minimum']}..{param['maximum']}"
                      for v in item.values() if not param["minimum"] <= v <= param["maximum"]]
        elif (model.id, item.name) not in VALUES_BEYOND_REFERENCE:
            found.append(f"{where}: the reference lists no values: say where they come from (VALUES_BEYOND_REFERENCE)")
    if item.kind in ("prompt", "text"):
        if "maxLength" in param and (item.max_length or 0) > param["maxLength"]:
            found.append(f"{where}: max_length {item.max_length} exceeds KIE's {param['maxLength']}")
        if "minLength" in param and (item.min_length or 0) < param["minLength"]:
            found.append(f"{where}: min_length {item.min_length} is below KIE's {param['minLength']}")
    if item.kind in ("int", "float"):
        if "minimum" in param and (item.minimum is None or item.minimum < param["minimum"]):
            found.append(f"{where}: min {item.minimum} is below KIE's {param['minimum']}")
        if "maximum" in param and (item.maximum is None or item.maximum > param["maximum"]):
            found.append(f"{where}: max {item.maximum} exceeds KIE's {param['maximum']}")
    if item.media:
        if "maxItems" in param and item.max_items > param["maxItems"]:
            found.append(f"{where}: max_items {item.max_items} exceeds KIE's {param['maxItems']}")
        if "minItems" in param and item.required and item.min_items < param["minItems"]:
            found.append(f"{where}: min_items {item.min_items} is below KIE's {param['minItems']}")
        limit = _ref_max_bytes(param["max_file"]) if "max_file" in param else DEFAULT_MAX_BYTES
        if item.max_bytes is None or item.max_bytes > limit:
            found.append(f"{where}: max_bytes {item.max_bytes} exceeds KIE's {limit}")
        allowed = set(param["mime"].split(",")) if "mime" in param else DEFAULT_MIME[item.kind]
        if not set(item.mime) <= allowed:
            found.append(f"{where}: {sorted(set(item.mime) - allowed)} are not among KIE's types {sorted(allowed)}")
    return found


def test_every_model_field_option_and_limit_is_kies(shipped: Catalog, reference: dict[str, dict[str, Any]]) -> None:
    problems = []
    for model in jobs_models(shipped):
        entry = reference.get(model.id)
        if entry is None or entry["endpoint"] != JOBS:
            problems.append(f"{model.id}: not a jobs/createTask model in the reference")
            continue
        params = entry["params"]
        for item in model.fields:
            if item.name not in params:
                problems.append(f"{model.id}: field {item.name!r} is not one of KIE's inputs {sorted(params)}")
                continue
            problems += _field_problems(model, item, params[item.name])
        names = {f.name for f in model.fields}
        for name, param in params.items():
            if not param.get("required"):
                continue
            if name not in names:
                if (model.id, name) not in REQUIRED_LEFT_OUT:
                    problems.append(f"{model.id}: KIE requires {name!r} and the catalog never sends it")
                continue
            item = model.field(name)
            if not item.required and item.default is None:
                problems.append(f"{model.id}: KIE requires {name!r}, the catalog may leave it out")
    assert not problems, "\n".join(problems)


def test_the_allow_lists_name_real_fields(shipped: Catalog) -> None:
    for model_id, name in [*VALUES_BEYOND_REFERENCE, *REQUIRED_LEFT_OUT]:
        assert model_id in shipped, model_id
        if (model_id, name) in VALUES_BEYOND_REFERENCE:
            assert shipped.model(model_id).field(name).kind == "enum"


# --- prices against the reference -------------------------------------------------------------


def parse_price(line: str, model: Model) -> list[Price] | None:
    """The reference's plain price lines, or None: a flat price ("4 cr ($0.02) [S]", "0.8 cr/image",
    "0.2 cr/s", "6 cr per 1000 chars"), or one price per value of one option ("1K 5 cr; 2K 7 cr",
    "TURBO 3.5 / BALANCED 7 / QUALITY 10 cr", "480p 1.6 cr/s; 720p 3 cr/s", "5s 42; 10s 84 cr")."""
    text = re.sub(r"\[[^\]]*\]", "", line)
    text = re.sub(r"\(\$[^)]*\)", "", text).strip()
    if "(" in text or "~" in text or "?" in text:
        return None
    chars = re.fullmatch(r"(\d+(?:\.\d+)?) cr per 1000 chars", text)
    if chars:
        return [({}, chars.group(1), "1000_chars")]
    unit = "second" if "cr/s" in text else "task"
    text = re.sub(r"\s*cr(/s|/image)?\s*", " ", text).strip()
    flat = re.fullmatch(r"\d+(?:\.\d+)?", text)
    if flat:
        return [({}, text, unit)]
    prices: list[Price] = []
    for part in re.split(r"\s*[;/]\s*", text):
        match = re.fullmatch(r"(\S+) (\d+(?:\.\d+)?)", part)
        if match is None:
            return None
        token = match.group(1)
        hits = [(f.name, v) for f in model.fields if f.kind in ("enum", "bool") for v in f.values()
                if token in (str(v), f"{v}s")]
        if len(hits) != 1:
            return None
        name, value = hits[0]
        prices.append(({name: value}, match.group(2), unit))
    return prices


def _expected(prices: list[Price], values: dict[str, Any]) -> tuple[Decimal, str] | None:
    matching = [p for p in prices if all(k in values and same(values[k], v) for k, v in p[0].items())]
    if not matching:
        return None
    most = max(len(p[0]) for p in matching)
    best = [p for p in matching if len(p[0]) == most]
    return (Decimal(best[0][1]), best[0][2]) if len(best) == 1 else None


def test_every_price_matches_the_reference(shipped: Catalog, reference: dict[str, dict[str, Any]]) -> None:
    problems = []
    for model in jobs_models(shipped):
        line = reference[model.id]["price"]
        prices = EXPECTED_PRICES.get(model.id) or parse_price(line, model)
        if prices is None:
            problems.append(f"{model.id}: cannot read {line!r}: write the expectation into EXPECTED_PRICES")
            continue
        names = model.price_fields
        for combination in itertools.product(*(model.field(n).values() for n in names)):
            values = {**model.defaults(), **dict(zip(names, combination, strict=True))}
            if model.forbidden(values):
                continue
            sku = model.sku_for(values)
            expected = _expected(prices, values)
            if expected != (sku.credits, sku.unit):
                problems.append(f"{model.id} {dict(zip(names, combination, strict=True))}: catalog "
                                f"{sku.credits} per {sku.unit}, reference {expected} from {line!r}")
    assert not problems, "\n".join(problems)


def test_written_out_prices_quote_the_reference(shipped: Catalog, reference: dict[str, dict[str, Any]]) -> None:
    """An expectation is the reference's own numbers, unless it says how it is derived."""
    for model_id, prices in EXPECTED_PRICES.items():
        assert model_id in shipped, f"{model_id}: an expectation for a model not on sale"
        if model_id in DERIVED:
            continue
        quoted = set(re.findall(r"\d+(?:\.\d+)?", reference[model_id]["price"]))
        for _, credits, _ in prices:
            assert credits in quoted, f"{model_id}: {credits} is not in {reference[model_id]['price']!r}"


def test_the_price_parser_reads_the_plain_lines(shipped: Catalog) -> None:
    flux = shipped.model("flux-2/pro-text-to-image")
    assert parse_price("1K 5 cr ($0.025); 2K 7 cr ($0.035) [S]", flux) == [
        ({"resolution": "1K"}, "5", "task"), ({"resolution": "2K"}, "7", "task")]
    grok = shipped.model("grok-imagine/text-to-video")
    assert parse_price("480p 1.6 cr/s ($0.008/s); 720p 3 cr/s ($0.015/s) [S]", grok) == [
        ({"resolution": "480p"}, "1.6", "second"), ({"resolution": "720p"}, "3", "second")]
    assert parse_price("0.8 cr/image ($0.004) [S]", shipped.model("z-image")) == [({}, "0.8", "task")]
    assert parse_price("~3.5 cr [F, Dec-2025]", flux) is None, "approximate prices are written out by hand"
    assert parse_price("5s 55 (110 with sound); 10s 110 (220 with sound) cr [S]", flux) is None


# --- the price a user pays --------------------------------------------------------------------


@pytest.mark.parametrize(("credits", "expected"), [
    (5, 500), ("7.5", 800), (Decimal("0.8"), 100), ("6.5", 700), ("104.5", 10500), ("0.5", 100), (0, 0),
    ("5.01", 600), ("4.99", 500), (Fraction(1, 3), 100), ("1", 100), ("10", 1000),
])
def test_user_price_is_rounded_up_to_whole_rubles(credits: Any, expected: int) -> None:
    assert user_price_kopecks(credits, 50, 2.0) == expected


def test_user_price_is_exact_where_floats_are_not() -> None:
    # 0.1 + 0.2 style drift would make these 1 kopeck over a ruble and round a whole ruble up
    assert user_price_kopecks("0.3", 100, 1.0) == 100  # 30 kopecks -> 1 ruble
    assert user_price_kopecks("3", 100, "1.1") == 400  # 330 kopecks; float 3*100*1.1 = 330.00000000000006
    assert user_price_kopecks("2", 50, 1.1) == 200  # 110 -> 200, float markup read as written
    assert user_price_kopecks("1", 100, 1.0) == 100  # exactly one ruble stays one ruble
    assert user_price_kopecks("10", 10, "1.5") == 200  # 150 -> 200
    for credits in ("0.24", "5.28", "22.5", "209.5", "0.2", "1.75"):
        for kopecks, markup in ((50, 2.0), (37, 1.3), (1, 1.0), (75, "2.5")):
            price = user_price_kopecks(credits, kopecks, markup)
            cost = Fraction(credits) * kopecks
            exact = cost * Fraction(str(markup))
            assert price % 100 == 0 and exact <= price < exact + 100, (credits, kopecks, markup)
            assert price >= cost, "never below what KIE costs us"


def test_bad_pricing_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        user_price_kopecks(1, 0, 2.0)
    with pytest.raises(ValueError):
        user_price_kopecks(1, 50, 0.5)
    with pytest.raises(ValueError):
        Pricing(50, "0.9")
    assert Pricing(50, 2.0).kopecks("7.5") == 800


def test_model_prices(shipped: Catalog) -> None:
    kling = shipped.model("kling-2.6/text-to-video")
    assert kling.credits({}) == 55, "the defaults: 5 s without sound"
    assert kling.credits({"duration": "10", "sound": True}) == 220
    grok = shipped.model("grok-imagine/text-to-video")
    assert grok.credits({"resolution": "720p", "duration": 10}) == 30
    assert grok.credits({}) == Decimal("9.6"), "480p for 6 s"
    avatar = shipped.model("kling/ai-avatar-standard")
    assert avatar.credits({}, seconds={"audio_url": 7.2}) == 64, "8 a second, a started second counts"
    assert avatar.max_credits({}) == 120, "15 s at most"
    with pytest.raises(ValueError):
        avatar.credits({})
    speech = shipped.model("elevenlabs/text-to-speech-multilingual-v2")
    assert speech.credits({"text": "a" * 500}) == 6
    assert speech.max_credits({}) == 60, "KIE's 5,000 characters at most, 12 credits per started 1,000"
    hailuo = shipped.model("hailuo/2-3-image-to-video-pro")
    assert hailuo.forbidden({"duration": "10", "resolution": "1080P"})
    assert not hailuo.forbidden({"duration": "10", "resolution": "768P"})
    with pytest.raises(LookupError):
        hailuo.sku_for({"duration": "10", "resolution": "1080P"})
    pricing = Pricing(50, 2.0)
    assert pricing.kopecks(shipped.model("z-image").credits({})) == 100
    assert pricing.kopecks(shipped.model("wan/2-6-text-to-video").credits({"resolution": "1080p"})) == 10500


def test_models_say_what_is_sent(shipped: Catalog) -> None:
    z = shipped.model("z-image")
    assert z.defaults() == {"aspect_ratio": "1:1", "nsfw_checker": True}
    kling = shipped.model("kling-3.0/video")
    assert kling.defaults()["multi_prompt"] == [] and kling.field("multi_prompt").kind == "json"
    assert [f.name for f in kling.fields if f.ask][:2] == ["prompt", "image_urls"], "asked in the file's order"
    upscale = shipped.model("grok-imagine/upscale").field("task_id")
    assert upscale.kind == "task" and "grok-imagine/text-to-video" in upscale.sources
    assert shipped.model("google/nano-banana-edit").field("image_urls").max_bytes == 10_000_000
    assert shipped.model("qwen2/image-edit").field("image_url").array is False
    with pytest.raises(KeyError):
        shipped.model("no/such-model")
    with pytest.raises(KeyError):
        z.field("seed")


def test_the_catalog_needs_no_telegram_or_database_library() -> None:
    probe = ("import sys\n"
             "for name in ('aiogram', 'asyncpg', 'aiohttp'):\n"
             "    sys.modules[name] = None  # any import of them now fails\n"
             "import catalog\n"
             "print(len(catalog.load().models))\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 80


# --- a bad catalog stops the start, one line per problem --------------------------------------

GOOD = """
labels:
  aspect_ratio:
    '1:1': {ru: Квадрат, en: Square}
    '16:9': {ru: Широкий, en: Wide}
models:
  - id: test/model
    family: text_to_image
    title: {ru: Тест, en: Test}
    description: {ru: Тестовая модель, en: A test model}
    fields:
      - {name: prompt, kind: prompt, required: true, max_length: 100, title: {ru: Описание, en: Prompt}}
      - {name: aspect_ratio, kind: enum, default: '1:1', options: ['1:1', '16:9'], title: {ru: Формат, en: Ratio}}
    skus:
      - {when: {aspect_ratio: '1:1'}, credits: 1}
      - {when: {aspect_ratio: '16:9'}, credits: 2}
"""


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "models.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        load(path)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def test_a_good_small_catalog_loads(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(GOOD, encoding="utf-8")
    loaded = load(path)
    assert [m.id for m in loaded.models] == ["test/model"]
    assert loaded.model("test/model").credits({"aspect_ratio": "16:9"}) == 2
    assert load(tmp_path).models == loaded.models, "a directory loads every *.yaml in it"


@pytest.mark.parametrize(("change", "expected"), [
    (("    family: text_to_image\n", "    family: text_to_image\n    colour: blue\n"),
     "model 'test/model': unknown key 'colour'"),
    (("max_length: 100,", "max_length: 100, maxlen: 5,"), "field 'prompt': unknown key 'maxlen' for a prompt field"),
    (("options: ['1:1', '16:9']", "options: ['1:1', '16:9', '4:3']"),
     "field 'aspect_ratio': enum value '4:3' has no label"),
    (("      - {when: {aspect_ratio: '16:9'}, credits: 2}\n", "      - {when: {aspect_ratio: '16:9'}}\n"),
     "skus[1]: has no credits"),
    (("credits: 2}", "credits: -2}"), "skus[1]: credits must be a positive number"),
    (("      - {when: {aspect_ratio: '16:9'}, credits: 2}\n", ""), "no SKU prices aspect_ratio='16:9'"),
    (("      - {when: {aspect_ratio: '16:9'}, credits: 2}\n", "      - {credits: 2}\n      - {credits: 3}\n"),
     "several SKUs price aspect_ratio='16:9' equally"),
    (("{name: prompt, kind: prompt, required: true,", "{name: prompt, kind: prompt, required: true, ask: false,"),
     "field 'prompt': is required, but the wizard cannot ask for it (ask: false) and it has no default"),
    (("      - {name: prompt,", "      - {name: shots, kind: json, required: true}\n      - {name: prompt,"),
     "field 'shots': is required, but the wizard cannot ask for it"),
    (("kind: prompt", "kind: hologram"), "field 'prompt': unknown kind 'hologram'"),
    (("family: text_to_image", "family: cooking"), "unknown family 'cooking'"),
    (("default: '1:1'", "default: '4:3'"), "default '4:3' is not one of the options"),
    (("{when: {aspect_ratio: '1:1'}", "{when: {aspect_ratio: '2:1'}"), "'2:1' is not a value of field 'aspect_ratio'"),
    (("{when: {aspect_ratio: '1:1'}", "{when: {prompt: 'x'}"), "field 'prompt' is a prompt: only enum and bool"),
    (("credits: 1}", "credits: 1, unit: second}"), "unit second needs `of`"),
    (("    title: {ru: Тест, en: Test}\n", "    title: {ru: Тест}\n"), "title: must be {ru: ..., en: ...}"),
    (("max_length: 100,", ""), "max_length must be a whole number of characters"),
    (("default: '1:1', options", "options"), "field 'aspect_ratio' sets the price but may be left unset"),
    (("    title: {ru: Тест, en: Test}\n", "    title: {ru: Тест, en: Test}\n    title: {ru: Тест, en: Test}\n"),
     "key 'title' is given twice"),
])
def test_each_bad_entry_is_named(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in GOOD
    found = problems_of(tmp_path, GOOD.replace(old, new, 1))
    assert any(expected in line for line in found), found
    assert all("\n" not in line for line in found)


def test_a_duplicate_id_is_named_with_both_places(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(GOOD.split("models:")[0].replace("labels:", "labels: {}\nx:").split("x:")[0]
                                     + "models:" + GOOD.split("models:")[1], encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        load(tmp_path)
    assert caught.value.problems == ["b.yaml: model 'test/model': duplicate id 'test/model' (first in a.yaml)"]


def test_every_problem_is_reported_together(tmp_path: Path) -> None:
    bad = (GOOD.replace("    family: text_to_image\n", "    family: text_to_image\n    colour: blue\n")
           .replace("options: ['1:1', '16:9']", "options: ['1:1', '16:9', '4:3']")
           .replace("{when: {aspect_ratio: '16:9'}, credits: 2}", "{when: {aspect_ratio: '16:9'}}")
           + "  - id: test/model\n    family: nowhere\n")
    found = problems_of(tmp_path, bad)
    for expected in ("unknown key 'colour'", "enum value '4:3' has no label", "skus[1]: has no credits",
                     "duplicate id 'test/model'", "unknown family 'nowhere'"):
        assert any(expected in line for line in found), (expected, found)


def test_unreadable_files_are_problems_too(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "models: [")[0].startswith("models.yaml: cannot be read:")
    assert "unknown key 'model'" in problems_of(tmp_path, "model: []")[0]
    assert problems_of(tmp_path, "- 1")[0] == "models.yaml: must be a mapping with a `models` list"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CatalogError, match="no catalog files"):
        load(empty)


def test_an_unquoted_ratio_is_caught(tmp_path: Path) -> None:
    """YAML 1.1 reads 16:9 unquoted as the number 969: the missing label gives it away."""
    found = problems_of(tmp_path, GOOD.replace("options: ['1:1', '16:9']", "options: ['1:1', 16:9]"))
    assert any("enum value 969 has no label" in line for line in found), found


def test_a_broken_catalog_stops_the_start(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Like a bad setting: exit code 2, one line per problem, before anything else starts."""
    from commands import main

    def broken() -> Catalog:
        raise CatalogError(["a.yaml: model 'x': unknown key 'colour'", "a.yaml: model 'y': skus[0]: has no credits"])

    monkeypatch.setattr(catalog, "shipped", broken)
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    assert main.execute("migrate", 0.0) == 2
    err = capsys.readouterr().err
    assert "the catalog (catalog/models/*.yaml) has problems" in err
    assert "  - a.yaml: model 'x': unknown key 'colour'\n  - a.yaml: model 'y': skus[0]: has no credits" in err
    assert "Traceback" not in err


def test_broken_subscription_plans_stop_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A plan naming a model the catalog lacks would sell an allowance nobody can use: exit 2."""
    from commands import main

    plans = tmp_path / "plans.yaml"
    plans.write_text("plans:\n  - id: x\n    stars: 20000\n")
    monkeypatch.setenv("SUBSCRIPTION_PLANS", str(plans))
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    assert main.execute("migrate", 0.0) == 2
    err = capsys.readouterr().err
    assert f"the subscription plans ({plans}) has problems" in err and "Traceback" not in err
