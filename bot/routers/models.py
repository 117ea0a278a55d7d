"""The catalog's screens: /models (the families), a family's models (paginated, popular first,
free ones marked, the price "from ..."), and a model's card (what it does, its prices, Start).

These screens hold no state of their own, so their buttons never go stale; opening one leaves
a wizard in progress (the user went looking for another model).
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot import keyboards
from bot.fsm_storage import forget
from bot.prices import combinations, lowest, price_range
from bot.replies import chat_of
from bot.services import Services
from bot.texts import lang_of, money, t
from catalog.families import BY_ID as FAMILIES
from catalog.loader import Model

PAGE = 8  # models per page


def model_label(lang: str, services: Services, model: Model) -> str:
    cheapest = lowest(services.settings, model)
    mark = "🎁 " if cheapest.free else "⭐ " if model.popular else ""
    price = t(lang, "price_free_tier") if cheapest.free else t(lang, "price_from", price=money(lang, cheapest.low))
    return f"{mark}{model.title.get(lang)} · {price}"


def card_text(lang: str, services: Services, model: Model) -> str:
    """Title, description, and a price line per choice of the fields that set the price."""
    lines = [f"{model.title.get(lang)}", model.description.get(lang), "", t(lang, "card_prices")]
    free = False
    for values in combinations(model):
        r = price_range(services.settings, model, values)
        free = free or r.free
        what = ", ".join(_choice(lang, model, name, value) for name, value in values.items()) or t(lang, "card_any")
        price = money(lang, r.low) if r.low == r.high else t(lang, "price_range", low=money(lang, r.low),
                                                                high=money(lang, r.high))
        lines.append(f"• {what}: {price}{' 🎁' if r.free else ''}")
    if free:
        lines.append(t(lang, "card_free", limit=services.settings.free_daily_limit))
    return "\n".join(lines)


def _choice(lang: str, model: Model, name: str, value: object) -> str:
    """An option's label, or "Sound: yes" for a flag."""
    item = model.field(name)
    if item.kind == "enum":
        return item.option(value).label.get(lang)
    title = item.title.get(lang) if item.title else name
    return f"{title}: {t(lang, 'yes' if value else 'no')}"


async def leave_wizard(state: FSMContext, raw_state: str | None) -> None:
    if raw_state is not None:
        await forget(state)


def router() -> Router:
    router = Router(name="models")

    @router.message(Command("models"))
    async def models(message: Message, state: FSMContext, services: Services, raw_state: str | None = None) -> None:
        lang = lang_of(message.from_user)
        await leave_wizard(state, raw_state)
        await message.answer(t(lang, "choose_family"),
                             reply_markup=keyboards.main_menu(lang, services.catalog.families()))

    @router.callback_query(F.data.startswith(keyboards.FAMILY))
    async def family(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services,
                     raw_state: str | None = None) -> None:
        lang = lang_of(query.from_user)
        family_id, _, page_text = (query.data or "")[len(keyboards.FAMILY):].partition(":")
        models = services.catalog.in_family(family_id)
        if family_id not in FAMILIES or not models:
            await bot.send_message(chat_of(query), t(lang, "outdated"),
                                   reply_markup=keyboards.main_menu(lang, services.catalog.families()))
            return
        await leave_wizard(state, raw_state)
        pages = -(-len(models) // PAGE)
        page = min(int(page_text), pages - 1) if page_text.isdigit() and len(page_text) < 6 else 0
        shown = models[page * PAGE:(page + 1) * PAGE]
        items = [(model_label(lang, services, m), m.id) for m in shown]
        text = t(lang, "family_header", family=FAMILIES[family_id].title.get(lang))
        await bot.send_message(chat_of(query), text, reply_markup=keyboards.model_list(lang, family_id, items, page,
                                                                                       pages))

    @router.callback_query(F.data.startswith(keyboards.MODEL))
    async def card(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services,
                   raw_state: str | None = None) -> None:
        lang = lang_of(query.from_user)
        model_id = (query.data or "")[len(keyboards.MODEL):]
        if model_id not in services.catalog:
            await bot.send_message(chat_of(query), t(lang, "model_gone"),
                                   reply_markup=keyboards.main_menu(lang, services.catalog.families()))
            return
        await leave_wizard(state, raw_state)
        model = services.catalog.model(model_id)
        page = services.catalog.in_family(model.family).index(model) // PAGE
        await bot.send_message(chat_of(query), card_text(lang, services, model),
                               reply_markup=keyboards.model_card(lang, model.id, model.family, page))

    return router
