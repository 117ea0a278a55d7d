"""Top up by bank transfer (issue 18), off unless PAYMENT_TRANSFER_DETAILS is set: the user picks
an amount (a preset or their own), gets the details and the request's number, and sends a
screenshot of the transfer; admins get it with Approve / Reject (bot/routers/admin_transfers.py).

The request row is written (fenced) before the details are shown, so the number is real and a
second "Bank transfer" resumes it. While the flow waits for typed input it holds its own FSM state
but keeps the FSM data, so a wizard the user left for a top-up (a kept confirmation) is resumed
when the flow ends, and its Confirm works after the credit (bot/money_in.after_credit).

Telegram's terms ask digital goods to be sold for Stars only: `run.py check` warns when this is on.
"""

from __future__ import annotations

import re
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.filters import Filter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, TelegramObject

from bot import keyboards
from bot.flow import CONFIRM, Ctx, Wiz, Wizard
from bot.fsm_storage import forget
from bot.money_in import language
from bot.services import Services
from bot.texts import money, t
from store import accounts, transfers
from store.transfers import Attached, NotAwaiting, Request
from telemetry import logs

log = logs.get("bot")

PREFIX = "tr:"
OPEN = keyboards.TRANSFER    # Balance's "Bank transfer"
OWN = "tr:own"              # type an amount
STOP = "tr:stop"            # leave the amount prompt
AMOUNT = "tr:amt:"          # + kopecks of a preset
CANCEL = "tr:cancel:"       # + request id
ADMIN = "adm:transfers"     # the admins' list; decisions below it (bot/routers/admin_transfers.py)
APPROVE = "adm:transfers:ok:"
REJECT = "adm:transfers:no:"
SHOW = "adm:transfers:show:"

PRESETS_RUBLES = (500, 1_000, 2_000, 5_000)
SCREENSHOT_HOURS = 24       # a request with no screenshot by then expires (said in the details message)
_AMOUNT = re.compile(r"^(\d{1,9})(?:[.,](\d{1,2}))?$")
_CURRENCY = re.compile(r"(₽|руб(?:лей|ля|ль)?\.?|rub(?:les?)?\.?|р\.?)$", re.IGNORECASE)


class TransferFlow(StatesGroup):
    amount = State()
    proof = State()


class TransfersOn(Filter):
    """Transfers are on: PAYMENT_TRANSFER_DETAILS is set. Off, `tr:` buttons in old messages fall
    through to the fallback (the menu), and nothing is written."""

    async def __call__(self, event: TelegramObject, services: Services | None = None, **_: Any) -> bool:
        return services is not None and enabled(services)


def enabled(services: Services) -> bool:
    return bool((services.settings.payment_transfer_details or "").strip())


def presets(min_kopecks: int, max_kopecks: int) -> list[int]:
    """The preset amounts (kopecks) within the bounds; the bounds themselves when none fits."""
    within = [r * 100 for r in PRESETS_RUBLES if min_kopecks <= r * 100 <= max_kopecks]
    return within or sorted({min_kopecks, max_kopecks})


def parse_amount(text: str) -> int | None:
    """Rubles as typed ("500", "750,50", "1 500 ₽") in kopecks, or None."""
    cleaned = re.sub(r"[\s\u00a0\u202f]", "", text)
    cleaned = _CURRENCY.sub("", cleaned)
    match = _AMOUNT.match(cleaned)
    if match is None:
        return None
    cents = (match.group(2) or "0").ljust(2, "0")
    return int(match.group(1)) * 100 + int(cents)


# --- what admins see (shared with bot/routers/admin_transfers.py) -------------------------------

def user_label(user_id: int, user: accounts.User | None) -> str:
    return f"{user_id} (@{user.username})" if user is not None and user.username else str(user_id)


def card(lang: str, request: Request, user: accounts.User | None, services: Services) -> str:
    created = request.created_at.astimezone(services.settings.zone).strftime("%d.%m.%Y %H:%M")
    return t(lang, "tr_adm_card", id=request.id, amount=money(lang, request.amount),
             user=user_label(request.user_id, user), created=created)


def decision_markup(lang: str, request_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[
        keyboards.button(t(lang, "tr_adm_approve"), f"{APPROVE}{request_id}"),
        keyboards.button(t(lang, "tr_adm_reject"), f"{REJECT}{request_id}")]])


async def send_card(bot: Bot, services: Services, admin_id: int, lang: str, request: Request) -> bool:
    """The screenshot (by file_id) with the request and Approve / Reject, to one admin."""
    if request.screenshot is None:
        return False
    user = await accounts.get_user(services.database, services.settings.bot_id, request.user_id)
    caption, markup = card(lang, request, user, services), decision_markup(lang, request.id)
    try:
        if request.screenshot_kind == "document":
            await bot.send_document(admin_id, request.screenshot, caption=caption, reply_markup=markup)
        else:
            await bot.send_photo(admin_id, request.screenshot, caption=caption, reply_markup=markup)
        return True
    except (TelegramAPIError, TelegramNetworkError) as exc:
        log.info("transfer_card_failed", extra={"user_id": admin_id, "error_text": str(exc)[:200]})
        return False


async def notify_admins(bot: Bot, services: Services, request: Request) -> int:
    """Every admin gets the request's card; how many did. An admin who cannot be reached (never
    started the bot) still finds it under adm:transfers."""
    sent = 0
    for admin_id in sorted(services.settings.admin_ids):
        sent += await send_card(bot, services, admin_id, await language(services, admin_id), request)
    return sent


# --- leaving the flow ---------------------------------------------------------------------------

MINE = (TransferFlow.amount.state, TransferFlow.proof.state)


async def leave(state: FSMContext) -> Wiz | None:
    """End the flow's state: back to the wizard the user left (its data was kept), else clear."""
    wiz = Wiz.load(await state.get_data())
    if wiz is not None:
        await state.set_state(Wizard.step)
        return wiz
    await forget(state)
    return None


def after_markup(lang: str, wiz: Wiz | None) -> InlineKeyboardMarkup:
    """Back to a kept confirmation when there is one, Balance and Menu."""
    rows = []
    if wiz is not None and wiz.at == CONFIRM:
        rows.append([keyboards.button(t(lang, "btn_back_to_confirmation"), keyboards.step_data(wiz.nonce, "show"))])
    rows.append([keyboards.button(t(lang, "btn_balance"), keyboards.MENU_BALANCE),
                 keyboards.button(t(lang, "btn_menu"), keyboards.MENU_OPEN)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def cancel_markup(lang: str, request_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[
        [keyboards.button(t(lang, "tr_btn_cancel"), f"{CANCEL}{request_id}")],
        [keyboards.button(t(lang, "btn_menu"), keyboards.MENU_OPEN)]])


# --- the user's screens -------------------------------------------------------------------------

def _bounds(ctx: Ctx) -> dict[str, str]:
    settings = ctx.services.settings
    return {"min": ctx.money(settings.transfer_min), "max": ctx.money(settings.transfer_max)}


async def choose(ctx: Ctx) -> None:
    """The amounts, or the user's live request (one at a time)."""
    settings = ctx.services.settings
    live = await transfers.open_request(ctx.services.database, settings.bot_id, ctx.user_id)
    if live is not None:
        await show_request(ctx, live, resumed=True)
        return
    amounts = presets(settings.transfer_min, settings.transfer_max)
    buttons = [keyboards.button(ctx.money(k), f"{AMOUNT}{k}") for k in amounts]
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    rows.append([keyboards.button(ctx.t("tr_btn_own"), OWN)])
    rows.append([keyboards.button(ctx.t("btn_balance"), keyboards.MENU_BALANCE),
                 keyboards.button(ctx.t("btn_menu"), keyboards.MENU_OPEN)])
    await ctx.bot.send_message(ctx.chat_id, ctx.t("tr_choose", **_bounds(ctx)),
                               reply_markup=InlineKeyboardMarkup(inline_keyboard=rows))


async def show_request(ctx: Ctx, request: Request, *, resumed: bool = False) -> None:
    """A request awaiting its screenshot: the details (as configured) and the number, and the flow
    waits for the screenshot; one under review: say so."""
    if request.under_review:
        await ctx.bot.send_message(ctx.chat_id, ctx.t("tr_under_review", id=request.id,
                                                      amount=ctx.money(request.amount)),
                                   reply_markup=cancel_markup(ctx.lang, request.id))
        return
    details = (ctx.services.settings.payment_transfer_details or "").strip()
    text = ctx.t("tr_details", id=request.id, amount=ctx.money(request.amount), details=details,
                 hours=SCREENSHOT_HOURS)
    if resumed:
        text = ctx.t("tr_resumed", id=request.id, amount=ctx.money(request.amount)) + "\n\n" + text
    await ctx.state.set_state(TransferFlow.proof)
    await ctx.bot.send_message(ctx.chat_id, text, reply_markup=cancel_markup(ctx.lang, request.id))


async def start_request(ctx: Ctx, amount: int, epoch: int) -> None:
    """Write the request (fenced), then show its details."""
    settings = ctx.services.settings
    if not settings.transfer_min <= amount <= settings.transfer_max:
        await ctx.state.set_state(TransferFlow.amount)
        await ctx.bot.send_message(ctx.chat_id, ctx.t("tr_out_of_range", amount=ctx.money(amount), **_bounds(ctx)),
                                   reply_markup=stop_markup(ctx.lang))
        return
    request, fresh = await transfers.create(ctx.services.database, ctx.services.lock_name, epoch, settings.bot_id,
                                            ctx.user_id, amount, ttl=SCREENSHOT_HOURS * 3600.0)
    if fresh:
        log.info("transfer_requested", extra={"user_id": ctx.user_id, "request_id": request.id, "amount": amount})
    await show_request(ctx, request, resumed=not fresh)
    if request.under_review:
        await leave(ctx.state)


def stop_markup(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[keyboards.button(t(lang, "tr_btn_stop"), STOP)]])


async def screenshot(ctx: Ctx, file_id: str, kind: str, epoch: int) -> None:
    """The proof: on the user's request awaiting one, then to every admin (once: a run of the same
    update again sends it only if the admins were not reached yet)."""
    services, settings = ctx.services, ctx.services.settings
    result = await transfers.attach_screenshot(services.database, services.lock_name, epoch, settings.bot_id,
                                               ctx.user_id, file_id, kind)
    if isinstance(result, Attached):
        request = result.request
        if result.fresh or request.notified_at is None:
            log.info("transfer_screenshot", extra={"user_id": ctx.user_id, "request_id": request.id})
            if await notify_admins(ctx.bot, services, request):
                await transfers.mark_notified(services.database, services.lock_name, epoch, settings.bot_id,
                                              request.id)
        wiz = await leave(ctx.state)  # after the admins were reached: a crash before it runs this again
        text = ctx.t("tr_received", id=request.id, amount=ctx.money(request.amount))
        await ctx.bot.send_message(ctx.chat_id, text, reply_markup=after_markup(ctx.lang, wiz))
        return
    wiz = await leave(ctx.state)
    await ctx.bot.send_message(ctx.chat_id, not_awaiting(ctx, result), reply_markup=after_markup(ctx.lang, wiz))


def not_awaiting(ctx: Ctx, result: NotAwaiting) -> str:
    request = result.request
    if request is None or request.status not in ("pending", "expired"):
        return ctx.t("tr_no_request")
    if request.status == "expired":
        return ctx.t("tr_expired", id=request.id)
    return ctx.t("tr_under_review", id=request.id, amount=ctx.money(request.amount))


def status_text(lang: str, status: str) -> str:
    return t(lang, f"tr_status_{status}")


def _image_document(message: Message) -> bool:
    document = message.document
    return document is not None and (document.mime_type or "").startswith("image/")


def router() -> Router:
    router = Router(name="transfer")
    on = TransfersOn()

    @router.callback_query(F.data == OPEN, on)
    async def open_(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        await choose(Ctx.of(query, bot, services, state))

    @router.callback_query(F.data.startswith(AMOUNT), on)
    async def preset(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services, fence_epoch: int) -> None:
        ctx = Ctx.of(query, bot, services, state)
        tail = (query.data or "")[len(AMOUNT):]
        if not tail.isdigit():
            await choose(ctx)
            return
        await start_request(ctx, int(tail), fence_epoch)

    @router.callback_query(F.data == OWN, on)
    async def own(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        ctx = Ctx.of(query, bot, services, state)
        await state.set_state(TransferFlow.amount)
        await bot.send_message(ctx.chat_id, ctx.t("tr_ask_amount", **_bounds(ctx)), reply_markup=stop_markup(ctx.lang))

    @router.callback_query(F.data == STOP)
    async def stop(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services,
                   raw_state: str | None = None) -> None:
        ctx = Ctx.of(query, bot, services, state)
        wiz = await leave(state) if raw_state in MINE else None
        await bot.send_message(ctx.chat_id, ctx.t("cancelled"), reply_markup=after_markup(ctx.lang, wiz))

    @router.message(TransferFlow.amount, F.text, ~F.text.startswith("/"), on)
    async def typed_amount(message: Message, bot: Bot, state: FSMContext, services: Services,
                           fence_epoch: int) -> None:
        ctx = Ctx.of(message, bot, services, state)
        text = message.text or ""
        amount = parse_amount(text)
        if amount is None:
            await bot.send_message(ctx.chat_id, ctx.t("tr_bad_amount", text=text[:40], **_bounds(ctx)),
                                   reply_markup=stop_markup(ctx.lang))
            return
        await start_request(ctx, amount, fence_epoch)

    @router.message(TransferFlow.amount, ~F.text, on)
    async def amount_not_text(message: Message, bot: Bot, state: FSMContext, services: Services) -> None:
        ctx = Ctx.of(message, bot, services, state)
        await bot.send_message(ctx.chat_id, ctx.t("tr_amount_as_text"), reply_markup=stop_markup(ctx.lang))

    @router.message(TransferFlow.proof, F.photo, on)
    async def photo(message: Message, bot: Bot, state: FSMContext, services: Services, fence_epoch: int) -> None:
        assert message.photo  # the filter
        largest = max(message.photo, key=lambda size: size.width * size.height)
        await screenshot(Ctx.of(message, bot, services, state), largest.file_id, "photo", fence_epoch)

    @router.message(TransferFlow.proof, F.document, on)
    async def document(message: Message, bot: Bot, state: FSMContext, services: Services, fence_epoch: int) -> None:
        ctx = Ctx.of(message, bot, services, state)
        if _image_document(message):
            assert message.document is not None
            await screenshot(ctx, message.document.file_id, "document", fence_epoch)
        else:
            await hint(ctx)

    @router.message(TransferFlow.proof, ~F.text.startswith("/"), on)
    async def not_a_screenshot(message: Message, bot: Bot, state: FSMContext, services: Services) -> None:
        await hint(Ctx.of(message, bot, services, state))

    @router.callback_query(F.data.startswith(CANCEL))
    async def cancel(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services, fence_epoch: int,
                     raw_state: str | None = None) -> None:
        """Works when transfers were switched off meanwhile too: a user can always withdraw."""
        ctx = Ctx.of(query, bot, services, state)
        tail = (query.data or "")[len(CANCEL):]
        request, cancelled = (None, False)
        if tail.isdigit():
            request, cancelled = await transfers.cancel(services.database, services.lock_name, fence_epoch,
                                                        services.settings.bot_id, ctx.user_id, int(tail))
        wiz = await leave(state) if raw_state in MINE else None
        if request is None:
            text = ctx.t("tr_no_request")
        elif cancelled:
            log.info("transfer_cancelled", extra={"user_id": ctx.user_id, "request_id": request.id})
            text = ctx.t("tr_cancelled", id=request.id)
        else:
            text = ctx.t("tr_cannot_cancel", id=request.id, status=status_text(ctx.lang, request.status))
        await bot.send_message(ctx.chat_id, text, reply_markup=after_markup(ctx.lang, wiz))

    return router


async def hint(ctx: Ctx) -> None:
    """Not a screenshot: say what is needed (the request awaiting one, if it still does)."""
    settings = ctx.services.settings
    live = await transfers.open_request(ctx.services.database, settings.bot_id, ctx.user_id)
    if live is None or not live.awaiting_screenshot:
        wiz = await leave(ctx.state)
        await ctx.bot.send_message(ctx.chat_id, ctx.t("tr_no_request"), reply_markup=after_markup(ctx.lang, wiz))
        return
    await ctx.bot.send_message(ctx.chat_id, ctx.t("tr_need_screenshot", id=live.id),
                               reply_markup=cancel_markup(ctx.lang, live.id))
