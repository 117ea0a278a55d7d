"""The admin panel (ADMIN_IDS only, bot/admins.IsAdmin: anyone else's /admin falls through to
the fallback, never to a screen that says a panel exists): /admin and its menu, the shop's stats,
the last failures with their stories (`/admin trace u123`, as `python run.py trace` prints them),
and the health summary. Finding a user and changing them is bot/routers/admin_users.py; the
menu's other buttons belong to their own routers (transfers, promo codes, the Stars rate,
refunds, broadcast), each handling its `adm:<x>` callback.

Callback data: adm:menu | adm:stats | adm:errors | adm:errors:t:<u123|j45> | adm:health, and
adm:user[:...] (admin_users), adm:transfers, adm:promo, adm:rate, adm:refunds, adm:broadcast.
"""

from __future__ import annotations

import re

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, MessageEntity

from bot.admin_kit import LIMIT, PANEL, back, counts, fit, units, when
from bot.admins import IsAdmin
from bot.flow import Ctx
from bot.fsm_storage import forget
from bot.keyboards import button
from bot.routers import admin_users
from bot.services import Services
from store import kie_account, stats
from store.money_in import SOURCES, revenue
from telemetry import logs, stories

log = logs.get("bot")

MENU = PANEL
STATS = "adm:stats"
USER = admin_users.FIND
TRANSFERS = "adm:transfers"
PROMO = "adm:promo"
RATE = "adm:rate"
REFUNDS = "adm:refunds"
BROADCAST = "adm:broadcast"
ERRORS = "adm:errors"
TRACE = "adm:errors:t:"
HEALTH = "adm:health"

REF = re.compile(r"^[uj]\d{1,19}$")
ERRORS_SHOWN = 10
TRACE_BUTTONS = 6


def panel(ctx: Ctx) -> InlineKeyboardMarkup:
    """The panel's buttons, two a row; Transfers only while bank transfers are on."""
    items = [("adm_btn_stats", STATS), ("adm_btn_user", USER)]
    if ctx.services.settings.payment_transfer_details:
        items.append(("adm_btn_transfers", TRANSFERS))
    items += [("adm_btn_promo", PROMO), ("adm_btn_rate", RATE), ("adm_btn_refunds", REFUNDS),
              ("adm_btn_broadcast", BROADCAST), ("adm_btn_errors", ERRORS), ("adm_btn_health", HEALTH)]
    buttons = [button(ctx.t(key), data) for key, data in items]
    return InlineKeyboardMarkup(inline_keyboard=[buttons[i:i + 2] for i in range(0, len(buttons), 2)])


# --- screens -------------------------------------------------------------------------------------


async def send_panel(ctx: Ctx) -> None:
    await ctx.bot.send_message(ctx.chat_id, ctx.t("adm_menu"), reply_markup=panel(ctx))


async def stats_text(ctx: Ctx) -> str:
    services, settings = ctx.services, ctx.services.settings
    db, bot_id = services.database, settings.bot_id
    today = stats.day_start(settings.zone)
    users = await stats.users(db, bot_id, today)
    gens = await stats.generations(db, bot_id, today)
    total, week = await revenue(db, bot_id), await revenue(db, bot_id, since_days=7)
    account = await kie_account.get(db, bot_id)
    lines = [ctx.t("adm_stats_header", zone=settings.bot_timezone), "",
             ctx.t("adm_stats_users", total=users.total, new_today=users.new_today, new_week=users.new_week,
                   active_today=users.active_today, active_week=users.active_week, blocked=users.blocked,
                   banned=users.banned), "",
             ctx.t("adm_stats_jobs", today=gens.today, week=gens.week),
             ctx.t("adm_stats_states", states=counts(ctx, gens.by_state, named="adm_state_")),
             ctx.t("adm_stats_models", models=counts(ctx, gens.top_models)),
             ctx.t("adm_stats_failures", failures=counts(ctx, gens.failures)),
             ctx.t("adm_stats_orphans", orphans=gens.orphans, week=gens.orphans_week), ""]
    sources = [s for s in SOURCES if s in total] + sorted(s for s in total if s not in SOURCES)
    if sources:
        lines.append(ctx.t("adm_stats_revenue"))
        lines += [f"• {ctx.t('adm_source_' + s)}: {ctx.money(total[s])} / {ctx.money(week.get(s, 0))}"
                  for s in sources]
    else:
        lines.append(ctx.t("adm_stats_revenue_none"))
    lines.append("")
    lines.append(ctx.t("adm_stats_kie", credits=account.credits, at=when(ctx, account.credits_at))
                 if account.credits is not None else ctx.t("adm_stats_kie_unknown"))
    lines.append(paused_line(ctx, account))
    return "\n".join(lines)


def paused_line(ctx: Ctx, account: kie_account.KieAccount) -> str:
    if account.paused:
        return ctx.t("adm_paused", since=when(ctx, account.paused_since), reason=account.pause_reason or "")
    return ctx.t("adm_running")


async def send_stats(ctx: Ctx) -> None:
    text, _ = fit(await stats_text(ctx))
    await ctx.bot.send_message(ctx.chat_id, text, reply_markup=back(ctx, [button(ctx.t("adm_btn_refresh"), STATS)]))


async def send_errors(ctx: Ctx) -> None:
    found = await stats.failures(ctx.services.database, ctx.services.settings.bot_id, ERRORS_SHOWN)
    if not found:
        await ctx.bot.send_message(ctx.chat_id, ctx.t("adm_errors_none"), reply_markup=back(ctx))
        return
    lines = [ctx.t("adm_errors_header"), ""]
    for failure in found:
        who = f" · 👤 {failure.user_id}" if failure.user_id is not None else ""
        lines.append(f"• {failure.ref} · {when(ctx, failure.at)} · {failure.what} · {failure.why}{who}")
    refs = [button(f"📜 {f.ref}", TRACE + f.ref) for f in found[:TRACE_BUTTONS]]
    rows = [refs[i:i + 3] for i in range(0, len(refs), 3)]
    text, _ = fit("\n".join(lines))
    await ctx.bot.send_message(ctx.chat_id, text, reply_markup=back(ctx, *rows))


async def send_trace(ctx: Ctx, ref: str) -> None:
    """The story as `python run.py trace` prints it, in one monospaced message (cut to fit)."""
    ref = ref.strip()
    lines = await stories.story(ctx.services.database, ref) if REF.match(ref) else []
    if not lines:
        await ctx.bot.send_message(ctx.chat_id, ctx.t("adm_trace_none", ref=ref[:40]), reply_markup=back(ctx))
        return
    body, cut = fit(logs.redact("\n".join(lines)), LIMIT - 100)
    entities = [MessageEntity(type="pre", offset=0, length=units(body))]
    if cut:
        body += "\n" + ctx.t("adm_trace_cut", ref=ref)
    await ctx.bot.send_message(ctx.chat_id, body, entities=entities, reply_markup=back(ctx))


async def health_text(ctx: Ctx) -> str:
    services = ctx.services
    account = await kie_account.get(services.database, services.settings.bot_id)
    body = None
    if services.health is not None:
        try:
            body = await services.health()
        except Exception as exc:  # the summary must not fail the panel; the DB's part still shows
            log.warning("admin_health_failed", extra={"error_text": str(exc)[:200]})
    if body is None:
        return "\n".join([ctx.t("adm_health_unavailable"), paused_line(ctx, account)])
    lines = [ctx.t("adm_health_header", status=body.get("status"), role=body.get("role"), epoch=body.get("epoch"),
                   instance=body.get("instance"))]
    problems = body.get("problems") or []
    if problems:
        lines.append(ctx.t("adm_health_problems"))
        lines += [f"• {p}" for p in problems[:8]]
    actors = body.get("actors") or {}
    if actors:
        lines.append(ctx.t("adm_health_actors"))
        for name, item in actors.items():
            restarts = item.get("restarts") or 0
            extra = f", restarts {restarts}" if restarts else ""
            lines.append(f"• {name}: {item.get('state')}{extra}")
    inbox = body.get("inbox")
    if isinstance(inbox, dict):
        lines.append(ctx.t("adm_health_inbox", pending=inbox.get("pending"), oldest=inbox.get("oldest_pending_seconds"),
                           inflight=inbox.get("inflight")))
    webhook = body.get("webhook")
    if isinstance(webhook, dict):
        state = "ok" if webhook.get("ok") else ("active" if webhook.get("active") else "off")
        error = webhook.get("webhook_last_error") or webhook.get("webhook_error")
        lines.append(ctx.t("adm_health_webhook", state=state, error=f" ({error})" if error else ""))
    jobs = body.get("jobs")
    if isinstance(jobs, dict):
        lines.append(ctx.t("adm_health_jobs", driving=jobs.get("driving"), credits=jobs.get("kie_credits")))
    lines.append(paused_line(ctx, account))
    return logs.redact("\n".join(lines))


async def send_health(ctx: Ctx) -> None:
    text, _ = fit(await health_text(ctx))
    await ctx.bot.send_message(ctx.chat_id, text, reply_markup=back(ctx, [button(ctx.t("adm_btn_refresh"), HEALTH)]))


def router() -> Router:
    router = Router(name="admin")
    router.message.filter(IsAdmin())
    router.callback_query.filter(IsAdmin())

    @router.message(Command("admin"))
    async def admin(message: Message, command: CommandObject, bot: Bot, state: FSMContext,
                    services: Services) -> None:
        ctx = Ctx.of(message, bot, services, state)
        verb, _, rest = (command.args or "").strip().partition(" ")
        verb, rest = verb.lower(), rest.strip()
        if await state.get_state() in admin_users.INPUTS:  # a command leaves a pending search or adjustment
            await forget(state)
        if not verb:
            await send_panel(ctx)
        elif verb == "stats":
            await send_stats(ctx)
        elif verb == "user" and rest:
            await admin_users.show_found(ctx, rest)
        elif verb == "user":
            await admin_users.ask_find(ctx)
        elif verb == "errors":
            await send_errors(ctx)
        elif verb == "trace" and rest:
            await send_trace(ctx, rest)
        elif verb == "health":
            await send_health(ctx)
        else:
            await bot.send_message(ctx.chat_id, ctx.t("adm_usage"), reply_markup=panel(ctx))

    @router.callback_query(F.data == MENU)
    async def menu(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        await send_panel(Ctx.of(query, bot, services, state))

    @router.callback_query(F.data == STATS)
    async def stats_button(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        await send_stats(Ctx.of(query, bot, services, state))

    @router.callback_query(F.data == ERRORS)
    async def errors_button(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        await send_errors(Ctx.of(query, bot, services, state))

    @router.callback_query(F.data.startswith(TRACE))
    async def trace_button(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        await send_trace(Ctx.of(query, bot, services, state), (query.data or "").removeprefix(TRACE))

    @router.callback_query(F.data == HEALTH)
    async def health_button(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        await send_health(Ctx.of(query, bot, services, state))

    return router
