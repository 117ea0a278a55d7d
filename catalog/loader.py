"""The catalog: what the bot sells, read from catalog/models/*.yaml and validated whole at start.

The YAML files are the single source of truth for models, the inputs a chat collects for each,
and their prices in KIE credits. Everything is checked before the bot starts (unknown keys, an
enum value without a label, a SKU without credits, a required input the wizard cannot ask for, a
duplicate id, a choice of options no SKU prices), and every problem is reported together, one
line each, like config.ConfigError: a bad catalog must never reach a user as a wrong price or a
task KIE refuses after the money is taken.

File layout: a mapping with `models` (a list), and optionally `labels` (shared option labels:
label set -> value -> {ru, en}) and `field_titles` (field name -> {ru, en}), shared by all files.

A model of a dedicated KIE family (issue 20: `endpoint: veo`, ...) has the id
`<endpoint>/<operation>[/<variant>]` and KIE's camelCase input names; `hidden: true` models are
reached only as `actions` on another model's result, their `parent` fields filled from it
(catalog/actions.py holds those rules).

This module is the entry: it finds and parses the files (refusing a key given twice) and raises
CatalogError. The dataclasses are in catalog/model.py, the rules for one field in
catalog/field_reader.py, those for a model, its SKUs and across models in catalog/model_reader.py.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from catalog.model import Catalog
from catalog.model_reader import ModelReader

MODELS_DIR = Path(__file__).with_name("models")

FILE_KEYS = {"models", "labels", "field_titles"}


class CatalogError(Exception):
    """Raised with every catalog problem found, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@cache
def shipped() -> Catalog:
    """The catalog that ships in the package, loaded once per process."""
    return load()


def load(path: Path | str | None = None) -> Catalog:
    """Read and validate a catalog directory (every *.yaml in it) or one file; the package's own
    catalog/models/ by default. Raises CatalogError listing every problem."""
    root = Path(path) if path is not None else MODELS_DIR
    files = sorted(root.glob("*.yaml")) if root.is_dir() else [root]
    problems: list[str] = []
    documents: list[tuple[str, dict[str, Any]]] = []
    if not files:
        problems.append(f"{root}: no catalog files (*.yaml)")
    for file in files:
        try:
            data = yaml.load(file.read_text(encoding="utf-8"), Loader=_StrictLoader)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            problems.append(f"{file.name}: cannot be read: {' '.join(str(exc).split())}")
            continue
        if not isinstance(data, dict):
            problems.append(f"{file.name}: must be a mapping with a `models` list")
            continue
        for key in sorted(set(data) - FILE_KEYS, key=str):
            problems.append(f"{file.name}: unknown key {key!r} (known: {', '.join(sorted(FILE_KEYS))})")
        documents.append((file.name, data))
    reader = ModelReader(problems)
    for name, data in documents:
        reader.shared(name, data)
    for name, data in documents:
        reader.models(name, data.get("models"))
    models = reader.finish()
    if problems:
        raise CatalogError(problems)
    return Catalog(models)


# libyaml's parser when present (5x faster: the catalog is read at every start), the safe constructor either way
_SafeBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeBase):  # type: ignore[valid-type,misc]  # a base chosen at import time
    """A safe loader that refuses a key given twice in one mapping (plain YAML keeps the last, silently)."""


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if isinstance(key, str | int | float | bool) and key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)
