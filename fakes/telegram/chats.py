"""The bot and its chats rather than their messages: ``getMe``, ``getChat``, chat actions, commands,
descriptions, menu button.

Why it exists: the bot calls these at start-up (``getMe``, ``setMyCommands``, ``setMyDescription``,
``setMyShortDescription``, ``setChatMenuButton``)
and while working (``sendChatAction``); they touch the bot's settings and chat info, not messages.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fakes.telegram.wire import Call, bad
from fakes.telegram.world import TelegramWorld

_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)

_BOT_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_LANGUAGE_CODE_RE = re.compile(r"^[a-z]{2}$")


class ChatMethods(TelegramWorld):
    """The bot's profile, its command lists and menu buttons, chat info and chat actions."""

    async def _get_me(self, call: Call) -> dict[str, Any]:
        return {
            **self._bot(call),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_chat(self, call: Call) -> dict[str, Any]:
        chat = self._target_chat(call, writing=False)
        info = dict(chat.info)
        info.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": True,
                    "limited_gifts": True,
                    "unique_gifts": True,
                    "premium_subscription": True,
                    "gifts_from_channels": True,
                },
            }
        )
        return info

    async def _send_chat_action(self, call: Call) -> bool:
        self._target_chat(call)
        if call.params.get("action") not in _CHAT_ACTIONS:
            raise bad("wrong parameter action in request")
        return True

    @staticmethod
    def _commands_key(call: Call) -> tuple[str, str]:
        scope = call.params.get("scope")
        scope = scope if isinstance(scope, dict) else {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(call.params.get("language_code") or "")

    async def _set_my_commands(self, call: Call) -> bool:
        commands = call.params.get("commands")
        if not isinstance(commands, list):
            raise bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad("too many commands")
        for command in commands:
            if not isinstance(command, dict) or not _BOT_COMMAND_RE.match(str(command.get("command", ""))):
                raise bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad("BOT_COMMAND_DESCRIPTION_INVALID")
        self._commands[self._commands_key(call)] = [
            {"command": str(c["command"]), "description": str(c["description"])} for c in commands
        ]
        return True

    async def _get_my_commands(self, call: Call) -> list[dict[str, Any]]:
        return list(self._commands.get(self._commands_key(call), []))

    async def _delete_my_commands(self, call: Call) -> bool:
        self._commands.pop(self._commands_key(call), None)
        return True

    @staticmethod
    def _profile_language(call: Call) -> str:
        """A description's language_code: two letters (ISO 639-1), or empty for everyone else."""
        code = call.params.get("language_code")
        code = "" if code is None else str(code)
        if code and not _LANGUAGE_CODE_RE.match(code):
            raise bad("LANGUAGE_CODE_INVALID")
        return code

    @staticmethod
    def _profile_text(call: Call, name: str, most: int) -> str:
        text = call.params.get(name)
        text = "" if text is None else str(text)
        if len(text) > most:  # Telegram counts characters; an empty text removes the language's own
            raise bad(f"{name.upper()}_TOO_LONG")
        return text

    async def _set_my_description(self, call: Call) -> bool:
        code = self._profile_language(call)
        text = self._profile_text(call, "description", 512)
        if text:
            self._descriptions[code] = text
        else:
            self._descriptions.pop(code, None)
        return True

    async def _get_my_description(self, call: Call) -> dict[str, Any]:
        """The language's own description ("" when it has none; Telegram then shows the default one)."""
        return {"description": self._descriptions.get(self._profile_language(call), "")}

    async def _set_my_short_description(self, call: Call) -> bool:
        code = self._profile_language(call)
        text = self._profile_text(call, "short_description", 120)
        if text:
            self._short_descriptions[code] = text
        else:
            self._short_descriptions.pop(code, None)
        return True

    async def _get_my_short_description(self, call: Call) -> dict[str, Any]:
        return {"short_description": self._short_descriptions.get(self._profile_language(call), "")}

    async def _set_chat_menu_button(self, call: Call) -> bool:
        button = call.params.get("menu_button")
        if button is None:
            button = {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in ("default", "commands", "web_app"):
            raise bad("can't parse menu button JSON object")
        if button["type"] == "web_app" and not (button.get("text") and isinstance(button.get("web_app"), dict)):
            raise bad("BUTTON_TYPE_INVALID")
        chat_id = call.params.get("chat_id")
        self._menu_buttons[chat_id if isinstance(chat_id, int) else None] = button
        return True

    async def _get_chat_menu_button(self, call: Call) -> dict[str, Any]:
        chat_id = call.params.get("chat_id")
        key = chat_id if isinstance(chat_id, int) else None
        return self._menu_buttons.get(key) or self._menu_buttons.get(None) or {"type": "default"}
