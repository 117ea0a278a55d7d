"""What a request must be before it may leave: checked locally, so a bad one costs no call and no 422.

Why it exists: the catalog and the wizard check each *value* against the model's schema (enums,
lengths, counts); this module checks only what the *wire* needs whatever the model — a model
id, an input that is a JSON object KIE can read, a callback URL KIE can reach, a non-empty
prompt, a task id — and one thing that must never reach KIE: a Telegram file URL, which holds
the bot token. Every refusal is :class:`~kie.errors.InvalidRequest`; its message never repeats a
refused value that could be a secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from kie.errors import InvalidRequest

__all__ = ["MAX_INPUT_BYTES", "PROMPT_KEYS", "check_callback_url", "check_input", "check_model", "check_task_id",
           "check_url", "encode_json"]

MAX_INPUT_BYTES = 1_000_000  # far above any model's prompt and URL lists: a bound against mistakes, not a schema
PROMPT_KEYS = ("prompt", "text")  # a prompt-like input, when present, must say something
_TELEGRAM_FILE_URL = re.compile(r"/file/bot\d+:")  # api.telegram.org/file/bot<token>/...
_ID = re.compile(r"[^\s\x00-\x1f\x7f]{1,256}")


def check_model(model: object) -> str:
    """A model id: a non-empty string without spaces or control characters."""
    if not isinstance(model, str) or not _ID.fullmatch(model):
        raise InvalidRequest("model must be a non-empty id without spaces (at most 256 characters)")
    return model


def check_task_id(task_id: object) -> str:
    """A task id: opaque to us, but a non-empty string without spaces or control characters."""
    if not isinstance(task_id, str) or not _ID.fullmatch(task_id):
        raise InvalidRequest("task id must be a non-empty string without spaces (at most 256 characters)")
    return task_id


def check_url(url: object, what: str) -> str:
    """An absolute http(s) URL with a host."""
    if not isinstance(url, str) or len(url) > 2048 or any(c.isspace() for c in url):
        raise InvalidRequest(f"{what} must be an absolute http(s) URL without spaces (at most 2048 characters)")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        raise InvalidRequest(f"{what} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidRequest(f"{what} must be an absolute http(s) URL")
    return url


def check_callback_url(url: object) -> str | None:
    """None (no callback), or an absolute http(s) URL KIE can POST to."""
    return None if url is None else check_url(url, "callback URL")


def encode_json(value: Any, what: str) -> bytes:
    """``value`` as the UTF-8 JSON KIE reads; NaN, infinities, sets, bytes and lone surrogates are refused."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise InvalidRequest(f"{what} is not JSON KIE can read: {type(exc).__name__}") from None


def check_input(task_input: object) -> dict[str, Any]:
    """A JSON object with non-empty string keys, prompt-like strings not blank, no Telegram file URL."""
    if not isinstance(task_input, Mapping):
        raise InvalidRequest("input must be a JSON object (a dict)")
    for key in task_input:
        if not isinstance(key, str) or not key.strip():
            raise InvalidRequest("input keys must be non-empty strings")
    size = len(encode_json(task_input, "input"))
    if size > MAX_INPUT_BYTES:
        raise InvalidRequest(f"input is {size} bytes of JSON, over {MAX_INPUT_BYTES}")
    for key in PROMPT_KEYS:
        if key in task_input:
            value = task_input[key]
            if not isinstance(value, str) or not value.strip():
                raise InvalidRequest(f"input.{key} must be a non-empty string")
    for path, text in _strings(task_input, "input"):
        if _TELEGRAM_FILE_URL.search(text):
            raise InvalidRequest(f"{path} is a Telegram file URL, which holds the bot token: upload the file to KIE")
    return dict(task_input)


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")
