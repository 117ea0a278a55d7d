"""The catalog's screens: /models (the families), a family's models (paginated, popular first or
the cheapest first, free ones marked, the price "from ..."), and a model's card (what it does,
its prices, how long it usually takes, what its resolution words mean, a sample, Start).

A family with one model has nothing to choose: its button opens that model's first step at
once, the card's essentials above it. Page turns, the order's toggle and a card opened from the
list edit the list's message (one living message); the "n/N" counter does nothing.

These screens hold no state of their own, so their buttons never go stale; opening one leaves
a wizard in progress (the user went looking for another model).
"""

from __future__ import annotations

import math

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import keyboards, resolutions, samples, screens
from bot.flow import Ctx, asked, start
from bot.fsm_storage import forget
from bot.prices import combinations, lowest, price_range
from bot.replies import chat_of
from bot.services import Services
from bot.texts import lang_of, money, t
from catalog.estimates import typical_seconds
from catalog.families import BY_ID as FAMILIES
from catalog.model import Model
from store import jobs

PAGE = 8  # models per page
SORTED_FROM = 5  # a family with at least this many models offers the other order
SORTS = (keyboards.POPULAR, keyboards.CHEAPEST)


def ordered(services: Services, family: str, sort: str | None) -> list[Model]:
    """A family's models in the list's order: popular first (the catalog's), or the cheapest
    first (by the list's "from" price; equal prices keep the catalog's order)."""
    models = services.catalog.in_family(family)
    if sort == keyboards.CHEAPEST:
        return sorted(models, key=lambda m: lowest(services.settings, m).low)
    return models


def listed(services: Services, model_id: str) -> bool:
    """A model a user may open from a list: in the catalog and not hidden (those are reached only
    as an action on a result, with their parent's values)."""
    return model_id in services.catalog and not services.catalog.model(model_id).hidden


def model_label(lang: str, services: Services, model: Model) -> str:
    cheapest = lowest(services.settings, model)
    mark = "🎁 " if cheapest.free else "⭐ " if model.popular else ""
    price = t(lang, "price_free_tier") if cheapest.free else t(lang, "price_from", price=money(lang, cheapest.low))
    return f"{mark}{model.title.get(lang)} · {price}"


def duration(lang: str, seconds: float) -> str:
    """A wait as people say it: "40 с" up to a minute and a half, then whole minutes."""
    if seconds < 90:
        return t(lang, "time_seconds", n=max(5, 5 * round(seconds / 5)))
    return t(lang, "time_minutes", n=math.ceil(seconds / 60))


def card_text(lang: str, services: Services, model: Model, usual: float | None = None) -> str:
    """Title, description, the prices (one line for one price, else a line per choice of the
    fields that set it), the typical time (`usual`: the measured median, else the family's
    estimate) and what the model's resolution words mean."""
    lines = [f"{model.title.get(lang)}", model.description.get(lang), ""]
    choices = combinations(model)
    free = False
    if choices == [{}]:
        r = price_range(services.settings, model, {})
        free = r.free
        lines.append(t(lang, "card_price_one", price=_price(lang, r.low, r.high)) + (" 🎁" if r.free else ""))
    else:
        lines.append(t(lang, "card_prices"))
        for values in choices:
            r = price_range(services.settings, model, values)
            free = free or r.free
            what = ", ".join(_choice(lang, model, name, value) for name, value in values.items())
            lines.append(f"• {what}: {_price(lang, r.low, r.high)}{' 🎁' if r.free else ''}")
    if free:
        lines.append(t(lang, "card_free", limit=services.settings.free_daily_limit))
    lines.append("")
    if usual is not None:
        lines.append(t(lang, "card_time_measured", time=duration(lang, usual)))
    else:
        lines.append(t(lang, "card_time_estimate", time=duration(lang, typical_seconds(model.family))))
    explained = resolution_lines(lang, model)
    if explained:
        lines += ["", t(lang, "card_resolution"), *(f"• {line}" for line in explained)]
    return "\n".join(lines)


def resolution_lines(lang: str, model: Model) -> list[str]:
    """What each resolution word among the model's options means (1K ≈ 1024 px, 720p...), once each."""
    return resolutions.explain(lang, [o.value for item in asked(model) if item.kind == "enum" for o in item.options])


def _price(lang: str, low: int, high: int) -> str:
    return money(lang, low) if low == high else t(lang, "price_range", low=money(lang, low), high=money(lang, high))


def _choice(lang: str, model: Model, name: str, value: object) -> str:
    """An option's label, or "Sound: yes" for a flag."""
    item = model.field(name)
    if item.kind == "enum":
        return item.option(value).label.get(lang)
    title = item.title.get(lang) if item.title else name
    return f"{title}: {t(lang, 'yes' if value else 'no')}"


async def usual(services: Services, model: Model) -> float | None:
    """How long the model has taken here lately (the median), or None before its first result."""
    return await jobs.usual_seconds(services.database, services.settings.bot_id, model.id)


async def card_screen(lang: str, services: Services, model: Model, sort: str | None = None
                      ) -> tuple[str, InlineKeyboardMarkup]:
    """A model's card and its buttons: Start, the family's sample, Back to the list's page that
    shows it (in its order), or to the menu for a one-model family (its list is the model)."""
    models = ordered(services, model.family, sort)
    page = models.index(model) // PAGE
    back = keyboards.MENU_OPEN if len(models) == 1 else None
    markup = keyboards.model_card(lang, model.id, model.family, page, sort=sort,
                                  sample=samples.path(model.family) is not None, back=back)
    return card_text(lang, services, model, await usual(services, model)), markup


async def leave_wizard(state: FSMContext, raw_state: str | None) -> None:
    if raw_state is not None:
        await forget(state)


def _sorted(text: str) -> str | None:
    return text if text in SORTS else None


def router() -> Router:
    router = Router(name="models")

    @router.message(Command("models"))
    async def models(message: Message, state: FSMContext, services: Services, raw_state: str | None = None) -> None:
        lang = lang_of(message.from_user)
        await leave_wizard(state, raw_state)
        await message.answer(t(lang, "choose_family"),
                             reply_markup=keyboards.main_menu(lang, services.catalog.families()))

    @router.callback_query(F.data == keyboards.COUNTER)
    async def counter(query: CallbackQuery) -> None:
        """The "n/N" between the arrows: the middleware answered the press; nothing to show."""

    @router.callback_query(F.data.startswith(keyboards.FAMILY))
    async def family(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services,
                     raw_state: str | None = None) -> None:
        lang = lang_of(query.from_user)
        family_id, _, rest = (query.data or "")[len(keyboards.FAMILY):].partition(":")
        page_text, _, sort_text = rest.partition(":")
        sort = _sorted(sort_text)
        models = ordered(services, family_id, sort) if family_id in FAMILIES else []
        over = screens.pressed_on(query)
        if not models:
            await screens.put(bot, chat_of(query), t(lang, "outdated"),
                              keyboards.main_menu(lang, services.catalog.families()), over=over)
            return
        await leave_wizard(state, raw_state)
        if len(models) == 1:  # nothing to choose: the model's first step, its card's essentials above it
            model = models[0]
            notice = card_text(lang, services, model, await usual(services, model))
            await start(Ctx.of(query, bot, services, state), model, notice=notice)
            return
        pages = -(-len(models) // PAGE)
        page = min(int(page_text), pages - 1) if page_text.isdigit() and len(page_text) < 6 else 0
        shown = models[page * PAGE:(page + 1) * PAGE]
        items = [(model_label(lang, services, m), m.id) for m in shown]
        header = "family_header_cheap" if sort == keyboards.CHEAPEST else "family_header"
        text = t(lang, header, family=FAMILIES[family_id].title.get(lang))
        markup = keyboards.model_list(lang, family_id, items, page, pages, sort=sort,
                                      sorts=len(models) >= SORTED_FROM)
        await screens.put(bot, chat_of(query), text, markup, over=over)

    @router.callback_query(F.data.startswith(keyboards.MODEL))
    async def card(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services,
                   raw_state: str | None = None) -> None:
        lang = lang_of(query.from_user)
        model_id, sort = (query.data or "")[len(keyboards.MODEL):], None
        head, _, tail = model_id.rpartition(":")  # mdl:<id>:<sort> (model ids have no colon)
        if model_id not in services.catalog and head in services.catalog and _sorted(tail):
            model_id, sort = head, tail
        over = screens.pressed_on(query)
        if not listed(services, model_id):
            await screens.put(bot, chat_of(query), t(lang, "model_gone"),
                              keyboards.main_menu(lang, services.catalog.families()), over=over)
            return
        await leave_wizard(state, raw_state)
        text, markup = await card_screen(lang, services, services.catalog.model(model_id), sort)
        await screens.put(bot, chat_of(query), text, markup, over=over)

    @router.callback_query(F.data.startswith(keyboards.SAMPLE))
    async def sample(query: CallbackQuery, bot: Bot, services: Services) -> None:
        """The family's sample under the card, with the model's Start on it (the card stays above)."""
        lang = lang_of(query.from_user)
        model_id = (query.data or "")[len(keyboards.SAMPLE):]
        if not listed(services, model_id):
            await bot.send_message(chat_of(query), t(lang, "model_gone"),
                                   reply_markup=keyboards.main_menu(lang, services.catalog.families()))
            return
        model = services.catalog.model(model_id)
        family = FAMILIES[model.family].title.get(lang) if model.family in FAMILIES else model.family
        markup = InlineKeyboardMarkup(inline_keyboard=[[keyboards.button(t(lang, "btn_start"),
                                                                         keyboards.start_data(model.id))]])
        if await samples.send(bot, chat_of(query), model.family, t(lang, "sample_caption", family=family),
                              markup) is None:
            await bot.send_message(chat_of(query), t(lang, "sample_missing"))

    return router
