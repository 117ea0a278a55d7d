"""The wizard's field steps: Start on a model card, then one step per input the model asks for
(buttons for options, text within its limit, files checked against the field), Skip for the
optional ones, Back and Cancel everywhere. Bad input gets its reason and the same step again.
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot import keyboards, parts, screens, speak
from bot.flow import CONFIRM, FIELD, Ctx, OnStep, Press, Toast, Wiz, advance, allowed, asked, leave, show, start
from bot.fsm_storage import forget
from bot.inputs import Bad, check_file, sent_file, text_value
from bot.routers.models import card_screen
from bot.services import Services
from catalog.model import Field, Model
from store import jobs


def presses(router: Router) -> None:
    """A field step's buttons, on the router of every wizard button (bot/routers/steps.py)."""

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
        if press.action == "done":  # the files just sent: a prompt their caption filled is not asked again
            await forward(ctx, wiz)
        else:
            await advance(ctx, wiz)


def router() -> Router:
    router = Router(name="wizard")

    @router.callback_query(F.data.startswith(keyboards.START))
    async def begin(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        ctx = Ctx.of(query, bot, services, state)
        model_id = (query.data or "")[len(keyboards.START):]
        if model_id not in services.catalog or services.catalog.model(model_id).hidden:  # hidden: only as an action
            await leave(ctx, "model_gone")
            return
        await start(ctx, services.catalog.model(model_id))

    @router.message(OnStep(FIELD))
    async def answered(message: Message, bot: Bot, state: FSMContext, services: Services, wiz: Wiz) -> None:
        """A typed or sent answer to the current field. A message carries what it says: a caption
        fills the model's prompt along with the file (and the prompt step after it is skipped), a
        file with a caption at the prompt step fills both, a text typed before the file is kept
        as the prompt, and a long text Telegram split is joined first (bot/parts.py)."""
        ctx = Ctx.of(message, bot, services, state)
        model = services.catalog.model(wiz.model)
        item = asked(model)[wiz.index]
        if item.kind in ("enum", "bool", "task"):
            await show(ctx, wiz, notice=ctx.t("use_buttons"), fresh=False, save=False)
            return
        if not item.media:
            if message.text is None and message.caption and sent_file(message) is not None and item.kind == "prompt":
                await _file_with_caption(ctx, wiz, item, message)
                return
            if message.text is None:
                await show(ctx, wiz, notice=ctx.t("send_text"), fresh=False, save=False)
                return
            text = await parts.receive(ctx, message.text) if item.kind in TYPED else message.text
            if text is not None:
                await take_text(ctx, wiz, text)
            return
        sent = sent_file(message)
        if sent is None and message.text is not None and await take_spoken(ctx, wiz, model, item, message.text):
            return  # an audio step that speaks a typed text (the talking avatar)
        prompt = prompt_field(model)
        if sent is None and message.text is not None and prompt is not None and prompt.name not in wiz.values:
            value = text_value(prompt, message.text)  # typed before the file: the prompt, kept
            if isinstance(value, Bad):
                await show(ctx, wiz, notice=ctx.t(value.key, **value.values), fresh=False, save=False)
                return
            wiz.values[prompt.name] = value
            await show(ctx, wiz, notice=ctx.t(f"text_kept_{item.kind}"), fresh=False)
            return
        bad = Bad(f"send_file_{item.kind}") if sent is None else check_file(model, item, sent)
        if bad is not None or sent is None:
            assert bad is not None
            await show(ctx, wiz, notice=ctx.t(bad.key, **bad.values), fresh=False, save=False)
            return
        notice = None
        if message.caption and prompt is not None and prompt.name not in wiz.values:
            value = text_value(prompt, message.caption)
            if isinstance(value, Bad):
                notice = ctx.t("caption_too_long", reason=ctx.t(value.key, **value.values))
            else:
                wiz.values[prompt.name] = value
                notice = ctx.t("caption_taken")
        if not item.array:
            wiz.values[item.name] = sent.ref
            await forward(ctx, wiz, notice=notice)
            return
        wiz.collected.append(sent.ref)
        if len(wiz.collected) >= item.max_items:
            wiz.values[item.name] = wiz.collected
            await forward(ctx, wiz, notice=notice)
            return
        await show(ctx, wiz, notice="\n\n".join(filter(None, [notice, ctx.t("file_received", count=len(wiz.collected),
                                                                             most=item.max_items)])),
                   fresh=False)

    return router


SKIP, KEEP = object(), object()
TYPED = ("prompt", "text")  # the kinds of field a typed text (or a caption) answers


def prompt_field(model: Model) -> Field | None:
    """The model's prompt: where a caption, or a text typed before the file, goes."""
    return next((f for f in asked(model) if f.kind == "prompt"), None)


def file_field(model: Model, kind: str) -> Field | None:
    """Where a file of `kind` goes: the first asked field of that kind, a required one first."""
    fields = [f for f in asked(model) if f.kind == kind]
    return next((f for f in fields if f.required), fields[0] if fields else None)


async def take_text(ctx: Ctx, wiz: Wiz, text: str) -> None:
    """A whole typed text (a held part joined, or taken as is) as the current text field's answer."""
    item = asked(ctx.services.catalog.model(wiz.model))[wiz.index]
    value = text_value(item, text)
    if isinstance(value, Bad):
        await show(ctx, wiz, notice=ctx.t(value.key, **value.values), fresh=False, save=False)
        return
    wiz.values[item.name] = value
    await forward(ctx, wiz)


async def take_spoken(ctx: Ctx, wiz: Wiz, model: Model, item: Field, text: str) -> bool:
    """A text at an audio step that speaks text (the talking avatar, bot/speak.py): the value is
    taken and the wizard goes on, or the step again with the reason; False when the step does not
    speak text (the caller answers as before)."""
    if not speak.speaks(item):
        return False
    value = speak.spoken_value(model, item, text)
    if isinstance(value, Bad):
        await show(ctx, wiz, notice=ctx.t(value.key, **value.values), fresh=False, save=False)
        return True
    wiz.values[item.name] = value
    await forward(ctx, wiz)
    return True


async def forward(ctx: Ctx, wiz: Wiz, *, notice: str | None = None) -> None:
    """advance(), past the prompt and file steps right after this one that are filled already (by
    a caption, a text typed before the file, or the file the flow began with): the user is not
    asked again what they said or sent."""
    fields = asked(ctx.services.catalog.model(wiz.model))
    while (not wiz.editing and wiz.index + 1 < len(fields)
           and (fields[wiz.index + 1].kind == "prompt" or fields[wiz.index + 1].media)
           and fields[wiz.index + 1].name in wiz.values):
        wiz.index += 1
    await advance(ctx, wiz, notice=notice)


async def _file_with_caption(ctx: Ctx, wiz: Wiz, item: Field, message: Message) -> None:
    """At a text step, a file with a caption: the caption is the answer, and the file goes to
    the model's field of its kind when it has one and it fits (else the notice says why not)."""
    model = ctx.services.catalog.model(wiz.model)
    value = text_value(item, message.caption or "")
    if isinstance(value, Bad):
        await show(ctx, wiz, notice=ctx.t(value.key, **value.values), fresh=False, save=False)
        return
    sent = sent_file(message)
    assert sent is not None
    target = file_field(model, sent.family) if sent.family else None
    notice = None
    if target is None:
        notice = ctx.t("file_not_used")
    else:
        bad = check_file(model, target, sent)
        if bad is not None:
            notice = ctx.t("file_not_taken", reason=ctx.t(bad.key, **bad.values))
        else:
            wiz.values[target.name] = [sent.ref] if target.array else sent.ref
    wiz.values[item.name] = value
    fields = asked(model)
    while (notice is None and not wiz.editing and wiz.index + 1 < len(fields)
           and fields[wiz.index + 1].name == getattr(target, "name", None)):
        wiz.index += 1  # the file's step right after this one is answered too
    await forward(ctx, wiz, notice=notice)


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
        # "n": the user's own number of that result, for the screens (KIE gets the task id: payload.resolve)
        return {"job_id": number, "n": job.user_number} if usable and job is not None else None
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
    elif wiz.parent is not None:  # an action on a result: no card to go back to (the result is above)
        await leave(ctx, "cancelled")
        return
    else:
        services = ctx.services
        model = services.catalog.model(wiz.model)
        await forget(ctx.state)
        text, markup = await card_screen(ctx.lang, services, model)  # a one-model family's Back: the menu
        showing = await screens.put(ctx.bot, ctx.chat_id, text, markup, over=ctx.over)
        if wiz.shown is not None and wiz.shown != showing:
            await screens.retire(ctx.bot, ctx.chat_id, wiz.shown)
        return
    await show(ctx, wiz)
