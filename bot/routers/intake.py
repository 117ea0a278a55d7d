"""Whatever a user sends with no flow open: the bot offers what it can do with it instead of
"I did not understand". These are the first things people do.

A text is a prompt for the user's last text-to-image model (else the cheapest popular one) and
goes straight to the confirmation with its price, with "Change model" for the family's others.
A photo, a video or an audio (also as a document) offers the families that take it (edit,
animate, upscale, remove the background; edit or upscale a video; a talking avatar, a cleaner
voice); the chosen family's last or cheapest fitting model starts with the file filled in (and
the caption as its prompt), at the confirmation when nothing else is missing. A text long enough
to be a part of a message Telegram split is held for the rest (bot/parts.py). The 🎲 idea button
offers an example prompt like a typed one.

Included after the wizard's and the confirmation's routers (a flow's own input goes to its step)
and before the fallback, which still answers stickers, locations and commands it does not know.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot import keyboards, parts, screens
from bot.flow import CONFIRM, FIELD, Ctx, Toast, Wiz, asked, new_nonce, quote, show, start
from bot.fsm_storage import forget
from bot.inputs import Bad, Sent, check_file, sent_file, text_value
from bot.phrases.intake import IDEAS
from bot.prices import lowest
from bot.routers.models import model_label
from bot.routers.wizard import file_field, prompt_field, take_text
from bot.services import Services
from catalog.model import Model, same
from store import recent

PROMPT = "prompt"  # the "kind" of a typed prompt among the kinds of files a model takes
PROMPT_FAMILY = "text_to_image"
OFFERS: dict[str, tuple[str, ...]] = {  # what a file can become, in the order offered
    "image": ("image_edit", "image_to_video", "image_upscale", "background_removal", "avatar"),
    "video": ("video_to_video", "video_upscale"),
    "audio": ("avatar", "audio"),
}
OFFER = "in:a:"  # in:a:<offer token>:<family>
OFFER_KEY = "offer"  # FSM data (no state): {"tok", "k": kind, "f": [FileRef], "c": text, "s", "g", "d": date, "msg"}
PAGE = 8  # models per page of Change model
MOST_FILES = 16  # an album's files kept for one offer
INSTRUCTION_WITHIN = 600  # seconds (by the messages' dates): a text this soon after a file is its instruction


# --- which model ----------------------------------------------------------------------------------


def takes(model: Model, kind: str) -> bool:
    """The model takes this input: a prompt field, or a field of the file's kind."""
    if kind == PROMPT:
        return prompt_field(model) is not None
    return file_field(model, kind) is not None


def _needs_more(model: Model, kind: str) -> bool:
    """It also needs a file of another kind (a video model that wants a photo too), or the
    file is only an extra to it (an optional field)."""
    item = file_field(model, kind) if kind != PROMPT else None
    return (any(f.media and f.required and f.kind != kind for f in asked(model))
            or (item is not None and not item.required))


async def preferred(ctx: Ctx, family: str, kind: str) -> list[Model]:
    """The family's models for this input, best first: the user's last one of them, then those
    that need nothing else, popular, free, cheapest."""
    settings = ctx.services.settings
    models = [m for m in ctx.services.catalog.in_family(family) if takes(m, kind)]

    def rule(model: Model) -> tuple[bool, bool, bool, int, int]:
        cheapest = lowest(settings, model)
        return _needs_more(model, kind), not model.popular, not cheapest.free, cheapest.low, model.order

    models.sort(key=rule)
    last = await recent.last_model(ctx.services.database, settings.bot_id, ctx.user_id, [m.id for m in models])
    return sorted(models, key=lambda m: m.id != last)


def with_defaults(model: Model, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values and the defaults of the required fields not in them, so that start() goes to
    the confirmation when nothing the user must give is missing."""
    out = {f.name: f.default for f in asked(model) if f.required and f.default is not None}
    return {**out, **values}


def carried(old: Model, new: Model, values: Mapping[str, Any]) -> dict[str, Any]:
    """What the user gave one model, for another of its family: the prompt and the files, each
    where the new model takes it, when it fits there (else the wizard asks for it)."""
    out: dict[str, Any] = {}
    for item in asked(old):
        value = values.get(item.name)
        if value is None:
            continue
        if item.kind == PROMPT:
            target = prompt_field(new)
            if target is not None and not isinstance(text_value(target, value), Bad):
                out[target.name] = value
        elif item.media:
            target = file_field(new, item.kind)
            files = value if isinstance(value, list) else [value]
            if target is None or target.name in out:
                continue
            fit = [f for f in files if check_file(new, target, Sent("document", target.kind, f)) is None]
            if fit:
                out[target.name] = fit[:target.max_items] if target.array else fit[0]
        elif item.kind in ("enum", "bool"):  # a choice the new model offers under the same name (16:9)
            other = next((f for f in asked(new) if f.name == item.name and f.kind == item.kind), None)
            if other is not None and any(same(v, value) for v in other.values()):
                out[other.name] = value
    if new.forbidden(out):  # a combination the new model refuses: its choices back to the defaults
        out = {k: v for k, v in out.items() if new.field(k).kind not in ("enum", "bool")}
    return with_defaults(new, out)


# --- a prompt -------------------------------------------------------------------------------------


async def prompt_flow(ctx: Ctx, text: str, *, notice: str | None = None) -> None:
    """A typed prompt to the confirmation of the first preferred text-to-image model that takes
    it (a long prompt skips the models whose limit it passes); too long for all: the exact
    length and the largest limit."""
    models = await preferred(ctx, PROMPT_FAMILY, PROMPT)
    if not models:
        await ctx.bot.send_message(ctx.chat_id, ctx.t("fallback"),
                                   reply_markup=keyboards.main_menu(ctx.lang, ctx.services.catalog.families()))
        return
    refusals: list[Bad] = []
    for model in models:
        item = prompt_field(model)
        assert item is not None
        value = text_value(item, text)
        if isinstance(value, Bad):
            refusals.append(value)
            continue
        await start(ctx, model, with_defaults(model, {item.name: value}), notice=notice,
                    other_models=len(models) > 1)
        return
    longest = max(refusals, key=lambda b: int(b.values.get("limit") or 0))
    bad = longest if longest.key == "bad_too_long_text" else refusals[0]
    await screens.put(ctx.bot, ctx.chat_id, ctx.t(bad.key, **bad.values), over=ctx.over)


async def retyped(ctx: Ctx, wiz: Wiz, message: Message) -> bool:
    """What a message sent at a confirmation says: a typed text (not a command) is the new prompt
    of the same model and choices (a long one joined first, bot/parts.py); a file the model takes
    replaces the one it had (its caption the prompt); any other photo, video or audio is a new
    start (the confirmation ends, the file's offer comes). False when it is none of these (a
    command, a sticker, not at the confirmation): the caller answers."""
    model = ctx.services.catalog.model(wiz.model)
    item = prompt_field(model)
    if wiz.at != CONFIRM:
        return False
    sent = sent_file(message)
    if sent is not None and sent.family in OFFERS:
        await _file_at_confirmation(ctx, wiz, message, sent)
        return True
    if item is None or message.text is None or message.text.startswith("/"):
        return False
    text = await parts.receive(ctx, message.text)
    if text is None:
        return True
    value = text_value(item, text)
    if isinstance(value, Bad):
        await show(ctx, wiz, notice=ctx.t(value.key, **value.values), fresh=False, save=False)
        return True
    replaced = item.name in wiz.values
    wiz.values[item.name] = value
    await show(ctx, wiz, notice=ctx.t("prompt_replaced") if replaced else None)
    return True


async def _file_at_confirmation(ctx: Ctx, wiz: Wiz, message: Message, sent: Sent) -> None:
    model = ctx.services.catalog.model(wiz.model)
    target = file_field(model, sent.family)
    if target is None:  # not this model's: a new start with the file
        await screens.retire(ctx.bot, ctx.chat_id, wiz.shown)
        await forget(ctx.state)
        await offer_file(ctx, message, sent)
        return
    bad = check_file(model, target, sent)
    if bad is not None:
        await show(ctx, wiz, notice=ctx.t(bad.key, **bad.values), fresh=False, save=False)
        return
    wiz.values[target.name] = [sent.ref] if target.array else sent.ref
    prompt = prompt_field(model)
    notice = ctx.t("file_replaced")
    if message.caption and prompt is not None:
        value = text_value(prompt, message.caption)
        if isinstance(value, Bad):
            notice = ctx.t("caption_too_long", reason=ctx.t(value.key, **value.values))
        else:
            wiz.values[prompt.name] = value
    await show(ctx, wiz, notice=notice)


# --- a file ---------------------------------------------------------------------------------------


def offered(ctx: Ctx, kind: str) -> list[str]:
    return [family for family in OFFERS.get(kind, ())
            if any(takes(m, kind) for m in ctx.services.catalog.in_family(family))]


def offer_text(ctx: Ctx, offer: Mapping[str, Any]) -> str:
    lines = [ctx.t(f"offer_{offer['k']}")]
    if len(offer["f"]) > 1:
        lines.append(ctx.t("offer_files", count=len(offer["f"])))
    if offer.get("c"):
        lines.append(ctx.t("offer_caption", caption=quote(offer["c"], lang=ctx.lang)))
    return "\n\n".join(lines)


def actions(ctx: Ctx, offer: Mapping[str, Any]) -> list[str]:
    """The families offered for the file, and with a text a new picture from the text alone."""
    drawn = [PROMPT_FAMILY] if offer.get("c") and any(takes(m, PROMPT)
                                                      for m in ctx.services.catalog.in_family(PROMPT_FAMILY)) else []
    return offered(ctx, offer["k"]) + drawn


def offer_markup(ctx: Ctx, offer: Mapping[str, Any]) -> InlineKeyboardMarkup:
    rows = [[keyboards.button(ctx.t("act_draw" if family == PROMPT_FAMILY else f"act_{offer['k']}_{family}"),
                              f"{OFFER}{offer['tok']}:{family}")] for family in actions(ctx, offer)]
    rows.append([keyboards.button(ctx.t("btn_menu"), keyboards.MENU_OPEN)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def offer_file(ctx: Ctx, message: Message, sent: Sent) -> None:
    """What can be done with the file, as buttons; the file and caption wait in the FSM data.
    The other photos of an album join the first one's offer."""
    data = await ctx.state.get_data()
    caption = (message.caption or "").strip() or None
    before = data.get(OFFER_KEY)
    group = message.media_group_id
    if (group is not None and isinstance(before, dict) and before.get("g") == group and before.get("k") == sent.family
            and len(before.get("f", [])) < MOST_FILES):
        before["f"].append(sent.ref)
        before["c"] = before.get("c") or caption
        await ctx.state.set_data({**data, OFFER_KEY: before})
        shown = before.get("msg")
        await screens.put(ctx.bot, ctx.chat_id, offer_text(ctx, before), offer_markup(ctx, before),
                          over=shown if isinstance(shown, int) else None)
        return
    offer = {"tok": new_nonce(), "k": sent.family, "f": [sent.ref], "c": caption, "s": sent.kind, "g": group,
             "d": int(message.date.timestamp())}
    await show_offer(ctx, data, offer)


async def show_offer(ctx: Ctx, data: Mapping[str, Any], offer: dict[str, Any]) -> None:
    """The offer as a new message at the bottom (an older one loses its buttons), remembered."""
    older = data.get(OFFER_KEY)
    if isinstance(older, dict) and isinstance(older.get("msg"), int):
        await screens.retire(ctx.bot, ctx.chat_id, older["msg"])
    offer["msg"] = None
    await ctx.state.set_data({**data, OFFER_KEY: offer})
    sent = await ctx.bot.send_message(ctx.chat_id, offer_text(ctx, offer), reply_markup=offer_markup(ctx, offer))
    offer["msg"] = sent.message_id
    await ctx.state.set_data({**data, OFFER_KEY: offer})


async def instruct(ctx: Ctx, data: Mapping[str, Any], offer: dict[str, Any], text: str) -> None:
    """A text typed after a file: its instruction (the file's offer again, with it), or with
    "a new picture from this text" a prompt of its own."""
    await show_offer(ctx, data, {**offer, "c": text})


async def act(ctx: Ctx, offer: Mapping[str, Any], family: str) -> None:
    """The chosen action: the family's preferred model that takes the file, started with it (and
    the caption as its prompt); a file no model of the family takes is told why, over the offer."""
    kind, files, caption = offer["k"], list(offer["f"]), offer.get("c")
    models = await preferred(ctx, family, kind)
    first_bad: Bad | None = None
    for model in models:
        item = file_field(model, kind)
        assert item is not None
        bads = [check_file(model, item, Sent(offer.get("s") or "document", kind, f)) for f in files]
        bad = next((b for b in bads if b is not None), None)
        if bad is not None:
            first_bad = first_bad or bad
            continue
        values: dict[str, Any] = {item.name: files[:item.max_items] if item.array else files[0]}
        notice = None
        prompt = prompt_field(model)
        if prompt is not None and caption:
            value = text_value(prompt, caption)
            if isinstance(value, Bad):
                notice = ctx.t("caption_too_long", reason=ctx.t(value.key, **value.values))
            else:
                values[prompt.name] = value
        await start(ctx, model, with_defaults(model, values), notice=notice, other_models=len(models) > 1)
        return
    reason = ctx.t(first_bad.key, **first_bad.values) if first_bad is not None else ctx.t("fallback")
    await screens.put(ctx.bot, ctx.chat_id, f"{ctx.t('offer_bad_file', reason=reason)}\n\n{offer_text(ctx, offer)}",
                      offer_markup(ctx, offer), over=ctx.over)


def _file_sent(message: Message) -> bool | dict[str, Any]:
    """A filter: the message carries a photo, video or audio (a document of one counts)."""
    sent = sent_file(message)
    return {"sent": sent} if sent is not None and sent.family in OFFERS else False


# --- Change model ---------------------------------------------------------------------------------


def others(ctx: Ctx, wiz: Wiz) -> list[Model]:
    """The current model's family members that take what the user gave it, cheapest first."""
    catalog, settings = ctx.services.catalog, ctx.services.settings
    current = catalog.model(wiz.model)
    kinds = {f.kind for f in asked(current) if f.name in wiz.values and (f.media or f.kind == PROMPT)}
    fitting = [m for m in catalog.in_family(current.family)
               if m.id != current.id and all(file_field(m, k) is not None if k != PROMPT else takes(m, k)
                                             for k in kinds)]
    return sorted(fitting, key=lambda m: (lowest(settings, m).low, m.order))


def others_markup(ctx: Ctx, wiz: Wiz, models: Sequence[Model], page: int) -> InlineKeyboardMarkup:
    pages = max(1, -(-len(models) // PAGE))
    page = min(max(page, 0), pages - 1)
    rows = [[keyboards.button(model_label(ctx.lang, ctx.services, m), keyboards.pick_model_data(wiz.nonce, m.id))]
            for m in models[page * PAGE:(page + 1) * PAGE]]
    nav: list[InlineKeyboardButton] = []
    if page > 0:
        nav.append(keyboards.button("◀", keyboards.other_models_data(wiz.nonce, page - 1)))
    if page + 1 < pages:
        nav.append(keyboards.button("▶", keyboards.other_models_data(wiz.nonce, page + 1)))
    if nav:
        rows.append(nav)
    rows.append([keyboards.button(ctx.t("btn_back"), keyboards.step_data(wiz.nonce, "show"))])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _parse(data: str, prefix: str) -> tuple[str, str]:
    nonce, _, rest = data[len(prefix):].partition(":")
    return nonce, rest


# --- the router -----------------------------------------------------------------------------------


def router() -> Router:
    router = Router(name="intake")

    @router.callback_query(F.data == keyboards.IDEA)
    async def idea(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services,
                   wiz: Wiz | None = None) -> None:
        ctx = Ctx.of(query, bot, services, state)
        ctx.over = None  # the menu stays; the idea comes as its own screen
        if wiz is not None:  # the flow it replaces leaves no live buttons
            await screens.retire(bot, ctx.chat_id, wiz.shown)
        ideas = IDEAS.get(ctx.lang, IDEAS["ru"])
        await prompt_flow(ctx, random.choice(ideas), notice=ctx.t("idea_notice"))

    @router.callback_query(F.data.startswith(keyboards.OTHER_MODELS))
    async def other_models(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services,
                           wiz: Wiz | None = None, toast: Toast | None = None) -> None:
        ctx = Ctx.of(query, bot, services, state, toast=toast)
        nonce, page = _parse(query.data or "", keyboards.OTHER_MODELS)
        if wiz is None or wiz.at != CONFIRM or wiz.nonce != nonce:
            await _outdated(ctx, wiz)
            return
        models = others(ctx, wiz)
        await screens.put(bot, ctx.chat_id, ctx.t("other_models_title"),
                          others_markup(ctx, wiz, models, int(page) if page.isdigit() and len(page) < 4 else 0),
                          over=ctx.over)

    @router.callback_query(F.data.startswith(keyboards.PICK_MODEL))
    async def picked(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services,
                     wiz: Wiz | None = None, toast: Toast | None = None) -> None:
        ctx = Ctx.of(query, bot, services, state, toast=toast)
        nonce, model_id = _parse(query.data or "", keyboards.PICK_MODEL)
        if wiz is None or wiz.at != CONFIRM or wiz.nonce != nonce or model_id not in services.catalog:
            await _outdated(ctx, wiz)
            return
        old, new = services.catalog.model(wiz.model), services.catalog.model(model_id)
        if new.family != old.family:
            await _outdated(ctx, wiz)
            return
        await start(ctx, new, carried(old, new, wiz.values), other_models=True)

    @router.callback_query(F.data.startswith(OFFER))
    async def chosen(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services,
                     raw_state: str | None = None, toast: Toast | None = None) -> None:
        ctx = Ctx.of(query, bot, services, state, toast=toast)
        token, family = _parse(query.data or "", OFFER)
        offer = (await state.get_data()).get(OFFER_KEY) if raw_state is None else None
        if not isinstance(offer, dict) or offer.get("tok") != token or family not in actions(ctx, offer):
            await _stale(ctx, "offer_stale", query)
            return
        if family == PROMPT_FAMILY:
            await prompt_flow(ctx, offer["c"])
            return
        await act(ctx, offer, family)

    @router.callback_query(F.data == parts.USE_AS_IS)
    async def as_is(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services,
                    wiz: Wiz | None = None, raw_state: str | None = None, toast: Toast | None = None) -> None:
        ctx = Ctx.of(query, bot, services, state, toast=toast)
        in_wizard = wiz is not None and wiz.at == FIELD
        text = await parts.take(ctx) if in_wizard or raw_state is None else None
        if text is None:
            await _stale(ctx, "part_gone", query)
        elif wiz is not None:
            await take_text(ctx, wiz, text)
        else:
            await prompt_flow(ctx, text)

    @router.message(StateFilter(None), F.text, ~F.text.startswith("/"))
    async def typed(message: Message, bot: Bot, state: FSMContext, services: Services) -> None:
        ctx = Ctx.of(message, bot, services, state)
        text = await parts.receive(ctx, message.text or "")
        if text is None:
            return
        data = await state.get_data()
        offer = data.get(OFFER_KEY)
        fresh = isinstance(offer, dict) and message.date.timestamp() - (offer.get("d") or 0) <= INSTRUCTION_WITHIN
        if isinstance(offer, dict) and fresh and text.strip() != "":
            await instruct(ctx, data, offer, text.strip())
            return
        await prompt_flow(ctx, text)

    @router.message(StateFilter(None), _file_sent)
    async def file(message: Message, bot: Bot, state: FSMContext, services: Services, sent: Sent) -> None:
        await offer_file(Ctx.of(message, bot, services, state), message, sent)

    return router


async def _outdated(ctx: Ctx, wiz: Wiz | None) -> None:
    """A button of a confirmation that is no longer the current one: a toast, and the old message
    loses its buttons (never another model's Confirm under the thumb)."""
    await ctx.tell(ctx.t("outdated"))
    if wiz is None or ctx.over != wiz.shown:
        await screens.retire(ctx.bot, ctx.chat_id, ctx.over)


async def _stale(ctx: Ctx, key: str, query: CallbackQuery) -> None:
    """A button whose file or text is gone: said in a toast (else a message), and the message
    loses its buttons when it still shows this one (not when it became another screen since)."""
    if not await ctx.tell(ctx.t(key)):
        await ctx.bot.send_message(ctx.chat_id, ctx.t(key))
    message = query.message
    markup = message.reply_markup if isinstance(message, Message) else None
    if markup is not None and any(b.callback_data == query.data for row in markup.inline_keyboard for b in row):
        await screens.retire(ctx.bot, ctx.chat_id, ctx.over)
