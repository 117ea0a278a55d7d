"""The dedicated families' models (Veo 3.1, Suno, Runway, Aleph, 4o Image, Flux Kontext: KIE's own
endpoints, not the jobs API) are held against KIE's reference (tests/data/kie_models_reference.yaml,
the entries at its end) the way tests/test_catalog.py holds the jobs models: every id's variant is
one KIE lists, every field one of KIE's inputs, every option in KIE's enum, every limit within
KIE's, every price the reference's own number; a copy with a wrong id, option or price is caught.
Inputs of follow-up operations the reference entry does not list (Veo extend, Suno extend...) are
transcribed below from DEDICATED.md, each with its section. Then the loader's rules for actions:
parent fields, hidden models and the actions that reach them, each bad entry named on one line."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalog import Catalog, CatalogError, Model, Sku, load
from catalog.actions import resolve, variant_of
from catalog.model import ENDPOINTS, MEDIA, Field, same

pytestmark = pytest.mark.timeout(60)

REFERENCE_FILE = Path(__file__).with_name("data") / "kie_models_reference.yaml"
DEDICATED = ("veo", "suno", "suno-lyrics", "runway", "aleph", "gpt4o", "flux-kontext")  # issue 20's family names
# each family's entry in the reference (its id, as the reference spells it)
ENTRY = {
    "veo": "veo3 | veo3_fast | veo3_lite (Veo 3.1)",
    "suno": "suno (V4, V4_5, V4_5PLUS, V4_5ALL, V5, V5_5)",
    "suno-lyrics": "suno (V4, V4_5, V4_5PLUS, V4_5ALL, V5, V5_5)",
    "runway": "runway (Gen AI video)",
    "aleph": "runway aleph",
    "gpt4o": "gpt4o-image (4o Image API)",
    "flux-kontext": "flux-kontext-pro | flux-kontext-max",
}
# the operations whose body is the reference entry's params (the others are below)
REFERENCE_OPERATIONS = {
    "veo": {"generate", "frames", "reference"}, "suno": {"generate", "cover", "remix"},
    "runway": {"generate", "animate"},
    "aleph": {"generate"}, "gpt4o": {"generate", "edit"}, "flux-kontext": {"generate", "edit"},
}
STRING: dict[str, Any] = {"type": "string"}
# Inputs the reference entry leaves out, from DEDICATED.md (family, operation) -> params
OTHER_PARAMS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    # §2.5 POST /api/v1/veo/extend: taskId (req), prompt (req), seeds, model fast|quality|lite, watermark
    ("veo", "extend"): {"taskId": {**STRING, "required": True}, "prompt": {**STRING, "required": True},
                        "model": {**STRING, "enum": ["fast", "quality", "lite"]}, "seeds": {"type": "integer"},
                        "watermark": STRING, "callBackUrl": STRING},
    # §2.6 GET get-1080p-video?taskId=&index= ; POST get-4k-video {taskId (req), index (default 0)}
    ("veo", "1080p"): {"taskId": {**STRING, "required": True}, "index": {"type": "integer"}},
    ("veo", "4k"): {"taskId": {**STRING, "required": True}, "index": {"type": "integer"}, "callBackUrl": STRING},
    # §3.1 extend: defaultParamFlag, audioId, model, callBackUrl (+prompt, style, title, continueAt)
    ("suno", "extend"): {"defaultParamFlag": {"type": "boolean", "required": True},
                         "audioId": {**STRING, "required": True}, "prompt": STRING, "style": STRING,
                         "title": {**STRING, "maxLength": 100}, "continueAt": {"type": "number"}},
    # §3.1 upload-extend: uploadUrl, defaultParamFlag, model, callBackUrl; §3.2: uploaded audio <= 8 min
    ("suno", "upload-extend"): {"uploadUrl": {**STRING, "required": True, "max_seconds": 480},
                                "defaultParamFlag": {"type": "boolean", "required": True}, "prompt": STRING,
                                "style": STRING, "title": {**STRING, "maxLength": 100},
                                "continueAt": {"type": "number"}, "instrumental": {"type": "boolean"}},
    # §3.1 lyrics: POST /api/v1/lyrics {prompt (<= 200 words)}
    ("suno-lyrics", "generate"): {"prompt": {**STRING, "required": True}},
    # §5.1 POST /api/v1/runway/extend: taskId (req), prompt (req), quality (req, 720p|1080p), waterMark
    ("runway", "extend"): {"taskId": {**STRING, "required": True}, "prompt": {**STRING, "required": True,
                                                                               "maxLength": 1800},
                           "quality": {**STRING, "required": True, "enum": ["720p", "1080p"]},
                           "waterMark": STRING, "callBackUrl": {**STRING, "required": True}},
}
# upload-cover takes generate's params and the uploaded song (§3.1; §3.2: uploaded audio <= 8 min)
UPLOAD = {"uploadUrl": {**STRING, "required": True, "max_seconds": 480}}
# customMode false: the prompt is a description of at most 500 characters (§3.2); the reference notes it
SIMPLE_PROMPT_MAX = 500
# the reference's variant enum for each family whose ids carry one
VARIANTS = {"veo": "model", "suno": "model", "flux-kontext": "model"}
SENT_BY_US = {"callBackUrl"}  # the adapters add it; never a catalog field


@pytest.fixture(scope="module")
def shipped() -> Catalog:
    return load()


@pytest.fixture(scope="module")
def reference() -> dict[str, dict[str, Any]]:
    entries = yaml.safe_load(REFERENCE_FILE.read_text(encoding="utf-8"))
    return {entry["id"]: entry for entry in entries}


def dedicated(catalog: Catalog) -> list[Model]:
    return [m for m in catalog.everything if m.endpoint != "jobs"]


def operation_of(model: Model) -> str:
    return model.id.split("/")[1]


def params_of(model: Model, reference: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """KIE's inputs for the model's operation: the reference entry's, or DEDICATED.md's above."""
    family, operation = model.endpoint, operation_of(model)
    if operation in REFERENCE_OPERATIONS.get(family, set()):
        params = dict(reference[ENTRY[family]]["params"])
        return {**params, **UPLOAD} if (family, operation) in (("suno", "cover"), ("suno", "remix")) else params
    return OTHER_PARAMS[(family, operation)]


# --- the checks: each returns one line per problem ---------------------------------------------


def _type_fits(item: Field, kie_type: str) -> bool:
    values = item.values()
    if item.kind == "parent":
        return True  # filled from the parent's result: its values are checked through the map below
    if kie_type == "string":
        return (item.kind in ("prompt", "text") or (item.kind in MEDIA and not item.array)
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
    return False


def id_problems(model: Model, reference: dict[str, dict[str, Any]]) -> list[str]:
    """The id names a family and an operation of issue 20, and a variant KIE lists."""
    family, variant = model.endpoint, variant_of(model.id)
    found = []
    if family not in DEDICATED or not model.id.startswith(family + "/"):
        return [f"{model.id}: not <family>/<operation>[/<variant>] of a dedicated family"]
    operation = operation_of(model)
    if operation not in REFERENCE_OPERATIONS.get(family, set()) and (family, operation) not in OTHER_PARAMS:
        found.append(f"{model.id}: {family} has no operation {operation!r} in the contract")
    if variant is not None:
        enum = reference[ENTRY[family]]["params"].get(VARIANTS.get(family, ""), {}).get("enum")
        if enum is None or variant not in enum:
            found.append(f"{model.id}: variant {variant!r} is not in KIE's {enum}")
    elif (family in VARIANTS and operation in REFERENCE_OPERATIONS[family]
          and not any(f.name == "model" and f.source == "variant" for f in model.fields)):
        found.append(f"{model.id}: {family}/{operation} needs a variant (KIE's model)")
    return found


def field_problems(model: Model, reference: dict[str, dict[str, Any]]) -> list[str]:
    params = params_of(model, reference)
    found = []
    names = {f.name for f in model.fields}
    for item in model.fields:
        where = f"{model.id}.{item.name}"
        if item.name == "model" and item.kind == "parent" and item.source == "variant" and item.mapping is None:
            continue  # the parent's variant, checked as an id
        param = params.get(item.name) or (reference[ENTRY[model.endpoint]]["params"].get(item.name)
                                          if item.name == "model" else None)
        if param is None:
            found.append(f"{where}: not one of KIE's inputs {sorted(params)}")
            continue
        if not _type_fits(item, param["type"]):
            found.append(f"{where}: a {item.kind} field does not fit KIE's {param['type']}")
        listed = param.get("enum")
        if listed is not None and (item.kind in ("enum", "int") or item.kind == "parent"):
            values = item.values() or ((item.default,) if item.default is not None else ())
            found += [f"{where}: {v!r} is not in KIE's enum {listed}" for v in values
                      if not any(same(v, w) for w in listed)]
        if item.kind in ("prompt", "text") and "maxLength" in param and (item.max_length or 0) > param["maxLength"]:
            found.append(f"{where}: max_length {item.max_length} exceeds KIE's {param['maxLength']}")
        if item.media and "maxItems" in param and item.max_items > param["maxItems"]:
            found.append(f"{where}: max_items {item.max_items} exceeds KIE's {param['maxItems']}")
        if item.media and "max_seconds" in param and (item.max_seconds or 0) > param["max_seconds"]:
            found.append(f"{where}: max_seconds {item.max_seconds} exceeds KIE's {param['max_seconds']}")
    for name, param in params.items():
        if param.get("required") and name not in names and name not in SENT_BY_US and name != "model":
            found.append(f"{model.id}: KIE requires {name!r} and the catalog never sends it")
    return found


def _number(pattern: str, line: str) -> str:
    match = re.search(pattern, line)
    assert match, (pattern, line)
    return match.group(1)


def expected_credits(model: Model, values: dict[str, Any], reference: dict[str, dict[str, Any]]) -> Decimal:
    """The reference's price for these values, read from its price line (quoted in each branch)."""
    family, operation, variant = model.endpoint, operation_of(model), variant_of(model.id)
    line = reference[ENTRY[family]]["price"]
    if family == "veo":
        # "Lite 720p 30 / 1080p 35 / 4K 150 cr; Fast 720p 60 / ...; Quality ...; extend lite 30 / fast 60 /
        # quality 250; get-1080p 5; get-4K 120 cr": per video, whatever the duration
        if operation == "1080p":
            return Decimal(_number(r"get-1080p (\d+)", line))
        if operation == "4k":
            return Decimal(_number(r"get-4K (\d+)", line))
        if operation == "extend":
            return Decimal(_number(rf"extend.*?\b{values['model']} (\d+)", line))
        name = {"veo3_lite": "Lite", "veo3_fast": "Fast", "veo3": "Quality"}[str(variant)]
        segment = _number(rf"{name} ([^;]*)", line)
        return Decimal(_number(rf"{str(values['resolution']).upper()} (\d+)", segment.upper()))
    if family == "suno":
        # "generate/extend/cover/add-vocals 12 cr ($0.06) per request (2 tracks)"; remix is a cover;
        # upload-extend is not in the reference's line: DEDICATED.md §3.1's table says $0.06 = 12 too
        return Decimal(_number(r"generate/extend/cover\S* (\d+(?:\.\d+)?) cr", line))
    if family == "suno-lyrics":
        return Decimal(_number(r"lyrics (\d+(?:\.\d+)?) cr", line))  # "lyrics 0.4 cr"
    if family == "runway":
        # "5s 720p 12 cr; 10s 720p 30 cr; 5s 1080p 30 cr"; extend is not priced (DEDICATED.md §5.1 ❓):
        # the catalog charges it like a 5 s clip of that quality
        duration = 5 if operation == "extend" else values["duration"]
        return Decimal(_number(rf"\b{duration}s {values['quality']} (\d+) cr", line))
    if family == "aleph":
        return Decimal(_number(r"(\d+) cr", line))  # "110 cr ($0.55)"
    if family == "gpt4o":
        # "6 cr ($0.03)" per image (DEDICATED.md §6); nVariants' own price is not listed: 6 per image
        return Decimal(_number(r"(\d+) cr", line)) * int(values.get("nVariants", 1))
    if family == "flux-kontext":
        # "pro 5 cr ($0.025); max 10 cr ($0.05)"
        return Decimal(_number(rf"{str(variant).rsplit('-', 1)[1]} (\d+) cr", line))
    raise AssertionError(f"no price rule for {family}")


def price_problems(model: Model, reference: dict[str, dict[str, Any]]) -> list[str]:
    found = []
    names = model.price_fields
    for combination in itertools.product(*(model.field(n).values() for n in names)):
        values = {**model.defaults(), **dict(zip(names, combination, strict=True))}
        if model.forbidden(values):
            continue
        try:
            sku = model.sku_for(values)
        except LookupError as exc:
            found.append(str(exc))
            continue
        expected = expected_credits(model, values, reference)
        if (sku.credits, sku.unit) != (expected, "task"):
            found.append(f"{model.id} {dict(zip(names, combination, strict=True))}: catalog {sku.credits} per "
                         f"{sku.unit}, reference {expected} per task")
    return found


def problems(model: Model, reference: dict[str, dict[str, Any]]) -> list[str]:
    found = id_problems(model, reference)
    return found or field_problems(model, reference) + price_problems(model, reference)


# --- the shipped catalog ----------------------------------------------------------------------


def test_the_catalog_sells_every_family_of_the_issue(shipped: Catalog) -> None:
    assert {m.endpoint for m in dedicated(shipped)} == set(DEDICATED)
    assert set(ENDPOINTS) == {"jobs", *DEDICATED}
    music = shipped.in_family("music")
    assert [m.id for m in music][:2] == ["suno/generate/V5", "suno/generate/V5_5"], "the simple song first"
    assert {m.endpoint for m in music} == {"suno", "suno-lyrics"}
    assert shipped.model("suno-lyrics/generate").output == "text"
    assert "veo/generate/veo3_fast" in [m.id for m in shipped.in_family("text_to_video")][:2]
    assert shipped.in_family("image_to_video")[0].id == "veo/frames/veo3_fast"


def test_the_catalogs_endpoints_are_the_families_kie_speaks() -> None:
    from kie.families import ENDPOINTS as KIE_ENDPOINTS
    from kie.families import family_of

    assert set(ENDPOINTS) == set(KIE_ENDPOINTS)
    for model in dedicated(load()):
        assert family_of(model.id) == model.endpoint, model.id


def test_every_dedicated_model_is_kies(shipped: Catalog, reference: dict[str, dict[str, Any]]) -> None:
    found = [line for model in dedicated(shipped) for line in problems(model, reference)]
    assert not found, "\n".join(found)


def test_a_simple_song_prompt_is_a_description(shipped: Catalog) -> None:
    for model in dedicated(shipped):
        if model.endpoint == "suno" and "customMode" in {f.name for f in model.fields}:
            if model.field("customMode").default is False:
                assert (model.field("prompt").max_length or 0) <= SIMPLE_PROMPT_MAX, model.id
            else:
                assert model.field("prompt").max_length == 5000 and model.field("style").max_length == 1000


def test_hidden_models_are_reached_only_from_results(shipped: Catalog) -> None:
    hidden = {m.id for m in shipped.hidden}
    assert hidden == {"veo/extend", "veo/1080p", "veo/4k", "runway/extend", "suno/extend", "suno/remix"}
    assert not hidden & {m.id for m in shipped.models}, "never in a menu, search or intake"
    assert all(shipped.model(i).hidden for i in hidden), "yet found by id"
    for family in shipped.families():
        assert not any(m.hidden for m in shipped.in_family(family))
    veo = shipped.model("veo/generate/veo3_fast")
    assert [(a.id, a.model, a.per_item) for a in veo.actions] == [
        ("extend", "veo/extend", False), ("hd1080", "veo/1080p", True), ("uhd4k", "veo/4k", True)]
    hd, uhd = veo.actions[1], veo.actions[2]
    assert hd.offered({"resolution": "720p"}) and not hd.offered({"resolution": "1080p"})
    assert uhd.offered({"resolution": "1080p"}) and not uhd.offered({"resolution": "4k"})
    suno = shipped.model("suno/generate/V5")
    assert [(a.id, a.per_item) for a in suno.actions] == [("extend", True), ("remix", True)]


def test_an_actions_price_follows_its_parent(shipped: Catalog) -> None:
    extend = shipped.model("veo/extend")
    model = extend.field("model")
    assert model.source == "variant" and resolve(model, "veo3_fast") == "fast"
    assert extend.credits({"model": resolve(model, "veo3")}) == 250
    assert extend.credits({"model": resolve(model, "veo3_lite")}) == 30
    with pytest.raises(KeyError):
        resolve(model, "veo4")
    runway = shipped.model("runway/extend")
    assert runway.field("quality").source == "param:quality"
    assert runway.credits({"quality": "1080p"}) == 30
    assert shipped.model("veo/1080p").credits({}) == 5 and shipped.model("veo/4k").credits({}) == 120
    assert shipped.model("suno/extend").field("audioId").source == "item_ref"
    assert shipped.model("suno/remix").field("uploadUrl").source == "item_url"


def test_every_dedicated_model_makes_a_request_its_adapter_accepts(shipped: Catalog) -> None:
    """The catalog's ids and values go through each family's adapter (kie/): what the wizard
    collects is what KIE's body takes, checked locally before anything is sent."""
    from kie.families import ENDPOINTS as KIE_ENDPOINTS

    samples = {"prompt": "a calm sea at dawn", "style": "lo-fi", "title": "Dawn", "taskId": "veo_task_abc123",
               "audioId": "e231-abc", "index": 0}
    refused = []
    for model in dedicated(shipped):
        values: dict[str, Any] = dict(model.defaults())
        for item in model.fields:
            if item.name in values:
                continue
            if item.media:
                url = f"https://files.example/{item.name}.bin"
                values[item.name] = [url] if item.array else url
            elif item.kind == "parent":
                raw = {"variant": variant_of(model.id) or "V5", "item_url": "https://files.example/song.mp3"}
                values[item.name] = (next(iter(item.mapping.values())) if item.mapping
                                     else raw.get(item.source or "", samples.get(item.name)))
            elif item.name in samples:
                values[item.name] = samples[item.name]
        if model.id in ("suno/extend", "suno/remix"):
            values["model"] = "V5"
        endpoint = KIE_ENDPOINTS[model.endpoint]
        try:
            if endpoint.local_task_id(model.id, values) is None:
                endpoint.create_request(model.id, values, "https://bot.example/kie-callback/t/1")
        except Exception as exc:  # an adapter's InvalidRequest names what it refused
            refused.append(f"{model.id} {values}: {type(exc).__name__}: {exc}")
    assert not refused, "\n".join(refused)


# --- a wrong id, option or price is caught ----------------------------------------------------


def test_a_wrong_variant_is_caught(shipped: Catalog, reference: dict[str, dict[str, Any]]) -> None:
    veo = shipped.model("veo/generate/veo3_fast")
    assert not problems(veo, reference)
    assert any("variant 'veo4_fast'" in p for p in problems(replace(veo, id="veo/generate/veo4_fast"), reference))
    suno = shipped.model("suno/generate/V5")
    assert any("variant 'V6'" in p for p in problems(replace(suno, id="suno/generate/V6"), reference))
    assert any("no operation 'sing'" in p for p in problems(replace(suno, id="suno/sing/V5"), reference))


def test_a_wrong_option_or_limit_is_caught(shipped: Catalog, reference: dict[str, dict[str, Any]]) -> None:
    veo = shipped.model("veo/generate/veo3_fast")
    ratio = veo.field("aspectRatio")
    wider = replace(ratio, options=(*ratio.options, replace(ratio.options[0], value="1:1")))
    broken = replace(veo, fields=tuple(wider if f.name == "aspectRatio" else f for f in veo.fields))
    assert any("'1:1' is not in KIE's enum" in p for p in problems(broken, reference))
    runway = shipped.model("runway/generate")
    longer = tuple(replace(f, max_length=2000) if f.name == "prompt" else f for f in runway.fields)
    assert any("max_length 2000 exceeds KIE's 1800" in p for p in problems(replace(runway, fields=longer), reference))
    extend = shipped.model("veo/extend")
    wrong_map = tuple(replace(f, mapping={"veo3": "quality", "veo3_fast": "turbo", "veo3_lite": "lite"})
                      if f.name == "model" else f for f in extend.fields)
    assert any("'turbo' is not in KIE's enum" in p for p in problems(replace(extend, fields=wrong_map), reference))
    renamed = tuple(replace(f, name="aspect_ratio") if f.name == "aspectRatio" else f for f in veo.fields)
    assert any("aspect_ratio: not one of KIE's inputs" in p for p in problems(replace(veo, fields=renamed), reference))


def test_a_wrong_price_is_caught(shipped: Catalog, reference: dict[str, dict[str, Any]]) -> None:
    veo = shipped.model("veo/generate/veo3")
    cheaper = tuple(replace(s, credits=Decimal(60)) if dict(s.when) == {"resolution": "720p"} else s for s in veo.skus)
    assert any("catalog 60 per task, reference 250" in p for p in problems(replace(veo, skus=cheaper), reference))
    suno = shipped.model("suno/generate/V5")
    assert any("reference 12" in p for p in problems(replace(suno, skus=(Sku({}, Decimal(6)),)), reference))
    flux = shipped.model("flux-kontext/generate/flux-kontext-max")
    assert any("reference 10" in p for p in problems(replace(flux, skus=(Sku({}, Decimal(5)),)), reference))
    extend = shipped.model("veo/extend")
    swapped = tuple(replace(s, credits=Decimal(60)) if dict(s.when) == {"model": "lite"} else s for s in extend.skus)
    assert any("reference 30" in p for p in problems(replace(extend, skus=swapped), reference))


# --- the loader's rules for actions -----------------------------------------------------------

GOOD = """
models:
  - id: veo/generate/veo3_fast
    endpoint: veo
    family: text_to_video
    title: {ru: Тест, en: Test}
    description: {ru: Тестовая модель, en: A test model}
    fields:
      - {name: prompt, kind: prompt, required: true, max_length: 100, title: {ru: Описание, en: Prompt}}
      - {name: resolution, kind: enum, required: true, default: 720p, title: {ru: Разрешение, en: Resolution},
         options: [{value: 720p, ru: 720p, en: 720p}, {value: 1080p, ru: 1080p, en: 1080p}]}
    skus:
      - {credits: 60}
    actions:
      - {id: extend, model: veo/extend}
      - {id: hd1080, model: veo/1080p, per_item: true, when: {resolution: 720p}}
  - id: veo/extend
    endpoint: veo
    family: text_to_video
    hidden: true
    title: {ru: Продолжить, en: Extend}
    description: {ru: Продолжение видео, en: The video carried on}
    fields:
      - {name: taskId, kind: parent, from: task_id, required: true}
      - {name: prompt, kind: prompt, required: true, max_length: 100, title: {ru: Дальше, en: Next}}
      - {name: model, kind: parent, from: variant, required: true, map: {veo3_fast: fast, veo3: quality}}
    skus:
      - {when: {model: fast}, credits: 60}
      - {when: {model: quality}, credits: 250}
  - id: veo/1080p
    endpoint: veo
    family: text_to_video
    hidden: true
    title: {ru: 1080p, en: 1080p}
    description: {ru: То же в 1080p, en: The same in 1080p}
    fields:
      - {name: taskId, kind: parent, from: task_id, required: true}
      - {name: index, kind: parent, from: item_index, required: true}
    skus:
      - {credits: 5}
"""


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "models.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        load(path)
    return caught.value.problems


def test_a_good_catalog_with_actions_loads(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(GOOD, encoding="utf-8")
    loaded = load(path)
    assert [m.id for m in loaded.models] == ["veo/generate/veo3_fast"]
    assert {m.id for m in loaded.hidden} == {"veo/extend", "veo/1080p"}
    extend = loaded.model("veo/extend")
    assert extend.field("model").values() == ("fast", "quality"), "a mapped parent field's values set the price"
    assert extend.credits({"model": "quality"}) == 250
    assert [f.name for f in extend.fields if f.ask] == ["prompt"], "a parent field is never asked"
    again = Catalog(loaded.everything)
    assert again.models == loaded.models, "hidden ones are set apart"
    assert {m.id for m in again.hidden} == {m.id for m in loaded.hidden} and again.model("veo/1080p").hidden


@pytest.mark.parametrize(("change", "expected"), [
    (("{name: taskId, kind: parent, from: task_id, required: true}\n      - {name: prompt",
      "{name: taskId, kind: parent, from: task_id, required: true, ask: true}\n      - {name: prompt"),
     "field 'taskId': a parent field is never asked"),
    (("from: item_index", "from: item_number"), "field 'index': from must be one of task_id, item_ref"),
    (("from: item_index", "from: 'param:'"), "from must be one of"),
    (("map: {veo3_fast: fast, veo3: quality}", "map: [fast]"), "map must be a non-empty"),
    (("    hidden: true\n    title: {ru: 1080p", "    title: {ru: 1080p"),
     "model 'veo/1080p': a parent field needs a parent: the model must be hidden"),
    (("      - {id: hd1080, model: veo/1080p, per_item: true, when: {resolution: 720p}}\n", ""),
     "model 'veo/1080p': is hidden and no action reaches it"),
    (("model: veo/extend}", "model: veo/reframe}"), "action 'extend': model 'veo/reframe' is not in the catalog"),
    (("model: veo/extend}", "model: veo/generate/veo3_fast}"), "'veo/generate/veo3_fast' is not hidden"),
    (("veo/1080p, per_item: true,", "veo/1080p,"), "field 'index' from item_index: needs per_item: true"),
    (("when: {resolution: 720p}", "when: {resolution: 8k}"), "when gives 'resolution' a value"),
    (("when: {resolution: 720p}", "when: {size: 720p}"), "when names no field 'size'"),
    (("{id: extend, model: veo/extend}", "{id: extend, model: veo/extend, colour: blue}"),
     "actions[0]: unknown key 'colour'"),
    (("{id: hd1080,", "{id: extend,"), "actions[1]: id 'extend' is given twice"),
    (("{id: extend, model: veo/extend}", "{id: Extend!, model: veo/extend}"), "id must be a short snake_case name"),
    (("map: {veo3_fast: fast, veo3: quality}", "map: {veo3: quality, veo3_lite: fast}"),
     "field 'model' from variant: the map has no value for the parent's 'veo3_fast'"),
    (("map: {veo3_fast: fast, veo3: quality}", ""), "field 'model' comes from the parent unmapped"),
    (("  - id: veo/generate/veo3_fast\n", "  - id: runway/generate/veo3_fast\n"),
     "id must be veo/<operation>[/<variant>]"),
    (("  - id: veo/generate/veo3_fast\n    endpoint: veo\n", "  - id: veo/generate/veo3_fast\n    endpoint: luma\n"),
     "endpoint must be one of jobs, veo"),
    (("    hidden: true\n    title: {ru: Продолжить", "    hidden: yes please\n    title: {ru: Продолжить"),
     "hidden must be true or false"),
])
def test_each_bad_action_entry_is_named(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in GOOD
    found = problems_of(tmp_path, GOOD.replace(old, new, 1))
    assert any(expected in line for line in found), found
    assert all("\n" not in line for line in found)


def test_an_item_id_goes_only_to_its_own_family(tmp_path: Path) -> None:
    text = GOOD.replace("  - id: veo/1080p\n    endpoint: veo\n", "  - id: runway/1080p\n    endpoint: runway\n")
    found = problems_of(tmp_path, text.replace("model: veo/1080p,", "model: runway/1080p,"))
    assert any("field 'taskId' from task_id: 'runway' cannot use an id of 'veo'" in line for line in found), found


def test_the_jobs_api_keeps_snake_case_inputs(tmp_path: Path) -> None:
    text = """
models:
  - id: test/model
    family: text_to_image
    title: {ru: Тест, en: Test}
    description: {ru: Тестовая модель, en: A test model}
    fields:
      - {name: promptText, kind: prompt, required: true, max_length: 100, title: {ru: Описание, en: Prompt}}
    skus:
      - {credits: 1}
"""
    found = problems_of(tmp_path, text)
    assert any("field 'promptText': the jobs API names its inputs in snake_case" in line for line in found), found
