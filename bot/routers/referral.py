"""Referrals: /start ref_<code> links a new user to whoever shared the link, and the "Invite
friends" screen (ref:open, /invite) shows the user's own link, how many they brought and what
they earned.

This router sits before the menu's: it takes only /start with a ref_ payload, links (or not:
store/referrals.py decides who is new, and an unknown or malformed code, a self-referral or a
user already linked is simply not linked) and then welcomes the user exactly as /start does.
Linking is idempotent, so an update run again after a crash links once and welcomes again.
"""

from __future__ import annotations

from urllib.parse import quote

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot import keyboards
from bot.flow import Ctx
from bot.routers import menu
from bot.services import Services
from store import referrals
from telemetry import logs

log = logs.get("bot")


async def link_of(bot: Bot, code: str) -> str:
    """The user's deep link; the bot's username from getMe (aiogram keeps it after the first call)."""
    me = await bot.me()
    return f"https://t.me/{me.username}?start={referrals.payload_of(code)}"


async def send_invite(ctx: Ctx) -> None:
    settings, db = ctx.services.settings, ctx.services.database
    code = await referrals.code_of(db, settings.bot_id, ctx.user_id)
    link = await link_of(ctx.bot, code)
    stats = await referrals.stats(db, settings.bot_id, ctx.user_id)
    text = ctx.t("invite_screen", link=link, bonus=ctx.money(settings.referral_bonus), invited=stats.invited,
                 paid=stats.paid, earned=ctx.money(stats.earned))
    share = f"https://t.me/share/url?url={quote(link, safe='')}&text={quote(ctx.t('invite_share_text'), safe='')}"
    markup = InlineKeyboardMarkup(inline_keyboard=[
        [InlineKeyboardButton(text=ctx.t("btn_ref_share"), url=share)],
        [keyboards.button(ctx.t("btn_balance"), keyboards.MENU_BALANCE),
         keyboards.button(ctx.t("btn_menu"), keyboards.MENU_OPEN)],
    ])
    await ctx.bot.send_message(ctx.chat_id, text, reply_markup=markup)


def router() -> Router:
    router = Router(name="referral")

    @router.message(CommandStart(deep_link=True, magic=F.args.startswith(referrals.PAYLOAD_PREFIX)))
    async def start_ref(message: Message, command: CommandObject, state: FSMContext, services: Services,
                        fence_epoch: int, first_contact: bool = False) -> None:
        user = message.from_user
        assert user is not None  # CommandStart in a private chat comes from a user
        settings = services.settings
        linked = await referrals.link(services.database, services.lock_name, fence_epoch, settings.bot_id, user.id,
                                      referrals.parse_payload(command.args))
        log.info("referral_link", extra={"user_id": user.id, "outcome": linked.outcome,
                                         "referrer_id": linked.referrer_id})
        await menu.welcome(message, state, services, first_contact=first_contact)  # an invited newcomer: the gift

    @router.message(Command("invite"))
    async def invite(message: Message, bot: Bot, state: FSMContext, services: Services) -> None:
        await send_invite(Ctx.of(message, bot, services, state))

    @router.callback_query(F.data == keyboards.INVITE)
    async def invite_button(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        await send_invite(Ctx.of(query, bot, services, state))

    return router
