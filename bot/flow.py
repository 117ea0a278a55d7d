"""The wizard: its state in the FSM and its screens, shared by the wizard's routers.

One aiogram state, Wizard.step; the data (small, JSON, in PostgreSQL) says where the user is:
asking the model's i-th field, the confirmation, or the list of fields to change. Each screen
has a nonce, new whenever the step changes, that its buttons carry (w:<nonce>:<action>): a
button of an older screen is recognised and answered with an "outdated" toast (never the current
step's buttons under it), and the confirmation's nonce is the job's key, so Confirm pressed twice
or replayed makes one job. The data is written before a screen is sent, so its buttons always
find their screen. One living message per flow: a screen after a press is edited over the pressed
message, a screen after a typed answer is a new message and the previous one loses its buttons
(Wiz.shown remembers which message shows the current screen). The state itself (Wizard, Wiz,
Press) lives in bot/wizard_state.py and is re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Filter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, TelegramObject

from bot import keyboards, screens, speak, status_message
from bot.actions_kit import PARENT, acting_key, item_of
from bot.fsm_storage import forget
from bot.inputs import formats, limit_mb
from bot.prices import exact, price_range
from bot.services import Services
from bot.texts import TEXTS, lang_of, money, t
from bot.wizard_state import CHANGE as CHANGE
from bot.wizard_state import CONFIRM as CONFIRM
from bot.wizard_state import FIELD as FIELD
from bot.wizard_state import Press as Press
from bot.wizard_state import Wiz as Wiz
from bot.wizard_state import Wizard as Wizard
from bot.wizard_state import new_nonce as new_nonce
from catalog.model import Field, Model, same
from catalog.payload import build, is_job_ref
from store import grants, jobs
from telemetry import logs

log = logs.get("bot")

TEXT_KINDS = ("prompt", "text", "int", "float")
BUTTON_KINDS = ("enum", "bool", "task")
MEDIA_KINDS = ("image", "video", "audio")
QUOTE = 300  # characters of a typed text shown back on a screen
TASK_CHOICES = 8  # earlier results offered for a field of kind task


Toast = Callable[[str], Awaitable[bool]]  # answers the pressed button's query with a text; False: not possible


def asked(model: Model) -> list[Field]:
    """The fields the wizard asks, in order (the rest is sent as their defaults, or filled from the
    result an action acts on: kind "parent", bot/actions_kit.py)."""
    return [f for f in model.fields if f.ask and f.kind not in ("json", PARENT)]


@dataclass
class Ctx:
    """Who a screen is for and what it needs: the chat, the user's language, the services; for a
    button, the message it was pressed on (`over`: the next screen replaces it) and the query's
    one answer (`toast`, from AnswerCallbackFirst)."""

    bot: Bot
    chat_id: int
    user_id: int
    lang: str
    services: Services
    state: FSMContext
    over: int | None = None
    toast: Toast | None = None

    @classmethod
    def of(cls, event: Message | CallbackQuery, bot: Bot, services: Services, state: FSMContext, *,
           toast: Toast | None = None) -> Ctx:
        user = event.from_user
        assert user is not None  # the middleware's ensure_user and the FSM key need a user
        if isinstance(event, Message):
            return cls(bot, event.chat.id, user.id, lang_of(user), services, state)
        chat = event.message.chat.id if event.message is not None else user.id
        return cls(bot, chat, user.id, lang_of(user), services, state, screens.pressed_on(event), toast)

    async def tell(self, text: str) -> bool:
        """`text` as a toast over the chat; False when none can be shown (a typed message, or a
        query answered already): the caller then shows it on the screen."""
        return self.toast is not None and await self.toast(text)

    def t(self, key: str, **values: Any) -> str:
        return t(self.lang, key, **values)

    def money(self, kopecks: int) -> str:
        return money(self.lang, kopecks)


# --- showing values -----------------------------------------------------------------------------


def quote(text: str, limit: int = QUOTE, lang: str = "ru") -> str:
    """A text shown back in the language's quotation marks (« » in Russian, “ ” in English)."""
    opening, closing = ("“", "”") if lang == "en" else ("«", "»")
    return f"{opening}{text if len(text) <= limit else text[:limit - 1] + '…'}{closing}"


def shown(ctx: Ctx, item: Field, value: Any) -> str:
    """A chosen value as the user knows it: an option's label, a quoted text, a count of files."""
    if value is None:
        return ctx.t("value_none")
    if item.kind == "enum":
        try:
            return item.option(value).label.get(ctx.lang)
        except KeyError:
            return str(value)
    if item.kind == "bool":
        return ctx.t("yes" if value else "no")
    if item.media:
        if (said := speak.shown(ctx.lang, value)) is not None:  # a typed text the bot will speak
            return said
        files = value if isinstance(value, list) else [value]
        lengths = [f["seconds"] for f in files if isinstance(f, dict) and f.get("seconds")]
        if item.kind in ("audio", "video") and lengths:  # what a price per second counts
            return ctx.t("value_files_seconds", count=len(files), seconds=math.ceil(sum(lengths)))
        return ctx.t("value_files", count=len(files))
    if item.kind == "task":
        shown_as = (value.get("n") or value.get("job_id")) if isinstance(value, dict) else "?"  # the user's number
        return ctx.t("value_result", id=shown_as)
    if isinstance(value, str):
        return quote(value, lang=ctx.lang)
    return str(value)


def value_lines(ctx: Ctx, model: Model, values: Mapping[str, Any]) -> list[str]:
    """"Title: value" for each asked field, what the user chose or the default that will be sent."""
    lines = []
    for item in asked(model):
        value = values.get(item.name, item.default)
        if value is None:
            continue
        assert item.title is not None
        lines.append(f"{item.title.get(ctx.lang)}: {shown(ctx, item, value)}")
    return lines


# --- screens ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Screen:
    text: str
    markup: InlineKeyboardMarkup


async def field_screen(ctx: Ctx, model: Model, wiz: Wiz) -> Screen:
    fields = asked(model)
    item = fields[wiz.index]
    assert item.title is not None
    title = item.title.get(ctx.lang)
    lines = [ctx.t("step_header", model=model.title.get(ctx.lang), step=wiz.index + 1, steps=len(fields))]
    choices: list[tuple[str, str, int | str | None]] = []
    wide = False
    if item.kind in ("prompt", "text"):
        lines.append(ctx.t("ask_text", title=title, limit=item.max_length))
    elif item.kind in ("int", "float"):
        lines.append(ctx.t("ask_number", title=title, low=item.minimum, high=item.maximum))
    elif item.kind in ("enum", "bool"):
        lines.append(ctx.t("ask_choice", title=title))
        choices = _options(ctx, model, wiz, item)
        wide = any(len(label) > 18 for label, _, _ in choices)
    elif item.media:
        lines.append(ctx.t(f"ask_file_{item.kind}", title=title, formats=formats(item), limit=limit_mb(item)))
        if (line := speak.hint(ctx.lang, item)) is not None:
            lines.append(line)
        if item.array and item.max_items > 1:  # one file (array or not) advances on the file: no Done
            lines.append(ctx.t("ask_files_many", most=item.max_items))
            if wiz.collected:
                lines.append(ctx.t("files_so_far", count=len(wiz.collected), most=item.max_items))
            if len(wiz.collected) >= item.min_items:  # said only where the Done button is
                lines.append(ctx.t("files_done_hint"))
    else:  # task: one of the user's earlier results
        choices = await _results(ctx, item)
        wide = True
        sources = ", ".join(dict.fromkeys(ctx.services.catalog.model(s).title.get(ctx.lang) for s in item.sources
                                          if s in ctx.services.catalog))
        lines.append(ctx.t("ask_task", title=title) if choices else ctx.t("no_task_sources", models=sources))
    current = wiz.values.get(item.name)
    if current is not None and item.kind not in ("enum", "bool"):
        lines.append(ctx.t("current_value", value=shown(ctx, item, current)))
    elif current is None and item.default is not None and item.kind not in ("enum", "bool"):
        lines.append(ctx.t("default_value", value=shown(ctx, item, item.default)))
    if not item.required:
        lines.append(ctx.t("optional_hint"))
    extra: list[tuple[str, str]] = []
    if current is not None and item.kind not in ("enum", "bool"):
        extra.append(("btn_keep", "keep"))
    if item.media and item.array and len(wiz.collected) >= item.min_items:
        extra.append(("btn_done", "done"))
    if not item.required:
        extra.append(("btn_skip", "skip"))
    return Screen("\n\n".join(lines), keyboards.step(ctx.lang, wiz.nonce, choices, wide=wide, extra=extra))


def allowed(model: Model, wiz: Wiz, item: Field, value: object) -> bool:
    """An option the user may pick: KIE accepts it with what they chose for the other fields."""
    others = {k: v for k, v in wiz.values.items() if k != item.name}
    return not model.forbidden({**others, item.name: value})


def _options(ctx: Ctx, model: Model, wiz: Wiz, item: Field) -> list[tuple[str, str, int | str | None]]:
    """The options as buttons, the current one (or the default) marked, each with its price when
    the options cost differently."""
    current = wiz.values.get(item.name, item.default)
    if item.kind == "bool":
        pairs: list[tuple[object, str, str, int]] = [(True, ctx.t("yes"), "b", 1), (False, ctx.t("no"), "b", 0)]
    else:
        pairs = [(o.value, o.label.get(ctx.lang), "o", i) for i, o in enumerate(item.options)]
    pairs = [p for p in pairs if allowed(model, wiz, item, p[0])]
    priced = _option_prices(ctx, model, wiz, item, [(value, arg) for value, _, _, arg in pairs])
    out: list[tuple[str, str, int | str | None]] = []
    for value, label, action, arg in pairs:
        mark = "✓ " if current is not None and same(value, current) else ""
        price = f" · {priced[arg]}" if priced else ""
        out.append((f"{mark}{label}{price}", action, arg))
    return out


def _option_prices(ctx: Ctx, model: Model, wiz: Wiz, item: Field, options: list[tuple[object, int]]
                   ) -> dict[int, str]:
    """Each option's price (by its button's arg), or nothing when they all cost the same."""
    if item.name not in model.price_fields and not any(s.of == item.name for s in model.skus):
        return {}
    chosen = {k: v for k, v in wiz.values.items() if k in model.price_fields}
    ranges = {}
    for value, arg in options:
        try:
            ranges[arg] = price_range(ctx.services.settings, model, {**chosen, item.name: value})
        except LookupError:  # a combination with the defaults that no SKU prices: show no prices
            return {}
    if len({(r.low, r.high) for r in ranges.values()}) <= 1:
        return {}
    return {arg: ctx.money(r.low) if r.low == r.high else ctx.t("price_from", price=ctx.money(r.low))
            for arg, r in ranges.items()}


async def _results(ctx: Ctx, item: Field) -> list[tuple[str, str, int | str | None]]:
    """The user's finished results of the field's source models, newest first."""
    db, settings = ctx.services.database, ctx.services.settings
    found = [j for j in await jobs.user_jobs(db, settings.bot_id, ctx.user_id, 0, 50)
             if j.state == "succeeded" and j.model in item.sources][:TASK_CHOICES]
    catalog = ctx.services.catalog
    out: list[tuple[str, str, int | str | None]] = []
    for job in found:
        title = catalog.model(job.model).title.get(ctx.lang) if job.model in catalog else job.model
        day = job.created_at.astimezone(settings.zone).strftime("%d.%m %H:%M")
        out.append((f"{ctx.t('gen_no', n=job.user_number)} {title} · {day}", "t", job.id))
    return out


@dataclass(frozen=True, slots=True)
class Terms:
    """How a confirmation is paid: "admin", "free" (the free tier), "plan" (the subscription's
    daily allowance), "grant" (a promo's free generation) or "money", and the price in kopecks
    (with the plan's discount when paid: `full_price` is the price before it)."""

    paid_with: jobs.PaidWith
    price: int
    free_left: int | None = None  # free generations left today, for a free-tier SKU
    available: int | None = None  # the user's available kopecks, when they pay
    full_price: int | None = None  # money with a plan's discount: the price before it
    discount: int = 0  # percent off (money)
    left: int | None = None  # plan: of today's allowance; grant: promo generations left

    def key(self) -> list[Any]:
        return [self.paid_with, self.price]


async def terms(ctx: Ctx, model: Model, payload: Mapping[str, Any], *, now: datetime | None = None) -> Terms:
    """The price of this input and how it would be paid right now: admins for free, a free-tier
    SKU for free while the day's free generations last, then the subscription's daily allowance
    of this model, then a promo's free generation, otherwise money (less the plan's discount)."""
    settings, db = ctx.services.settings, ctx.services.database
    price = exact(settings, model, payload)
    if ctx.user_id in settings.admin_ids:
        return Terms("admin", price)
    left = None
    day = jobs.local_day(settings.zone)
    if model.sku_for(payload).free:
        used = await jobs.free_used(db, settings.bot_id, ctx.user_id, day)
        left = max(0, settings.free_daily_limit - used)
        if left:
            return Terms("free", price, left)
    standing = await grants.standing(db, settings.bot_id, ctx.user_id, model.id, price, day=day,
                                     now=now or datetime.now(UTC))
    entitled = standing.entitlement
    if entitled.kind is not None:
        return Terms(entitled.kind, price, left, left=entitled.left)
    paid = grants.discounted(price, entitled.discount)
    if paid != price:
        return Terms("money", paid, left, standing.available, full_price=price, discount=entitled.discount)
    return Terms("money", price, left, standing.available)


def unread_terms(ctx: Ctx, model: Model, payload: Mapping[str, Any], shown: list[Any] | None) -> Terms | None:
    """The terms a Confirm commits without reading them again, when the screen showed money at the
    full price and nothing Python knows says otherwise (not an admin, not a free-tier SKU, the same
    price): the commit itself refuses them when a plan, a grant or a discount applies by now
    (store.jobs.Order.terms_read), so the round trip saved is no check lost. None: read them."""
    settings = ctx.services.settings
    if ctx.user_id in settings.admin_ids or model.sku_for(payload).free:
        return None
    plain = Terms("money", exact(settings, model, payload))
    return plain if plain.key() == shown else None


async def acting(ctx: Ctx, model_id: str, parent_id: int | None, values: Mapping[str, Any]) -> str | None:
    """The line naming the result an action acts on ("Продление результата №3", and which of its
    files when it has several: `values` are the child's), by the user's own number; None for a
    job of its own."""
    parent = None if parent_id is None else await jobs.job(ctx.services.database, parent_id)
    if parent is None:
        return None
    key = acting_key(model_id)
    line = ctx.t(key if key in TEXTS.get(ctx.lang, {}) else "acting_any", n=parent.user_number)
    catalog = ctx.services.catalog
    item = item_of(catalog.model(model_id), parent, values) if model_id in catalog else None
    return line if item is None else ctx.t("acting_item", line=line, item=item + 1)


def confirm_screen(ctx: Ctx, model: Model, wiz: Wiz, terms: Terms, on: str | None = None) -> Screen:
    lines = [ctx.t("confirm_header"), ctx.t("confirm_model", model=model.title.get(ctx.lang))]
    if on is not None:
        lines.append(on)
    lines += value_lines(ctx, model, wiz.values)
    price = ctx.money(terms.price)
    short = False
    if terms.paid_with == "admin":
        lines.append(ctx.t("confirm_admin", price=price))
        button_price = ctx.t("price_free")
    elif terms.paid_with == "free":
        lines.append(ctx.t("confirm_free", left=terms.free_left, limit=ctx.services.settings.free_daily_limit))
        button_price = ctx.t("price_free")
    elif terms.paid_with in ("plan", "grant"):  # by subscription / free (promo)
        lines.append(ctx.t(f"confirm_{terms.paid_with}", price=price, left=terms.left))
        button_price = ctx.t("price_free")
    else:
        available = terms.available or 0
        if terms.full_price is not None:
            lines.append(ctx.t("confirm_discount", price=price, full=ctx.money(terms.full_price),
                               discount=terms.discount))
        else:
            lines.append(ctx.t("confirm_price", price=price))
        if terms.free_left == 0:
            lines.append(ctx.t("confirm_free_used_up", limit=ctx.services.settings.free_daily_limit))
        lines.append(ctx.t("confirm_balance", available=ctx.money(available)))
        if available < terms.price:
            short = True
            lines.append(ctx.t("confirm_short", short=ctx.money(terms.price - available)))
        button_price = price
    return Screen("\n".join(lines), keyboards.confirmation(ctx.lang, wiz.nonce, button_price, short=short,
                                                         other_models=wiz.other_models, asks=bool(asked(model))))


def change_screen(ctx: Ctx, model: Model, wiz: Wiz) -> Screen:
    choices: list[tuple[str, str, int | str | None]] = []
    for index, item in enumerate(asked(model)):
        assert item.title is not None
        value = wiz.values.get(item.name, item.default)
        choices.append((f"{item.title.get(ctx.lang)}: {shown(ctx, item, value)}"[:60], "e", index))
    return Screen(ctx.t("change_what"), keyboards.step(ctx.lang, wiz.nonce, choices, wide=True))


# --- moving through the wizard ------------------------------------------------------------------


async def show(ctx: Ctx, wiz: Wiz, *, notice: str | None = None, fresh: bool = True, save: bool = True,
               begin: bool = False) -> None:
    """Show the screen of the wizard's current step, after writing the data its buttons need: over
    the pressed message (one living message per flow), or, after a typed answer, as a new message
    under it, the previous screen's buttons taken away.

    fresh: the step changed, so the screen gets a new nonce (older buttons become outdated);
    otherwise the same screen again (bad input, an outdated button), whose buttons stay valid.
    A confirmation shown again whose terms changed meanwhile is a new confirmation (new nonce).
    begin: the wizard starts (the state is set after the data).
    """
    model = ctx.services.catalog.model(wiz.model)
    if fresh:
        wiz.nonce = new_nonce()
    if wiz.at == CONFIRM and model.forbidden(build(model, wiz.values)):
        wiz.at, wiz.nonce, save = CHANGE, new_nonce(), True
        notice = "\n\n".join(filter(None, [notice, ctx.t("forbidden_combination")]))
    if wiz.at == CONFIRM:
        now = await terms(ctx, model, build(model, wiz.values))
        if wiz.terms != now.key():
            if not fresh:
                wiz.nonce = new_nonce()
            wiz.terms, save = now.key(), True
        screen = confirm_screen(ctx, model, wiz, now, await acting(ctx, model.id, wiz.parent, wiz.values))
    elif wiz.at == FIELD:
        screen = await field_screen(ctx, model, wiz)
    else:
        screen = change_screen(ctx, model, wiz)
    before = wiz.shown
    if ctx.over is not None and ctx.over != wiz.shown:  # the pressed message becomes the screen
        wiz.shown, save = ctx.over, True
    if fresh or save:
        await ctx.state.set_data(wiz.dump())
    if begin:
        await ctx.state.set_state(Wizard.step)
    text = f"{notice}\n\n{screen.text}" if notice else screen.text
    showing = await screens.put(ctx.bot, ctx.chat_id, text, screen.markup, over=ctx.over)
    if before is not None and before != showing:  # the screen moved: the old one's buttons go
        await screens.retire(ctx.bot, ctx.chat_id, before)
    if showing != wiz.shown:  # a new message (a typed answer, or the edit refused): remembered
        wiz.shown = showing
        await ctx.state.set_data(wiz.dump())


async def start(ctx: Ctx, model: Model, values: Mapping[str, Any] | None = None, *,
                notice: str | None = None, other_models: bool = False, parent: int | None = None,
                preset: Mapping[str, Any] | None = None) -> None:
    """A new wizard for `model` (replacing any other): its first field, or with `values` (a
    repetition) straight to the confirmation; `notice` above it (a one-model family's card);
    other_models: the confirmation offers the family's other models (routers/intake.py);
    parent: an action on that job's result, `preset` its fields filled from it (never asked)."""
    wiz = Wiz(model=model.id, nonce="", values={**(preset or {}), **(values or {})}, other_models=other_models,
              parent=parent)
    missing = [i for i, f in enumerate(asked(model)) if f.required and f.name not in wiz.values]
    if values is not None and missing:  # the model asks for more since: that field, then the confirmation
        wiz.index, wiz.editing = missing[0], len(missing) == 1
    elif values is not None or not asked(model):
        wiz.at = CONFIRM
    await show(ctx, wiz, begin=True, notice=notice)


async def advance(ctx: Ctx, wiz: Wiz, *, notice: str | None = None) -> None:
    """The current field is answered: the next one, or the confirmation after the last (or after
    a field opened from Change); `notice` above it (what became of a caption or a file)."""
    model = ctx.services.catalog.model(wiz.model)
    wiz.collected = []
    if wiz.editing or wiz.index + 1 >= len(asked(model)):
        wiz.at, wiz.editing = CONFIRM, False
    else:
        wiz.index += 1
    await show(ctx, wiz, notice=notice)


async def leave(ctx: Ctx, text_key: str) -> None:
    """Out of the wizard, to the main menu (over the pressed message)."""
    await forget(ctx.state)
    await screens.put(ctx.bot, ctx.chat_id, ctx.t(text_key),
                      keyboards.main_menu(ctx.lang, ctx.services.catalog.families()), over=ctx.over)


def repeat_values(model: Model, payload: Mapping[str, Any]) -> dict[str, Any]:
    """What a repetition chooses: the asked fields of an earlier job's input that still fit the
    model (an option since removed falls back to the default)."""
    out: dict[str, Any] = {}
    for item in asked(model):
        if item.name not in payload:
            continue
        value = payload[item.name]
        if item.kind == "enum" and not any(same(o.value, value) for o in item.options):
            continue
        if item.kind == "task" and not is_job_ref(value):
            continue
        out[item.name] = value
    return out


class OnStep(Filter):
    """The wizard is at one of `steps` (LoadWizard put it in the data as `wiz`); for a button,
    also its nonce is the current screen's. Hands the handler `press` (the parsed button)."""

    def __init__(self, *steps: str) -> None:
        self.steps = steps

    async def __call__(self, event: TelegramObject, wiz: Wiz | None = None) -> bool | dict[str, Any]:
        if wiz is None or wiz.at not in self.steps:
            return False
        if isinstance(event, CallbackQuery):
            press = Press.parse(event.data)
            if press is None or press.nonce != wiz.nonce:
                return False
            return {"press": press}
        return True


# --- after Confirm ------------------------------------------------------------------------------


def job_nonce(user_id: int, nonce: str) -> str:
    """The job's confirmation key: the screen's nonce, made unique across users."""
    return f"{user_id}:{nonce}"


def drive(ctx: Ctx, job: jobs.Job, slot: float | None = None) -> None:
    """The jobs actor told to drive the job now (by its id when it can): called right after the
    commit, so createTask does not wait for the summary and the status message, which Telegram's
    pacing (one message a second per chat) makes take a second or more. Safe before the status
    message exists: the actor edits none while none is recorded, and recording one after a fast
    end opens the job again for its last word (store.jobs.set_status_message). `slot`: the
    createTask slot the Confirm took for a job it made 'submitting' (sql/025)."""
    services = ctx.services
    if services.drive_job is not None:
        services.drive_job(job, slot)
    else:
        services.wake_jobs()


async def announce(ctx: Ctx, job: jobs.Job, epoch: int, *, driven: bool = False) -> None:
    """The job is committed: its status message (once: a replay that finds it recorded sends
    none), recorded for the jobs actor to edit, and the actor woken (unless `driven` already)."""
    services = ctx.services
    if job.status_message_id is None:
        title = services.catalog.model(job.model).title.get(ctx.lang) if job.model in services.catalog else job.model
        await status_message.show(ctx.bot, services.database, services.lock_name, epoch, job,
                                  ctx.t("status_queued", model=title, n=job.user_number))
    if not driven:
        drive(ctx, job)


def summary(ctx: Ctx, job: jobs.Job, on: str | None = None) -> str:
    """What a finished confirmation says once its job is made: the model, what it acts on (`on`),
    the values and the price, no buttons (so no second Confirm under the thumb); the status
    message follows it."""
    catalog = ctx.services.catalog
    model = catalog.model(job.model) if job.model in catalog else None
    lines = [ctx.t("confirmed_header"),
             ctx.t("confirm_model", model=model.title.get(ctx.lang) if model is not None else job.model)]
    if on is not None:
        lines.append(on)
    if model is not None:
        lines += value_lines(ctx, model, job.input)
    price = ctx.money(job.price) if job.paid_with == "money" else ctx.t("price_free")
    lines.append(ctx.t("confirm_price", price=price))
    return "\n".join(lines)


async def settle(ctx: Ctx, job: jobs.Job, wiz: Wiz | None = None, *, notice: str | None = None) -> None:
    """The pressed confirmation becomes the job's summary without buttons (`notice` under it), and
    any other screen the wizard still shows loses its buttons. Best effort: a message that cannot
    be edited any more (too old, not modified) stays as it is."""
    on = await acting(ctx, job.model, job.parent_id, job.input)
    text = summary(ctx, job, on) + (f"\n\n{notice}" if notice else "")
    if ctx.over is not None:
        try:
            await ctx.bot.edit_message_text(text=text, chat_id=ctx.chat_id, message_id=ctx.over, reply_markup=None)
        except TelegramAPIError as exc:
            log.debug("summary_edit_skipped", extra={"error_text": str(exc)[:200]})
    if wiz is not None and wiz.shown is not None and wiz.shown != ctx.over:
        await screens.retire(ctx.bot, ctx.chat_id, wiz.shown)


async def confirmed_job(ctx: Ctx, nonce: str) -> jobs.Job | None:
    """The job an earlier press of this confirmation created (among the user's newest), if any."""
    key = job_nonce(ctx.user_id, nonce)
    recent = await jobs.user_jobs(ctx.services.database, ctx.services.settings.bot_id, ctx.user_id, 0, 20)
    return next((j for j in recent if j.nonce == key), None)
