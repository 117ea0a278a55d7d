"""The confirmation (the exact price, the balance or the free generations left; Confirm, Change,
Back, Cancel) and the list of fields to change.

Confirm holds the price and creates the job in one fenced transaction keyed by the screen's
nonce (store.jobs.confirm), so a double click, a replay or a failover makes one job; then the
confirmation becomes the job's summary without buttons, the status message follows, recorded on
the job, and the jobs actor is woken. A second press says "already running" in a toast. A refusal keeps the
confirmation: a short balance says by how much and offers Top up, and the same Confirm works
after the top-up. Paused generations (KIE's 402) are an apology before anything is held.
"""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot import flow
from bot.flow import (
    CHANGE,
    CONFIRM,
    FIELD,
    Ctx,
    OnStep,
    Press,
    Wiz,
    announce,
    asked,
    job_nonce,
    leave,
    show,
    terms,
    unread_terms,
)
from bot.fsm_storage import forget
from bot.prices import sku_name
from bot.routers import intake
from bot.services import Services
from catalog.payload import build, literal
from store import jobs
from store.jobs import (
    Created,
    Existing,
    FreeLimitReached,
    InsufficientFunds,
    Order,
    Paused,
    TermsChanged,
    TooManyActive,
)
from telemetry import logs, tracing


def presses(router: Router) -> None:
    """The confirmation's buttons, on the router of every wizard button (bot/routers/steps.py)."""

    @router.callback_query(OnStep(CONFIRM, CHANGE))
    async def pressed(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services, wiz: Wiz,
                      press: Press, fence_epoch: int, toast: flow.Toast | None = None) -> None:
        ctx = Ctx.of(query, bot, services, state, toast=toast)
        fields = asked(services.catalog.model(wiz.model))
        number = press.number()
        if press.action == "cancel":
            await leave(ctx, "cancelled")
        elif press.action == "show":
            await show(ctx, wiz, fresh=False, save=False)
        elif wiz.at == CONFIRM and press.action == "ok":
            await confirm(ctx, wiz, fence_epoch)
        elif wiz.at == CONFIRM and press.action == "chg":
            wiz.at = CHANGE
            await show(ctx, wiz)
        elif wiz.at == CONFIRM and press.action == "back" and fields:
            wiz.at, wiz.index, wiz.collected = FIELD, len(fields) - 1, []
            await show(ctx, wiz)
        elif wiz.at == CHANGE and press.action == "back":
            wiz.at = CONFIRM
            await show(ctx, wiz)
        elif wiz.at == CHANGE and press.action == "e" and number is not None and number < len(fields):
            wiz.at, wiz.index, wiz.editing, wiz.collected = FIELD, number, True, []
            await show(ctx, wiz)
        elif not await ctx.tell(ctx.t("outdated")):  # a button this screen has not got
            await show(ctx, wiz, notice=ctx.t("outdated"), fresh=False, save=False)


def router() -> Router:
    """What is typed at the confirmation."""
    router = Router(name="confirm")

    @router.message(OnStep(CONFIRM, CHANGE))
    async def typed(message: Message, bot: Bot, state: FSMContext, services: Services, wiz: Wiz) -> None:
        ctx = Ctx.of(message, bot, services, state)
        if await intake.retyped(ctx, wiz, message):  # a text at the confirmation: the new prompt
            return
        await show(ctx, wiz, notice=ctx.t("use_buttons"), fresh=False, save=False)

    return router


async def confirm(ctx: Ctx, wiz: Wiz, epoch: int) -> None:
    """Confirm pressed on the current confirmation: the terms it showed, or a new confirmation
    when they changed meanwhile (a price, the day's free generations).

    A screen that already made its job (a replay after a crash between the commit and the end of
    the wizard) answers "already running" before any refusal: the job itself may have changed
    the terms (the day's last free generation is now used), which would show a new paid
    confirmation. It is looked up only when the terms changed; otherwise jobs.confirm finds it
    (Existing) before any refusal of its own (generations paused by KIE's 402 among them), so
    the pressed Confirm costs no extra read. Money at the full price is not even read again
    (flow.unread_terms): the commit refuses it when anything else applies by now."""
    services, settings = ctx.services, ctx.services.settings
    model = services.catalog.model(wiz.model)
    payload = build(model, wiz.values)
    unread = unread_terms(ctx, model, payload, wiz.terms)
    now = unread or await terms(ctx, model, payload)
    if now.key() != wiz.terms:
        made = await flow.confirmed_job(ctx, wiz.nonce)
        if made is not None:
            await _already(ctx, made, epoch, wiz)
        else:
            await show(ctx, wiz, notice=ctx.t("terms_changed"))
        return
    # createTask's intent committed with the job when nothing stands between the commit and the
    # request: the input goes as it is and a slot of KIE's limit is free now (sql/025)
    slot = services.take_slot() if unread is not None and literal(payload) else None
    order = Order(user_id=ctx.user_id, chat_id=ctx.chat_id, nonce=job_nonce(ctx.user_id, wiz.nonce), model=model.id,
                  sku=sku_name(model, payload), input=payload, price=now.price, paid_with=now.paid_with,
                  day=jobs.local_day(settings.zone), full_price=now.full_price, endpoint=model.endpoint,
                  parent_id=wiz.parent, terms_read=unread is None, submitting=slot is not None)
    try:
        result = await jobs.confirm(services.database, services.lock_name, epoch, settings.bot_id, order,
                                    free_daily_limit=settings.free_daily_limit,
                                    max_active=settings.max_active_jobs_per_user)
    except BaseException:
        if slot is not None:
            services.give_back_slot(slot)
        raise
    if slot is not None and not isinstance(result, Created):
        services.give_back_slot(slot)
    if isinstance(result, Created):
        # the update's story names the job; the job's story begins with the update that made it
        tracing.emit("job_confirmed", {"job_id": result.job.id, "new": True, "model": model.id,
                                       "price": order.price, "paid_with": order.paid_with})
        tracing.emit("confirmed", {"update": logs.correlation_id.get(), "model": model.id, "price": order.price,
                                   "paid_with": order.paid_with, "user_id": ctx.user_id},
                     correlation_id=f"j{result.job.id}")
        flow.drive(ctx, result.job, slot)  # createTask goes now; the summary and the status message follow
        await flow.settle(ctx, result.job, wiz)
        await announce(ctx, result.job, epoch, driven=True)
        await forget(ctx.state)
    elif isinstance(result, Existing):  # a twin press committed between the look-up above and this one
        await _already(ctx, result.job, epoch, wiz)
    elif isinstance(result, Paused):  # KIE's 402: before anything is held
        await show(ctx, wiz, notice=ctx.t("paused"), fresh=False, save=False)
    elif isinstance(result, InsufficientFunds):
        await show(ctx, wiz, notice=ctx.t("insufficient"), fresh=False, save=False)
    elif isinstance(result, TooManyActive):
        await show(ctx, wiz, notice=ctx.t("too_many_active", active=result.active, limit=result.limit), fresh=False,
                   save=False)
    elif isinstance(result, FreeLimitReached):
        await show(ctx, wiz, notice=ctx.t("free_limit_reached", limit=result.limit))
    elif isinstance(result, TermsChanged):  # the plan's allowance, a promo grant or a discount is gone
        await show(ctx, wiz, notice=ctx.t("terms_changed"))


async def _already(ctx: Ctx, job: jobs.Job, epoch: int, wiz: Wiz | None = None) -> None:
    """This screen's job exists, however it is paid: one answer, never a second job or screen.
    The pressed confirmation becomes its summary; its status message when none was recorded (the
    crash came before it), else "already running" as a toast (or under the summary when the query
    was answered already)."""
    tracing.emit("job_confirmed", {"job_id": job.id, "new": False, "model": job.model, "price": job.price,
                                   "paid_with": job.paid_with})
    told = job.status_message_id is not None
    notice = ctx.t("already_confirmed", id=job.user_number)
    toasted = told and await ctx.tell(notice)
    await flow.settle(ctx, job, wiz, notice=notice if told and not toasted else None)
    await announce(ctx, job, epoch)
    await forget(ctx.state)
