"""Broadcast (admins only): compose -> preview -> Confirm, and the progress message's Pause /
Resume / Cancel.

The admin's message (a text, or a photo with a caption) is kept with its entities, so the
formatting is exactly the admin's; the preview is sent by the same function the broadcaster
uses (bot/broadcast_view.send_content), followed by the recipients' count and Confirm / Cancel.
Confirm commits the broadcast, its recipients' snapshot and the audit row in one fenced
transaction keyed by the preview's nonce (a double click, a replay or a failover make one
broadcast), then wakes the broadcaster actor, which does the sending and reports progress.
Opening the composer also shows the broadcasts not yet ended, with their buttons. Everyone
else's adm:broadcast... falls through to the normal screens (IsAdmin)."""

from __future__ import annotations

import secrets
from typing import cast

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import broadcast_view as view
from bot.admins import IsAdmin
from bot.flow import Ctx
from bot.fsm_storage import forget
from bot.services import Services
from store import broadcasts
from store.broadcasts import Content


class Compose(StatesGroup):
    waiting = State()  # the composer asked for the message
    preview = State()  # a preview is shown; its nonce and content are in the state's data


def not_a_command(message: Message) -> bool:
    """A command typed while composing (/start, /admin, /cancel) is a command, not the broadcast."""
    return not (message.text or "").startswith("/")


def router() -> Router:
    router = Router(name="admin_broadcast")
    router.message.filter(IsAdmin())
    router.callback_query.filter(IsAdmin())

    @router.callback_query(F.data == view.PREFIX)
    async def open_composer(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        ctx = Ctx.of(query, bot, services, state)
        await forget(state)
        await state.set_state(Compose.waiting)
        for unfinished in await broadcasts.recent(services.database, services.settings.bot_id, 5):
            if not unfinished.finished:  # still controllable here, should its progress message be lost
                await bot.send_message(ctx.chat_id, view.progress_text(ctx.lang, unfinished),
                                       reply_markup=view.progress_keyboard(ctx.lang, unfinished))
        await bot.send_message(ctx.chat_id, ctx.t("bc_prompt"), reply_markup=view.drop_keyboard(ctx.lang))

    @router.message(StateFilter(Compose.waiting, Compose.preview), not_a_command)
    async def composed(message: Message, bot: Bot, state: FSMContext, services: Services) -> None:
        """The message to broadcast (a second one replaces the first): its preview and the count."""
        ctx = Ctx.of(message, bot, services, state)
        content = view.content_of(message)
        if content is None:
            await bot.send_message(ctx.chat_id, ctx.t("bc_unsupported"), reply_markup=view.drop_keyboard(ctx.lang))
            return
        nonce = secrets.token_urlsafe(12)
        await state.set_state(Compose.preview)
        await state.set_data({"nonce": nonce, "content": content.dump()})
        count = await broadcasts.audience(services.database, services.settings.bot_id)
        await view.send_content(bot, ctx.chat_id, content)
        await bot.send_message(ctx.chat_id, ctx.t("bc_preview", count=count),
                               reply_markup=view.preview_keyboard(ctx.lang, nonce))

    @router.callback_query(F.data.startswith(view.PREFIX + ":"))
    async def pressed(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services,
                      fence_epoch: int) -> None:
        ctx = Ctx.of(query, bot, services, state)
        _, _, action, *rest = (query.data or "").split(":", 3)
        arg = rest[0] if rest else None
        if action == view.CONFIRM and arg:
            await confirm(ctx, query, arg, fence_epoch)
        elif action == view.DROP:
            if await state.get_state() in (Compose.waiting.state, Compose.preview.state):
                await forget(state)
            await _replace(ctx, query, ctx.t("bc_dropped"), None)
        elif action in view.CONTROLS and arg and arg.isdigit():
            await control(ctx, query, int(arg), action, fence_epoch)

    return router


async def confirm(ctx: Ctx, query: CallbackQuery, nonce: str, epoch: int) -> None:
    """The preview keyed by `nonce` becomes a broadcast, once; a second press names the one made."""
    services, settings = ctx.services, ctx.services.settings
    data = await ctx.state.get_data()
    if await ctx.state.get_state() == Compose.preview.state and data.get("nonce") == nonce:
        made, _ = await broadcasts.create(services.database, services.lock_name, epoch, settings.bot_id, nonce=nonce,
                                          admin_id=ctx.user_id, admin_chat_id=ctx.chat_id, admin_lang=ctx.lang,
                                          content=Content.load(str(data["content"])))
        await forget(ctx.state)
        services.wake_broadcaster()
        await _replace(ctx, query, ctx.t("bc_started", id=made.id, total=made.total), None)
        return
    made_before = await broadcasts.by_nonce(services.database, settings.bot_id, nonce)
    if made_before is not None:
        await ctx.bot.send_message(ctx.chat_id, ctx.t("bc_already", id=made_before.id))
    else:
        await ctx.bot.send_message(ctx.chat_id, ctx.t("bc_outdated"))


async def control(ctx: Ctx, query: CallbackQuery, broadcast_id: int, action: str, epoch: int) -> None:
    """Pause, resume or cancel (audited when it changed something); the pressed message shows the
    broadcast as it is now. The broadcaster sees the state at its next recipient."""
    services = ctx.services
    assert action in ("pause", "resume", "cancel")
    found, changed = await broadcasts.act(services.database, services.lock_name, epoch, services.settings.bot_id,
                                          broadcast_id, ctx.user_id, cast(broadcasts.Action, action))
    if found is None:
        await ctx.bot.send_message(ctx.chat_id, ctx.t("bc_unknown"))
        return
    if changed:
        services.wake_broadcaster()
    else:
        await ctx.bot.send_message(ctx.chat_id, ctx.t("bc_unchanged", id=found.id,
                                                      state=view.state_word(ctx.lang, found.state)))
    await _replace(ctx, query, view.progress_text(ctx.lang, found), view.progress_keyboard(ctx.lang, found))


async def _replace(ctx: Ctx, query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None) -> None:
    """The pressed message becomes `text` (its buttons gone or replaced); a new message when it
    cannot be edited (too old, or no longer there)."""
    message = query.message
    if message is not None:
        try:
            await ctx.bot.edit_message_text(text, chat_id=ctx.chat_id, message_id=message.message_id,
                                            reply_markup=markup)
            return
        except TelegramBadRequest as exc:
            if "not modified" in str(exc):
                return
    await ctx.bot.send_message(ctx.chat_id, text, reply_markup=markup)
