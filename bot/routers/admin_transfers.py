"""The admins' side of bank transfers (issue 18), ADMIN_IDS only (anyone else falls through to
the fallback): `adm:transfers` lists the requests awaiting a decision (rows: they survive
restarts), each opens its screenshot card; Approve credits once (store/transfers.approve: the
conditional UPDATE, the credit keyed by the request and the audit row in one fenced transaction)
and then tells the user (bot/money_in.after_credit); Reject asks for a reason (a preset or typed)
and tells the user why. A second click, or a second admin, is told who already decided.

The card and the callback data are bot/routers/transfer.py's (the user's side sends the card).
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError, TelegramNetworkError
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import BaseStorage
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import keyboards
from bot.admins import IsAdmin
from bot.money_in import after_credit, language
from bot.routers.transfer import ADMIN, APPROVE, REJECT, SHOW, leave, send_card, status_text, user_label
from bot.services import Services
from bot.texts import lang_of, money, t
from store import accounts, transfers
from store.money_in import Credited
from store.transfers import AlreadyDecided, Decided, NotReady, Request
from telemetry import logs

log = logs.get("bot")

WHY = "adm:transfers:why:"    # + <id>:<reason code>
TYPE = "adm:transfers:type:"  # + <id>: the admin types the reason
REASONS = ("nf", "sum", "img")
REASON_LIMIT = 300
LISTED = 20
KEY = "tr_reject"             # the request a typed reason is for, in the admin's FSM data


class RejectReason(StatesGroup):
    typing = State()


def _id(data: str | None, prefix: str) -> int | None:
    tail = (data or "")[len(prefix):].split(":", 1)[0]
    return int(tail) if tail.isdigit() else None


async def _who(services: Services, lang: str, request: Request) -> str:
    if request.status == "cancelled":
        return t(lang, "tr_adm_by_user")
    if request.decided_by is None:
        return status_text(lang, request.status)
    admin = await accounts.get_user(services.database, services.settings.bot_id, request.decided_by)
    return user_label(request.decided_by, admin)


async def _outcome(bot: Bot, services: Services, chat_id: int, lang: str, result: AlreadyDecided | NotReady,
                   request_id: int) -> None:
    """What an admin is told when their decision came too late or has nothing to decide."""
    if isinstance(result, NotReady) or result.request.status == "pending":
        await bot.send_message(chat_id, t(lang, "tr_adm_not_ready", id=request_id))
        return
    request = result.request
    await bot.send_message(chat_id, t(lang, "tr_adm_already", id=request.id, status=status_text(lang, request.status),
                                      who=await _who(services, lang, request)))


async def _drop_buttons(bot: Bot, query: CallbackQuery) -> None:
    """The card this admin decided on loses its buttons (best effort: the decision is made)."""
    message = query.message
    if message is None:
        return
    try:
        await bot.edit_message_reply_markup(chat_id=message.chat.id, message_id=message.message_id, reply_markup=None)
    except (TelegramAPIError, TelegramNetworkError) as exc:
        log.info("transfer_card_edit_failed", extra={"error_text": str(exc)[:200]})


async def _approved(bot: Bot, services: Services, storage: BaseStorage, epoch: int, chat_id: int, lang: str,
                    request: Request, credited: Credited) -> None:
    """Tell the user (amount, balance, a kept confirmation again), record it, tell the admin."""
    await after_credit(bot, services, storage, credited)
    await transfers.mark_told(services.database, services.lock_name, epoch, services.settings.bot_id, request.id)
    user = await accounts.get_user(services.database, services.settings.bot_id, request.user_id)
    await bot.send_message(chat_id, t(lang, "tr_adm_approved", id=request.id, amount=money(lang, request.amount),
                                      user=user_label(request.user_id, user),
                                      balance=money(lang, credited.balance.balance)))


async def _rejected(bot: Bot, services: Services, epoch: int, chat_id: int, lang: str, request: Request) -> None:
    """Tell the user why, record it, tell the admin."""
    theirs = await language(services, request.user_id)
    try:
        await bot.send_message(request.user_id, t(theirs, "tr_rejected", id=request.id,
                                                  amount=money(theirs, request.amount), reason=request.reason),
                               reply_markup=keyboards.menu_button(theirs))
    except TelegramForbiddenError:
        await accounts.set_blocked(services.database, services.settings.bot_id, request.user_id, True)
    except (TelegramAPIError, TelegramNetworkError) as exc:
        log.info("transfer_reject_notice_failed", extra={"user_id": request.user_id, "error_text": str(exc)[:200]})
    await transfers.mark_told(services.database, services.lock_name, epoch, services.settings.bot_id, request.id)
    await bot.send_message(chat_id, t(lang, "tr_adm_rejected", id=request.id, reason=request.reason))


async def reject(bot: Bot, services: Services, epoch: int, chat_id: int, lang: str, admin_id: int, request_id: int,
                 decision: str, reason: str | None, code: str | None) -> None:
    """Reject with a typed `reason` or a preset `code` (told in the user's language)."""
    settings = services.settings
    found = await transfers.get(services.database, settings.bot_id, request_id)
    if found is None:
        await bot.send_message(chat_id, t(lang, "tr_adm_not_ready", id=request_id))
        return
    if reason is None:
        reason = t(await language(services, found.user_id), f"tr_reason_{code}")
    result = await transfers.reject(services.database, services.lock_name, epoch, settings.bot_id, request_id,
                                    admin_id, query_id=decision, reason=reason)
    if isinstance(result, Decided):
        log.info("transfer_rejected", extra={"user_id": result.request.user_id, "request_id": request_id,
                                             "admin_id": admin_id})
        await _rejected(bot, services, epoch, chat_id, lang, result.request)
    elif (isinstance(result, AlreadyDecided) and result.request.status == "rejected"
          and result.request.decided_here(decision)):  # this update again, after a crash before the user was told
        await _rejected(bot, services, epoch, chat_id, lang, result.request)
    else:
        await _outcome(bot, services, chat_id, lang, result, request_id)


def _why_markup(lang: str, request_id: int) -> InlineKeyboardMarkup:
    rows = [[keyboards.button(t(lang, f"tr_reason_{code}"), f"{WHY}{request_id}:{code}")] for code in REASONS]
    rows.append([keyboards.button(t(lang, "tr_adm_type_reason"), f"{TYPE}{request_id}")])
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def listing(bot: Bot, services: Services, chat_id: int, lang: str) -> None:
    settings = services.settings
    review, waiting = await transfers.counts(services.database, settings.bot_id)
    rows = []
    for request in await transfers.under_review(services.database, settings.bot_id, LISTED):
        user = await accounts.get_user(services.database, settings.bot_id, request.user_id)
        label = f"#{request.id} · {money(lang, request.amount)} · {user_label(request.user_id, user)}"
        rows.append([keyboards.button(label, f"{SHOW}{request.id}")])
    rows.append([keyboards.button(t(lang, "tr_adm_refresh"), ADMIN), keyboards.button(t(lang, "btn_menu"),
                                                                                    keyboards.MENU_OPEN)])
    text = t(lang, "tr_adm_list" if review else "tr_adm_list_empty", review=review, waiting=waiting)
    await bot.send_message(chat_id, text, reply_markup=InlineKeyboardMarkup(inline_keyboard=rows))


def router() -> Router:
    router = Router(name="admin_transfers")
    router.callback_query.filter(IsAdmin())
    router.message.filter(IsAdmin())

    @router.callback_query(F.data == ADMIN)
    async def pending(query: CallbackQuery, bot: Bot, services: Services) -> None:
        await listing(bot, services, query.from_user.id, lang_of(query.from_user))

    @router.callback_query(F.data.startswith(SHOW))
    async def show(query: CallbackQuery, bot: Bot, services: Services) -> None:
        lang, chat_id, request_id = lang_of(query.from_user), query.from_user.id, _id(query.data, SHOW)
        request = None if request_id is None else await transfers.get(services.database, services.settings.bot_id,
                                                                      request_id)
        if request is not None and request.under_review:
            await send_card(bot, services, chat_id, lang, request)
        else:
            await _outcome(bot, services, chat_id, lang,
                           NotReady(None) if request is None else AlreadyDecided(request), request_id or 0)

    @router.callback_query(F.data.startswith(APPROVE))
    async def approve(query: CallbackQuery, bot: Bot, services: Services, fence_epoch: int,
                      fsm_storage: BaseStorage) -> None:
        lang, admin_id, request_id = lang_of(query.from_user), query.from_user.id, _id(query.data, APPROVE)
        if request_id is None:
            await bot.send_message(admin_id, t(lang, "tr_adm_not_ready", id="?"))
            return
        settings = services.settings
        result = await transfers.approve(services.database, services.lock_name, fence_epoch, settings.bot_id,
                                         request_id, admin_id, query_id=query.id,
                                         referral_bonus=settings.referral_bonus)
        if isinstance(result, Decided):
            assert result.credited is not None  # an approval credits
            log.info("transfer_approved", extra={"user_id": result.request.user_id, "request_id": request_id,
                                                 "admin_id": admin_id, "fresh": result.credited.fresh})
            await _drop_buttons(bot, query)
            await _approved(bot, services, fsm_storage, fence_epoch, admin_id, lang, result.request, result.credited)
        elif (isinstance(result, AlreadyDecided) and result.request.status == "approved"
              and result.request.decided_here(query.id)):  # this update again, after a crash before the user was told
            credited = await transfers.credited(services.database, services.lock_name, fence_epoch, settings.bot_id,
                                                result.request)
            await _approved(bot, services, fsm_storage, fence_epoch, admin_id, lang, result.request, credited)
        else:
            await _outcome(bot, services, admin_id, lang, result, request_id)

    @router.callback_query(F.data.startswith(REJECT))
    async def why(query: CallbackQuery, bot: Bot, services: Services) -> None:
        lang, admin_id, request_id = lang_of(query.from_user), query.from_user.id, _id(query.data, REJECT)
        request = None if request_id is None else await transfers.get(services.database, services.settings.bot_id,
                                                                      request_id)
        if request is None or not request.under_review:
            await _outcome(bot, services, admin_id, lang,
                           NotReady(None) if request is None else AlreadyDecided(request), request_id or 0)
            return
        await bot.send_message(admin_id, t(lang, "tr_adm_why", id=request.id, amount=money(lang, request.amount)),
                               reply_markup=_why_markup(lang, request.id))

    @router.callback_query(F.data.startswith(WHY))
    async def preset_reason(query: CallbackQuery, bot: Bot, services: Services, fence_epoch: int) -> None:
        lang, admin_id = lang_of(query.from_user), query.from_user.id
        request_id, code = _id(query.data, WHY), (query.data or "").rsplit(":", 1)[-1]
        if request_id is None or code not in REASONS:
            await bot.send_message(admin_id, t(lang, "tr_adm_not_ready", id=request_id or "?"))
            return
        await _drop_buttons(bot, query)
        await reject(bot, services, fence_epoch, admin_id, lang, admin_id, request_id, query.id, None, code)

    @router.callback_query(F.data.startswith(TYPE))
    async def type_reason(query: CallbackQuery, bot: Bot, state: FSMContext) -> None:
        lang, admin_id, request_id = lang_of(query.from_user), query.from_user.id, _id(query.data, TYPE)
        if request_id is None:
            return
        await state.set_state(RejectReason.typing)
        await state.update_data({KEY: request_id})
        await bot.send_message(admin_id, t(lang, "tr_adm_type_now", id=request_id, limit=REASON_LIMIT))

    @router.message(RejectReason.typing, F.text, ~F.text.startswith("/"))
    async def typed_reason(message: Message, bot: Bot, state: FSMContext, services: Services,
                           fence_epoch: int) -> None:
        assert message.from_user is not None  # IsAdmin matched a user
        lang, admin_id = lang_of(message.from_user), message.from_user.id
        reason = (message.text or "").strip()[:REASON_LIMIT]
        if not reason:
            await bot.send_message(message.chat.id, t(lang, "tr_adm_reason_text"))
            return
        request_id = (await state.get_data()).get(KEY)
        await leave(state)
        if not isinstance(request_id, int):
            await bot.send_message(admin_id, t(lang, "tr_adm_not_ready", id="?"))
            return
        await reject(bot, services, fence_epoch, message.chat.id, lang, admin_id, request_id,
                     f"m:{message.chat.id}:{message.message_id}", reason, None)

    @router.message(RejectReason.typing, ~F.text)
    async def reason_not_text(message: Message, bot: Bot) -> None:
        await bot.send_message(message.chat.id, t(lang_of(message.from_user), "tr_adm_reason_text"))

    return router
