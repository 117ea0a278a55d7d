"""The wizard's field steps: Start on a model card, then one step per input the model asks for
(buttons for options, text within its limit, files checked against the field), Skip for the
optional ones, Back and Cancel everywhere. Bad input gets its reason and the same step again.
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot import keyboards, screens
from bot.flow import CONFIRM, FIELD, Ctx, OnStep, Press, Toast, Wiz, advance, allowed, asked, leave, show, start
from bot.fsm_storage import forget
from bot.inputs import Bad, check_file, sent_file, text_value
from bot.routers.models import PAGE, card_text
from bot.services import Services
from catalog.loader import Field
from store import jobs


def router() -> Router:
    router = Router(name="wizard")

    @router.callback_query(F.data.startswith(keyboards.START))
    async def begin(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        ctx = Ctx.of(query, bot, services, state)
        model_id = (query.data or "")[len(keyboards.START):]
        if model_id not in services.catalog:
            await leave(ctx, "model_gone")
            return
        await start(ctx, services.catalog.model(model_id))

    @router.callback_query(OnStep(FIELD))
    async def pressed(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services, wiz: Wiz,
                      press: Press, toast: Toast | None = None) -> None:
        ctx = Ctx.of(query, bot, services, state, toast=toast)
        model = services.catalog.model(wiz.model)
        item = asked(model)[wiz.index]
        if press.action == "back":
            await back(ctx, wiz)
            return
        if press.action == "cancel":
            await leave(ctx, "cancelled")
            return
        if press.action == "show":  # the step again, e.g. from the balance screen
            await show(ctx, wiz, fresh=False, save=False)
            return
        value = await chosen(ctx, wiz, item, press)
        if value is None:  # a button this screen has not got (or no longer offers): a toast, or the step again
            if not await ctx.tell(ctx.t("outdated")):
                await show(ctx, wiz, notice=ctx.t("outdated"), fresh=False, save=False)
            return
        if value is SKIP:
            wiz.values.pop(item.name, None)
        elif value is not KEEP:
            wiz.values[item.name] = value
        await advance(ctx, wiz)

    @router.message(OnStep(FIELD))
    async def answered(message: Message, bot: Bot, state: FSMContext, services: Services, wiz: Wiz) -> None:
        ctx = Ctx.of(message, bot, services, state)
        model = services.catalog.model(wiz.model)
        item = asked(model)[wiz.index]
        if item.kind in ("enum", "bool", "task"):
            await show(ctx, wiz, notice=ctx.t("use_buttons"), fresh=False, save=False)
            return
        if not item.media:
            value = text_value(item, message.text) if message.text is not None else Bad("send_text")
            if isinstance(value, Bad):
                await show(ctx, wiz, notice=ctx.t(value.key, **value.values), fresh=False, save=False)
                return
            wiz.values[item.name] = value
            await advance(ctx, wiz)
            return
        sent = sent_file(message)
        bad = Bad(f"send_file_{item.kind}") if sent is None else check_file(model, item, sent)
        if bad is not None or sent is None:
            assert bad is not None
            await show(ctx, wiz, notice=ctx.t(bad.key, **bad.values), fresh=False, save=False)
            return
        if not item.array:
            wiz.values[item.name] = sent.ref
            await advance(ctx, wiz)
            return
        wiz.collected.append(sent.ref)
        if len(wiz.collected) >= item.max_items:
            wiz.values[item.name] = wiz.collected
            await advance(ctx, wiz)
            return
        await show(ctx, wiz, notice=ctx.t("file_received", count=len(wiz.collected), most=item.max_items),
                   fresh=False)

    return router


SKIP, KEEP = object(), object()


async def chosen(ctx: Ctx, wiz: Wiz, item: Field, press: Press) -> Any:
    """What a button of a field step chose: a value, SKIP, KEEP, or None for a button that does
    not fit the step (a stale option, Done before enough files)."""
    model = ctx.services.catalog.model(wiz.model)
    number = press.number()
    if press.action == "o" and item.kind == "enum" and number is not None and number < len(item.options):
        value = item.options[number].value
        return value if allowed(model, wiz, item, value) else None
    if press.action == "b" and item.kind == "bool" and number in (0, 1):
        return number == 1 if allowed(model, wiz, item, number == 1) else None
    if press.action == "t" and item.kind == "task" and number is not None:
        job = await jobs.job(ctx.services.database, number)
        usable = (job is not None and job.bot_id == ctx.services.settings.bot_id and job.user_id == ctx.user_id
                  and job.state == "succeeded" and job.model in item.sources)
        return {"job_id": number} if usable else None
    if press.action == "skip" and not item.required:
        return SKIP
    if press.action == "keep" and item.name in wiz.values:
        return KEEP
    if press.action == "done" and item.media and item.array and len(wiz.collected) >= item.min_items:
        return list(wiz.collected)
    return None


async def back(ctx: Ctx, wiz: Wiz) -> None:
    """One step back: the previous field, the confirmation (for a field opened from Change), or
    from the first field the model's card (the wizard ends)."""
    wiz.collected = []
    if wiz.editing:
        wiz.at, wiz.editing = CONFIRM, False
    elif wiz.index > 0:
        wiz.index -= 1
    else:
        services = ctx.services
        model = services.catalog.model(wiz.model)
        await forget(ctx.state)
        page = services.catalog.in_family(model.family).index(model) // PAGE
        showing = await screens.put(ctx.bot, ctx.chat_id, card_text(ctx.lang, services, model),
                                    keyboards.model_card(ctx.lang, model.id, model.family, page), over=ctx.over)
        if wiz.shown is not None and wiz.shown != showing:
            await screens.retire(ctx.bot, ctx.chat_id, wiz.shown)
        return
    await show(ctx, wiz)
