"""Telegram's HTML ``parse_mode``: the plain text and the entities the Bot API makes of an HTML text.

Why it exists: a bot's real bugs show up here — an unsupported or unbalanced tag is a 400
"can't parse entities", and entity offsets count UTF-16 code units — so the fake parses HTML the
way Telegram does instead of echoing the text back.
"""

from __future__ import annotations

import html
import re
from typing import Any

from fakes.telegram.wire import TelegramError, bad, utf16_len

_HTML_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_ESCAPE_RE = re.compile(r"&(lt|gt|amp|quot|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});")
_HTML_ATTR_RE = re.compile(r"""\s*([A-Za-z-]+)\s*(?:=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram's HTML parse mode like the Bot API does: plain text and its entities.

    Raises :class:`TelegramError` 400 "can't parse entities: ..." on what Telegram rejects.
    """

    def fail(reason: str) -> TelegramError:
        return bad(f"can't parse entities: {reason}")

    out: list[str] = []
    offset = 0  # in UTF-16 code units, as Telegram counts
    stack: list[tuple[str, dict[str, str], int]] = []
    entities: list[dict[str, Any]] = []
    index, size = 0, len(source)
    while index < size:
        char = source[index]
        if char == "&":
            match = _HTML_ESCAPE_RE.match(source, index)
            if match:
                decoded = html.unescape(match.group())
                out.append(decoded)
                offset += utf16_len(decoded)
                index = match.end()
                continue
        if char != "<":
            out.append(char)
            offset += 2 if ord(char) > 0xFFFF else 1
            index += 1
            continue
        begin = index
        index += 1
        if index < size and source[index] == "/":
            if not stack:
                raise fail(f"Unexpected end tag at byte offset {_byte_offset(source, begin)}")
            index += 1
            name_start = index
            while index < size and not source[index].isspace() and source[index] != ">":
                index += 1
            end_name = source[name_start:index].lower()
            while index < size and source[index].isspace():
                index += 1
            if index >= size or source[index] != ">":
                raise fail(f"Unclosed end tag at byte offset {_byte_offset(source, begin)}")
            index += 1
            tag, attrs, start = stack.pop()
            if end_name and end_name != tag:
                raise fail(
                    f'Unmatched end tag at byte offset {_byte_offset(source, begin)}, expected "</{tag}>", '
                    f'found "</{end_name}>"'
                )
            if offset > start:
                entities.append(_html_entity(tag, attrs, start, offset - start))
            continue
        name_start = index
        while index < size and not source[index].isspace() and source[index] != ">":
            index += 1
        if index >= size:
            raise fail(f"Unclosed start tag at byte offset {_byte_offset(source, begin)}")
        tag = source[name_start:index].lower()
        if tag not in _HTML_ENTITY_TYPES:
            raise fail(f'Unsupported start tag "{tag}" at byte offset {_byte_offset(source, begin)}')
        close = source.find(">", index)
        if close < 0:
            raise fail(f"Unclosed start tag at byte offset {_byte_offset(source, begin)}")
        attrs = {
            m.group(1).lower(): html.unescape(m.group(2) or m.group(3) or m.group(4) or "")
            for m in _HTML_ATTR_RE.finditer(source[index:close])
            if m.group(1)
        }
        if tag == "span" and attrs.get("class") != "tg-spoiler":
            raise fail(f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(source, begin)}')
        index = close + 1
        if tag == "code" and stack and stack[-1][0] == "pre" and attrs.get("class", "").startswith("language-"):
            stack[-1][1].setdefault("language", attrs["class"][len("language-") :])
        stack.append((tag, attrs, offset))
    if stack:
        raise fail(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda entity: (entity["offset"], -entity["length"]))
    return "".join(out), entities


def _html_entity(tag: str, attrs: dict[str, str], offset: int, length: int) -> dict[str, Any]:
    kind = _HTML_ENTITY_TYPES[tag]
    if tag == "blockquote" and "expandable" in attrs:
        kind = "expandable_blockquote"
    entity: dict[str, Any] = {"type": kind, "offset": offset, "length": length}
    if kind == "text_link":
        entity["url"] = attrs.get("href", "")
    elif kind == "pre" and attrs.get("language"):
        entity["language"] = attrs["language"]
    elif kind == "custom_emoji":
        entity["custom_emoji_id"] = attrs.get("emoji-id", "")
    return entity


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode())


_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


def auto_links(text: str, entities: list[Any]) -> list[Any]:
    """Telegram marks the URLs of a message's text as ``url`` entities (offsets in UTF-16 code
    units) where no entity of the sender covers them; the fake does the same."""
    taken = [(int(e.get("offset", 0)), int(e.get("offset", 0)) + int(e.get("length", 0)))
             for e in entities if isinstance(e, dict)]
    found: list[Any] = []
    for match in _URL.finditer(text):
        offset = utf16_len(text[:match.start()])
        end = offset + utf16_len(match.group())
        if not any(start < end and offset < stop for start, stop in taken):
            found.append({"type": "url", "offset": offset, "length": end - offset})
    return sorted([*entities, *found], key=lambda e: int(e.get("offset", 0))) if found else entities
