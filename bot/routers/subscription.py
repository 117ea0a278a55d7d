"""Subscriptions for Telegram Stars (issue 18): the plans screen (/subscribe, or ⭐ on Balance),
Buy (an order, then createInvoiceLink with subscription_period, sent as a URL button), the
payments of a subscription (the first and every renewal: successful_payment with is_recurring),
Telegram's `subscription` update (canceled / active / failed), and Cancel renewal
(editUserStarSubscription).

Callback data: sub:open | sub:buy:<plan id> | sub:cancel:<subscription id> | sub:resume:<id>.
This router sits before the Stars router: it takes the recurring payments, the Stars router the
one-time ones; the Stars router answers every pre-checkout query (a subscription's order is an
order like a top-up's). The benefits end at the period's end whatever happens (a canceled or a
failed renewal, or no renewal at all): the period is paid for, and Telegram reports a failed
renewal when it falls due, which is that end.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import BaseStorage
from aiogram.types import (
    BotSubscriptionUpdated,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LabeledPrice,
    Message,
)

from bot import keyboards
from bot.flow import Ctx
from bot.money_in import after_credit, language
from bot.services import Services
from bot.texts import lang_of, money, t
from catalog.model import Catalog
from catalog.plans import Plan, Plans, load
from config import Settings
from store import grants, jobs, stars, subscriptions
from telemetry import logs

log = logs.get("bot")

PREFIX = "sub:"
OPEN = "sub:open"
PERIOD_SECONDS = 2_592_000
_PLANS: dict[tuple[str, int], Plans] = {}


def plans_of(services: Services) -> Plans:
    """The plans of SUBSCRIPTION_PLANS, read and validated against the catalog once per process."""
    key = (services.settings.subscription_plans, id(services.catalog))
    if key not in _PLANS:
        _PLANS[key] = load(Path(services.settings.subscription_plans), services.catalog)
    return _PLANS[key]


def validate(settings: Settings, catalog: Catalog) -> Plans:
    """For `check` and the start: the plans file's problems (catalog.loader.CatalogError)."""
    return load(Path(settings.subscription_plans), catalog)


def buy_data(plan_id: str) -> str:
    return f"{PREFIX}buy:{plan_id}"


def _until(settings: Settings, at: datetime) -> str:
    return at.astimezone(settings.zone).strftime("%d.%m.%Y")


def gives(lang: str, plan: Plan, catalog: Catalog) -> str:
    parts = []
    if plan.monthly_credit:
        parts.append(t(lang, "sub_gives_credit", amount=money(lang, plan.monthly_credit)))
    for model_id, count in plan.daily.items():
        title = catalog.model(model_id).title.get(lang) if model_id in catalog else model_id
        parts.append(t(lang, "sub_gives_daily", count=count, model=title))
    if plan.discount:
        parts.append(t(lang, "sub_gives_discount", discount=plan.discount))
    return "; ".join(parts)


def _title(lang: str, plans: Plans, plan_id: str) -> str:
    plan = plans.get(plan_id)
    return plan.title.get(lang) if plan is not None else plan_id


async def send_screen(ctx: Ctx, *, notice: str | None = None, now: datetime | None = None) -> None:
    """The plans with their price and what they give; the user's subscription (plan, end date,
    renewal, today's allowance left) and how to cancel it; the promo generations left."""
    services, settings, lang = ctx.services, ctx.services.settings, ctx.lang
    now = now or datetime.now(UTC)
    plans = plans_of(services)
    sub = await subscriptions.current(services.database, settings.bot_id, ctx.user_id, now)
    summary = await grants.summary(services.database, settings.bot_id, ctx.user_id,
                                   day=jobs.local_day(settings.zone), now=now)
    lines = [notice] if notice else []
    lines.append(ctx.t("sub_header"))
    rows: list[list[InlineKeyboardButton]] = []
    if sub is None:
        lines.append(ctx.t("sub_none"))
    else:
        until = _until(settings, sub.expires_at)
        lines.append(ctx.t("sub_current", title=_title(lang, plans, sub.plan), until=until))
        lines.append(ctx.t({"active": "sub_renews", "canceled": "sub_canceled", "failed": "sub_failed"}[sub.state],
                           until=until))
        for model_id, left in summary.allowance_left.items():
            title = services.catalog.model(model_id).title.get(lang) if model_id in services.catalog else model_id
            lines.append(ctx.t("sub_allowance_left", model=title, left=left, count=sub.daily[model_id]))
        if sub.renews:
            rows.append([keyboards.button(ctx.t("sub_btn_cancel"), f"{PREFIX}cancel:{sub.id}")])
        elif sub.state == "canceled" and sub.canceled_by == "bot":
            rows.append([keyboards.button(ctx.t("sub_btn_resume"), f"{PREFIX}resume:{sub.id}")])
    if summary.grants_left:
        lines.append(ctx.t("sub_grants_left", left=summary.grants_left))
    lines.append("")
    for plan in plans:
        lines.append(ctx.t("sub_plan_line", title=plan.title.get(lang), stars=plan.stars,
                           gives=gives(lang, plan, services.catalog)))
        if sub is None or not sub.renews:
            rows.append([keyboards.button(ctx.t("sub_btn_buy", title=plan.title.get(lang), stars=plan.stars),
                                          buy_data(plan.id))])
    rows.append([keyboards.button(ctx.t("btn_balance"), keyboards.MENU_BALANCE),
                 keyboards.button(ctx.t("btn_menu"), keyboards.MENU_OPEN)])
    await ctx.bot.send_message(ctx.chat_id, "\n".join(lines), reply_markup=InlineKeyboardMarkup(inline_keyboard=rows))


async def buy(ctx: Ctx, plan_id: str, epoch: int, *, now: datetime | None = None) -> None:
    """The order first (committed: the pre-checkout and the payment find it), then the invoice
    link, sent as a URL button (a subscription cannot be sent with sendInvoice)."""
    services, settings = ctx.services, ctx.services.settings
    now = now or datetime.now(UTC)
    plan = plans_of(services).get(plan_id)
    if plan is None:
        await send_screen(ctx, notice=ctx.t("sub_unknown_plan"), now=now)
        return
    sub = await subscriptions.current(services.database, settings.bot_id, ctx.user_id, now)
    if sub is not None and sub.renews:
        await send_screen(ctx, notice=ctx.t("sub_already"), now=now)
        return
    order_id = await subscriptions.create_order(
        services.database, services.lock_name, epoch, settings.bot_id, ctx.user_id, plan=plan.id, stars=plan.stars,
        kopecks=plan.monthly_credit, default_rate=settings.stars_rate, ttl_seconds=settings.stars_order_ttl, now=now)
    title = plan.title.get(ctx.lang)
    try:
        link = await ctx.bot.create_invoice_link(
            title=title, description=plan.description.get(ctx.lang)[:255],
            payload=stars.payload(settings.webhook_secret, settings.bot_id, order_id), currency="XTR",
            prices=[LabeledPrice(label=title, amount=plan.stars)], subscription_period=PERIOD_SECONDS)
    except (TelegramAPIError, TelegramNetworkError) as exc:
        log.warning("subscription_link_failed", extra={"order_id": order_id, "error_text": str(exc)[:200]})
        await ctx.bot.send_message(ctx.chat_id, ctx.t("sub_link_failed"), reply_markup=keyboards.menu_button(ctx.lang))
        return
    log.info("subscription_ordered", extra={"order_id": order_id, "plan": plan.id, "stars": plan.stars,
                                            "user_id": ctx.user_id})
    markup = InlineKeyboardMarkup(inline_keyboard=[
        [InlineKeyboardButton(text=ctx.t("sub_btn_pay", stars=plan.stars), url=link)],
        [keyboards.button(ctx.t("btn_menu"), keyboards.MENU_OPEN)]])
    await ctx.bot.send_message(ctx.chat_id, ctx.t("sub_invoice_ready", title=title, stars=plan.stars),
                               reply_markup=markup)


async def on_payment(message: Message, bot: Bot, services: Services, fence_epoch: int, storage: BaseStorage, *,
                     now: datetime | None = None) -> None:
    """A subscription's payment (the first or a renewal): recorded once per charge id with its
    period and monthly credit (one fenced transaction), then the user is told, also when a crash
    came between the commit and the message (the redelivery finds the payment untold)."""
    payment, user = message.successful_payment, message.from_user
    assert payment is not None and user is not None
    settings, db = services.settings, services.database
    now = now or datetime.now(UTC)
    charge = payment.telegram_payment_charge_id
    order_id = stars.order_of(settings.webhook_secret, settings.bot_id, payment.invoice_payload)
    found = None if order_id is None else await subscriptions.order(db, settings.bot_id, order_id)
    plan = None if found is None or found.plan is None else plans_of(services).get(found.plan)
    terms = None if plan is None else subscriptions.Terms(plan.id, plan.monthly_credit, plan.daily_json(),
                                                          plan.discount)
    expires = (None if payment.subscription_expiration_date is None
               else datetime.fromtimestamp(payment.subscription_expiration_date, UTC))
    done = await subscriptions.pay(
        db, services.lock_name, fence_epoch, settings.bot_id,
        subscriptions.Payment(user.id, charge, order_id, payment.total_amount, expires), terms, now=now,
        referral_bonus=settings.referral_bonus)
    facts = {"user_id": user.id, "stars": payment.total_amount, "charge": charge, "order_id": order_id,
             "fresh": done.fresh, "first": bool(payment.is_first_recurring)}
    if done.subscription is None:
        log.error("subscription_payment_unmatched", extra=facts)
    else:
        log.info("subscription_paid", extra={**facts, "expires_at": done.subscription.expires_at.isoformat()})
    if done.fresh or not done.told:
        lang = lang_of(user)
        if done.subscription is None:
            text = t(lang, "sub_paid_unknown")
        else:
            text = t(lang, "sub_active_until", title=_title(lang, plans_of(services), done.subscription.plan),
                     until=_until(settings, done.subscription.expires_at))
        try:
            await bot.send_message(user.id, text, reply_markup=None if done.credited else keyboards.menu_button(lang))
        except (TelegramAPIError, TelegramNetworkError) as exc:
            log.info("subscription_notice_failed", extra={"user_id": user.id, "error_text": str(exc)[:200]})
        if done.credited is not None:
            await after_credit(bot, services, storage, done.credited, lang=lang)
        await subscriptions.mark_told(db, settings.bot_id, charge, datetime.now(UTC))


async def on_update(event: BotSubscriptionUpdated, bot: Bot, services: Services, fence_epoch: int) -> None:
    """The user canceled or re-enabled renewal, or the renewal's payment failed: the state is
    recorded (the benefits run to the period's end either way) and the user told once."""
    settings = services.settings
    order_id = stars.order_of(settings.webhook_secret, settings.bot_id, event.invoice_payload)
    state = str(getattr(event.state, "value", event.state))
    changed = await subscriptions.updated(services.database, services.lock_name, fence_epoch, settings.bot_id,
                                          event.user.id, order_id, state)
    log.info("subscription_updated", extra={"user_id": event.user.id, "order_id": order_id, "state": state,
                                            "changed": changed is not None})
    if changed is None:
        return
    lang = await language(services, event.user.id)
    text = t(lang, f"sub_state_{state}", title=_title(lang, plans_of(services), changed.plan),
             until=_until(settings, changed.expires_at))
    try:
        await bot.send_message(event.user.id, text, reply_markup=keyboards.menu_button(lang))
    except (TelegramAPIError, TelegramNetworkError) as exc:
        log.info("subscription_notice_failed", extra={"user_id": event.user.id, "error_text": str(exc)[:200]})


async def set_renewal(ctx: Ctx, subscription_id: int, epoch: int, *, cancel: bool,
                      now: datetime | None = None) -> None:
    """Cancel renewal (the intent committed first) or resume one the bot canceled, through
    editUserStarSubscription; the period already paid runs to its end either way."""
    services, settings = ctx.services, ctx.services.settings
    now = now or datetime.now(UTC)
    sub = await subscriptions.by_id(services.database, settings.bot_id, subscription_id)
    if sub is None or sub.user_id != ctx.user_id or not sub.active_at(now):
        await send_screen(ctx, notice=ctx.t("outdated"), now=now)
        return
    if cancel:
        await subscriptions.ask_cancel(services.database, services.lock_name, epoch, settings.bot_id, ctx.user_id,
                                       sub.id, now)
    try:
        await ctx.bot.edit_user_star_subscription(user_id=ctx.user_id, telegram_payment_charge_id=sub.first_charge_id,
                                                  is_canceled=cancel)
    except (TelegramAPIError, TelegramNetworkError) as exc:
        log.warning("subscription_edit_failed", extra={"subscription_id": sub.id, "cancel": cancel,
                                                       "error_text": str(exc)[:200]})
        await ctx.bot.send_message(ctx.chat_id, ctx.t("sub_cancel_failed"),
                                   reply_markup=keyboards.menu_button(ctx.lang))
        return
    done = await subscriptions.set_renewal(services.database, services.lock_name, epoch, settings.bot_id, sub.id,
                                           canceled=cancel)
    until = _until(settings, (done or sub).expires_at)
    log.info("subscription_renewal_set", extra={"subscription_id": sub.id, "cancel": cancel})
    await ctx.bot.send_message(ctx.chat_id, ctx.t("sub_cancel_done" if cancel else "sub_resume_done", until=until),
                               reply_markup=keyboards.menu_button(ctx.lang))


def router() -> Router:
    router = Router(name="subscription")

    @router.message(Command("subscribe"))
    async def subscribe(message: Message, bot: Bot, state: FSMContext, services: Services) -> None:
        await send_screen(Ctx.of(message, bot, services, state))

    @router.callback_query(F.data.startswith(PREFIX))
    async def pressed(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services,
                      fence_epoch: int) -> None:
        ctx = Ctx.of(query, bot, services, state)
        parts = (query.data or "").split(":")
        if parts[1:] == ["open"]:
            await send_screen(ctx)
        elif len(parts) == 3 and parts[1] == "buy":
            await buy(ctx, parts[2], fence_epoch)
        elif len(parts) == 3 and parts[1] in ("cancel", "resume") and parts[2].isdigit() and len(parts[2]) < 19:
            await set_renewal(ctx, int(parts[2]), fence_epoch, cancel=parts[1] == "cancel")
        else:
            await send_screen(ctx, notice=ctx.t("outdated"))

    @router.message(F.successful_payment.is_recurring)
    async def paid(message: Message, bot: Bot, services: Services, fence_epoch: int,
                   fsm_storage: BaseStorage) -> None:
        await on_payment(message, bot, services, fence_epoch, fsm_storage)

    @router.subscription()
    async def changed(event: BotSubscriptionUpdated, bot: Bot, services: Services, fence_epoch: int) -> None:
        await on_update(event, bot, services, fence_epoch)

    return router
