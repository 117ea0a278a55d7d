"""Messages: sending, editing, deleting, copying and forwarding them, and answering button presses.

Why it exists: this is most of what a bot does, and where Telegram's checks catch real bot bugs —
texts and captions parsed (HTML) and length-limited, inline keyboards validated (64-byte
``callback_data``), "message is not modified" on a no-op edit, a callback query answered once.
:class:`MessageMethods` builds the bot's messages into the chats of the world.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from fakes.telegram.media import MediaMethods
from fakes.telegram.parse_mode import auto_links, parse_html
from fakes.telegram.wire import MEDIA_METHODS, Call, bad, now
from fakes.telegram.world import QUERY_TOO_OLD, ChatState

_TEXT_LIMIT = 4096
_CAPTION_LIMIT = 1024
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)


class MessageMethods(MediaMethods):
    """The message methods and the message building and validation they share."""

    _NO_MESSAGE: ClassVar[str] = "message to edit not found"
    _CONTENT_KEYS: ClassVar[tuple[str, ...]] = (
        "text",
        "entities",
        "caption",
        "caption_entities",
        "photo",
        "video",
        "audio",
        "document",
        "animation",
        "has_media_spoiler",
        "show_caption_above_media",
    )

    # ------------------------------------------------------------------ building and checking

    def _new_message(self, call: Call, chat: ChatState, content: dict[str, Any]) -> dict[str, Any]:
        chat.last_message_id += 1
        message: dict[str, Any] = {
            "message_id": chat.last_message_id,
            "from": self._bot(call),
            "chat": dict(chat.info),
            "date": now(),
        }
        thread = call.params.get("message_thread_id")
        if isinstance(thread, int) and chat.info.get("type") != "private":
            message["message_thread_id"] = thread
        reply_to = call.params.get("reply_to_message_id")
        reply_parameters = call.params.get("reply_parameters")
        if isinstance(reply_parameters, dict):
            reply_to = reply_parameters.get("message_id", reply_to)
        if isinstance(reply_to, int):
            original = chat.messages.get(reply_to)
            if original is not None:
                message["reply_to_message"] = {k: v for k, v in original.items() if k != "reply_to_message"}
            else:
                allow = call.params.get("allow_sending_without_reply") or (
                    isinstance(reply_parameters, dict) and reply_parameters.get("allow_sending_without_reply")
                )
                if not allow:
                    raise bad("message to be replied not found")
        message.update(content)
        markup = self._markup(call)
        if markup is not None:
            message["reply_markup"] = markup
        chat.messages[message["message_id"]] = message
        return message

    def _markup(self, call: Call) -> dict[str, Any] | None:
        """Validate ``reply_markup``; only an inline keyboard is echoed back in the Message."""
        markup = call.params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            if not {"keyboard", "remove_keyboard", "force_reply"} & markup.keys():
                raise bad('can\'t find field "inline_keyboard"')
            return None
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or any(not isinstance(row, list) for row in rows):
            raise bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
        actions = (
            "url",
            "callback_data",
            "web_app",
            "login_url",
            "switch_inline_query",
            "switch_inline_query_current_chat",
            "switch_inline_query_chosen_chat",
            "copy_text",
            "callback_game",
            "pay",
        )
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not isinstance(button.get("text"), str) or not button["text"]:
                    raise bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
                if not any(key in button for key in actions):
                    raise bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and (not isinstance(data, str) or not 1 <= len(data.encode()) <= 64):
                    raise bad("BUTTON_DATA_INVALID")
                url = button.get("url")
                if url is not None and not (isinstance(url, str) and re.match(r"^(https?|tg)://\S+$", url)):
                    raise bad("inline keyboard button URL is invalid")
        return markup

    def _formatted(self, call: Call, name: str, entities_name: str, limit: int) -> tuple[str | None, list[Any]]:
        """The text/caption as Telegram stores it (parse_mode applied) and its entities."""
        value = call.params.get(name)
        if value is None:
            return None, []
        text = str(value)
        entities = call.params.get(entities_name)
        mode = call.params.get("parse_mode")
        if isinstance(mode, str) and mode:
            if mode.lower() == "html":
                text, entities = parse_html(text)
            elif mode.lower() not in ("markdown", "markdownv2"):
                raise bad("unsupported parse_mode")
        if len(text) > limit:
            raise bad("message is too long" if name == "text" else "message caption is too long")
        return text, auto_links(text, entities if isinstance(entities, list) else [])

    def _text_content(self, call: Call) -> dict[str, Any]:
        if not str(call.params.get("text") or "").strip():
            raise bad("message text is empty")
        text, entities = self._formatted(call, "text", "entities", _TEXT_LIMIT)
        if not (text or "").strip():
            raise bad("message text is empty")
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        return content

    def _caption_content(self, call: Call) -> dict[str, Any]:
        caption, entities = self._formatted(call, "caption", "caption_entities", _CAPTION_LIMIT)
        content: dict[str, Any] = {}
        if caption:
            content["caption"] = caption
            if entities:
                content["caption_entities"] = entities
            if call.params.get("show_caption_above_media"):
                content["show_caption_above_media"] = True
        return content

    def _stored_message(self, call: Call, not_found: str) -> tuple[ChatState, dict[str, Any]] | None:
        """The message an edit/delete targets, or None for an inline message (inline_message_id)."""
        if call.params.get("inline_message_id") and "chat_id" not in call.params:
            return None
        chat = self._target_chat(call)
        message_id = self._int_param(call, "message_id", "message identifier is not specified")
        message = chat.messages.get(message_id)
        if message is None:
            raise bad(not_found)
        return chat, message

    def _editable(self, call: Call) -> tuple[ChatState, dict[str, Any]] | None:
        found = self._stored_message(call, self._NO_MESSAGE)
        if found is not None and not (found[1].get("from") or {}).get("is_bot"):
            raise bad("message can't be edited")
        return found

    def _source_message(self, call: Call, missing: str) -> dict[str, Any]:
        source = self._target_chat(call, "from_chat_id", writing=False)
        message_id = self._int_param(call, "message_id", "message identifier is not specified")
        message = source.messages.get(message_id)
        if message is None:
            raise bad(missing)
        return message

    @staticmethod
    def _set_markup(message: dict[str, Any], markup: dict[str, Any] | None) -> None:
        message.pop("reply_markup", None)
        if markup is not None:
            message["reply_markup"] = markup
        message["edit_date"] = now()

    # ------------------------------------------------------------------ methods

    async def _send_message(self, call: Call) -> dict[str, Any]:
        chat = self._target_chat(call)
        return self._new_message(call, chat, self._text_content(call))

    async def _send_media(self, call: Call) -> dict[str, Any]:
        name, kind = MEDIA_METHODS[call.method]
        chat = self._target_chat(call)
        content = self._caption_content(call)
        record = await self._file_param(call, name, kind)
        content.update(self._media_content(record, call))
        if call.params.get("has_spoiler"):
            content["has_media_spoiler"] = True
        return self._new_message(call, chat, content)

    async def _send_media_group(self, call: Call) -> list[dict[str, Any]]:
        chat = self._target_chat(call)
        media = call.params.get("media")
        if not isinstance(media, list) or not media:
            raise bad('parameter "media" is required')
        if not 2 <= len(media) <= 10:
            raise bad("wrong number of media in the group: must be 2-10")
        kinds = {item.get("type") if isinstance(item, dict) else None for item in media}
        if not kinds <= {"photo", "video", "audio", "document"}:
            raise bad("unsupported media type in the group")
        if len(kinds) > 1 and not kinds <= {"photo", "video"}:
            raise bad("documents and audio can't be mixed with other media types")
        self._media_group_counter += 1
        group_id = str(13_000_000_000_000_000 + self._media_group_counter)
        prepared: list[dict[str, Any]] = []
        for item in media:
            item_call = Call(method=call.method, params=dict(item), token=call.token, at=call.at, uploads=call.uploads)
            record = await self._file_param(item_call, "media", str(item["type"]), value=item.get("media"))
            content = {"media_group_id": group_id, **self._caption_content(item_call)}
            content.update(self._media_content(record, item_call))
            prepared.append(content)
        bare = Call(method=call.method, params={}, token=call.token, at=call.at)
        return [self._new_message(bare, chat, content) for content in prepared]

    async def _edit_message_text(self, call: Call) -> dict[str, Any] | bool:
        content = self._text_content(call)
        markup = self._markup(call)
        found = self._editable(call)
        if found is None:
            return True
        _, message = found
        if "text" not in message:
            raise bad("there is no text in the message to edit")
        if (
            message.get("text") == content["text"]
            and message.get("entities", []) == content.get("entities", [])
            and message.get("reply_markup") == markup
        ):
            raise bad(_NOT_MODIFIED)
        message["text"] = content["text"]
        message.pop("entities", None)
        if "entities" in content:
            message["entities"] = content["entities"]
        self._set_markup(message, markup)
        return message

    async def _edit_message_caption(self, call: Call) -> dict[str, Any] | bool:
        content = self._caption_content(call)
        markup = self._markup(call)
        found = self._editable(call)
        if found is None:
            return True
        _, message = found
        if not {"photo", "video", "audio", "document", "animation"} & message.keys():
            raise bad("there is no caption in the message to edit")
        if (
            message.get("caption") == content.get("caption")
            and message.get("caption_entities", []) == content.get("caption_entities", [])
            and message.get("reply_markup") == markup
        ):
            raise bad(_NOT_MODIFIED)
        for key in ("caption", "caption_entities", "show_caption_above_media"):
            message.pop(key, None)
        message.update(content)
        self._set_markup(message, markup)
        return message

    async def _edit_message_reply_markup(self, call: Call) -> dict[str, Any] | bool:
        markup = self._markup(call)
        found = self._editable(call)
        if found is None:
            return True
        _, message = found
        if message.get("reply_markup") == markup:
            raise bad(_NOT_MODIFIED)
        self._set_markup(message, markup)
        return message

    async def _delete_message(self, call: Call) -> bool:
        found = self._stored_message(call, "message to delete not found")
        if found is None:
            raise bad("message identifier is not specified")
        chat, message = found
        del chat.messages[int(message["message_id"])]
        return True

    async def _answer_callback_query(self, call: Call) -> bool:
        query_id = call.params.get("callback_query_id")
        if not query_id:
            raise bad(QUERY_TOO_OLD)
        text = call.params.get("text")
        if isinstance(text, str) and len(text) > 200:
            raise bad("MESSAGE_TOO_LONG")
        self._answer_once(f"callback:{query_id}")
        return True

    async def _copy_message(self, call: Call) -> dict[str, Any]:
        original = self._source_message(call, "message to copy not found")
        chat = self._target_chat(call)
        if "invoice" in original or "successful_payment" in original:
            raise bad("message can't be copied")
        content = {key: original[key] for key in self._CONTENT_KEYS if key in original}
        if "caption" in call.params:
            for key in ("caption", "caption_entities"):
                content.pop(key, None)
            content.update(self._caption_content(call))
        if "reply_markup" not in call.params and "reply_markup" in original:
            content["reply_markup"] = original["reply_markup"]
        message = self._new_message(call, chat, json.loads(json.dumps(content)))
        return {"message_id": message["message_id"]}

    async def _forward_message(self, call: Call) -> dict[str, Any]:
        original = self._source_message(call, "message to forward not found")
        chat = self._target_chat(call)
        content = {key: original[key] for key in self._CONTENT_KEYS if key in original}
        sender = original.get("from") or self._bot(call)
        content["forward_origin"] = {"type": "user", "date": original.get("date", now()), "sender_user": sender}
        content["forward_date"] = original.get("date", now())
        bare = Call(method=call.method, params={}, token=call.token, at=call.at)
        return self._new_message(bare, chat, json.loads(json.dumps(content)))
