"""Inline keyboards, built from the texts catalog so every label follows the user's language.

Callback data are short stable ids ("menu:open", "fam:audio:0"): they outlive deploys inside old
messages, so a renamed button must keep its id, and every one fits Telegram's 64 bytes
(tests/test_wizard.py builds each keyboard with the longest model ids). The scheme:

    menu:open | menu:help | menu:balance | menu:history    the main menu and its sections
    fam:<family>:<page>[:<sort>]                           a family's models, one page (sort p|c)
    fam:-                                                  the "n/N" counter: answered, nothing sent
    mdl:<model id>[:<sort>]                                a model's card (Back to that sort's page)
    smp:<model id>                                         the family's sample, with the model's Start
    go:<model id>                                          start the wizard for a model
    w:<nonce>:<action>[:<arg>]                             a wizard screen's button (bot/flow.py)
    hist:<page> | hjob:<job id>:<page>                     history: a page, one generation
    gen:again:<job id>                                     repeat a generation (also under results)
    act:<job id>:<action id>[:<item>]                      an action on a result: extend, 1080p... (actions.py)
    bal:topup                                              how to top up
    tr:open | tr:amt:<kopecks> | tr:own | tr:cancel:<id>   bank transfer (bot/routers/transfer.py)
    ref:open                                               invite friends (bot/routers/referral.py)
    pr:enter                                               type a promo code (bot/routers/promo.py)
    idea                                                   an example prompt (bot/routers/intake.py)
    lang:<ru|en>                                           /language's choice (bot/routers/language.py)
    in:m:<nonce>:<page> | in:p:<nonce>:<model id>          other models for the same input (intake.py)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Protocol

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.texts import TEXTS, t
from catalog.families import FAMILIES, Family

MENU_OPEN = "menu:open"
SUPPORT_WRITE = "sup:write"
MENU_HELP = "menu:help"
MENU_BALANCE = "menu:balance"
MENU_HISTORY = "menu:history"
# the main menu's first sections before families existed: still inside old messages
MENU_IMAGE = "menu:image"
MENU_VIDEO = "menu:video"
TOP_UP = "bal:topup"
TRANSFER = "tr:open"  # bank transfer (bot/routers/transfer.py), when it is on
AGAIN = "gen:again:"
ACTION = "act:"  # act:<job id>:<action id>[:<item index>]: a follow-up on a result (bot/routers/actions.py)
FAMILY = "fam:"
MODEL = "mdl:"
START = "go:"
SAMPLE = "smp:"
COUNTER = "fam:-"  # the page counter: a button that does nothing (bot/routers/models.py)
POPULAR, CHEAPEST = "p", "c"  # a family's list: popular first, or the cheapest first
STEP = "w:"
SUBSCRIPTION = "sub:open"  # the plans screen (bot/routers/subscription.py)
HISTORY = "hist:"
JOB = "hjob:"
INVITE = "ref:open"
PROMO = "pr:enter"
OTHER_MODELS = "in:m:"  # in:m:<nonce>:<page>: the family's other models for the same input
PICK_MODEL = "in:p:"  # in:p:<nonce>:<model id>: one of them
IDEA = "idea"  # the first screen's "🎲 idea": an example prompt, offered as a confirmation (bot/routers/intake.py)

FAMILY_ICONS = {
    "text_to_image": "🎨", "image_edit": "🖌", "text_to_video": "🎬", "image_to_video": "📽",
    "video_to_video": "🎞", "avatar": "🗣", "audio": "🎧", "image_upscale": "🔍", "video_upscale": "📺",
    "background_removal": "✂️", "music": "🎵",
}

Row = list[InlineKeyboardButton]


def button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data)


def _button(lang: str, key: str, data: str) -> InlineKeyboardButton:
    return button(t(lang, key), data)


def family_data(family: str, page: int = 0, sort: str | None = None) -> str:
    return f"{FAMILY}{family}:{page}" if sort is None else f"{FAMILY}{family}:{page}:{sort}"


def model_data(model_id: str, sort: str | None = None) -> str:
    return f"{MODEL}{model_id}" if sort is None else f"{MODEL}{model_id}:{sort}"


def sample_data(model_id: str) -> str:
    return f"{SAMPLE}{model_id}"


def start_data(model_id: str) -> str:
    return f"{START}{model_id}"


def step_data(nonce: str, action: str, arg: int | str | None = None) -> str:
    return f"{STEP}{nonce}:{action}" if arg is None else f"{STEP}{nonce}:{action}:{arg}"


def other_models_data(nonce: str, page: int = 0) -> str:
    return f"{OTHER_MODELS}{nonce}:{page}"


def pick_model_data(nonce: str, model_id: str) -> str:
    return f"{PICK_MODEL}{nonce}:{model_id}"


def history_data(page: int) -> str:
    return f"{HISTORY}{page}"


def job_data(job_id: int, page: int = 0) -> str:
    return f"{JOB}{job_id}:{page}"


def again_data(job_id: int) -> str:
    return f"{AGAIN}{job_id}"


def action_data(job_id: int, action: str, item: int | None = None) -> str:
    return f"{ACTION}{job_id}:{action}" if item is None else f"{ACTION}{job_id}:{action}:{item}"


class Offered(Protocol):
    """A model's follow-up as a result's keyboard needs it (catalog's Action)."""

    @property
    def id(self) -> str: ...

    @property
    def per_item(self) -> bool: ...


def action_label(lang: str, action: str) -> str:
    key = f"btn_action_{action}"
    return t(lang, key) if key in TEXTS.get(lang, {}) else t(lang, "btn_action_any", action=action)


def action_rows(lang: str, job_id: int, actions: Sequence[Offered], files: int = 1) -> list[Row]:
    """The follow-ups of a result: one button per action, a per_item action one per file ("Extend 1",
    "Extend 2") in a row of its own; ids too long for Telegram's 64 bytes are left out."""
    rows: list[Row] = []
    single: Row = []
    for action in actions:
        label = action_label(lang, action.id)
        if action.per_item and files > 1:
            row = [button(t(lang, "btn_action_item", label=label, n=i + 1), action_data(job_id, action.id, i))
                   for i in range(files)]
            rows += [row[i:i + 3] for i in range(0, len(row), 3)]
        else:
            single.append(button(label, action_data(job_id, action.id, 0 if action.per_item else None)))
    rows += [single[i:i + 3] for i in range(0, len(single), 3)]
    return [[b for b in row if len((b.callback_data or "").encode()) <= 64] for row in rows if row]


def result_keyboard(lang: str, job_id: int, actions: Sequence[Offered] = (), files: int = 1) -> InlineKeyboardMarkup:
    """Under a delivered result: its model's follow-ups (catalog Model.actions; `files`: how many
    files the result has, for per_item ones), then Repeat (the same input through the
    confirmation) and Menu."""
    rows = [row for row in action_rows(lang, job_id, actions, files) if row]
    rows.append([_button(lang, "btn_repeat", again_data(job_id)), _button(lang, "btn_menu", MENU_OPEN)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def family_label(lang: str, family: Family) -> str:
    return f"{FAMILY_ICONS.get(family.id, '•')} {family.title.get(lang)}"


def menu_label(lang: str, family: Family) -> str:
    """A family's button in the main menu: a short label (half a phone's width), else its title."""
    key = f"menu_fam_{family.id}"
    return t(lang, key) if key in TEXTS.get(lang, {}) else family_label(lang, family)


def main_menu(lang: str, families: Sequence[Family] = FAMILIES) -> InlineKeyboardMarkup:
    """The first screen's buttons: an idea to try at once, the families two a row (every one
    reachable, no wall of ten rows), then Top up and Balance, History and Help. Built once per
    language and families: /start, most of the traffic, sends the same keyboard every time."""
    return _main_menu(lang, tuple(families))


@functools.lru_cache(maxsize=64)
def _main_menu(lang: str, families: tuple[Family, ...]) -> InlineKeyboardMarkup:
    buttons = [button(menu_label(lang, f), family_data(f.id)) for f in families]
    # the idea first; an odd number of families lets it share its row (eight rows at most with eleven)
    cells = [_button(lang, "btn_try_idea", IDEA), *buttons] if len(buttons) % 2 else buttons
    rows: list[Row] = [] if len(buttons) % 2 else [[_button(lang, "btn_try_idea", IDEA)]]
    rows += [cells[i:i + 2] for i in range(0, len(cells), 2)]
    rows.append([_button(lang, "btn_top_up", TOP_UP), _button(lang, "btn_balance", MENU_BALANCE)])
    rows.append([_button(lang, "btn_history", MENU_HISTORY), _button(lang, "btn_help", MENU_HELP)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def support(lang: str) -> InlineKeyboardMarkup:
    """/paysupport's buttons: write to support (bot/routers/support.py), or the menu."""
    return InlineKeyboardMarkup(inline_keyboard=[[_button(lang, "btn_support_write", SUPPORT_WRITE)],
                                                 [_button(lang, "btn_menu", MENU_OPEN)]])


def menu_button(lang: str) -> InlineKeyboardMarkup:
    """One "Menu" button: under help, apologies and anything that is not itself the menu."""
    return InlineKeyboardMarkup(inline_keyboard=[[_button(lang, "btn_menu", MENU_OPEN)]])


def _pages(page: int, pages: int, make: Callable[[int], str], counter: str | None = None) -> Row:
    """◀ n/N ▶ for a paginated list; `make` gives a page's callback data, `counter` the n/N's."""
    row: Row = []
    if page > 0:
        row.append(button("◀", make(page - 1)))
    if pages > 1:
        row.append(button(f"{page + 1}/{pages}", counter or make(page)))
    if page + 1 < pages:
        row.append(button("▶", make(page + 1)))
    return row


def model_list(lang: str, family: str, items: Sequence[tuple[str, str]], page: int, pages: int, *,
               sort: str | None = None, sorts: bool = False) -> InlineKeyboardMarkup:
    """A family's models on one page: (label, model id) each, pages (the counter does nothing),
    the other order when `sorts` (popular first / cheapest first), Back and Menu."""
    rows: list[Row] = [[button(label, model_data(model_id, sort))] for label, model_id in items]
    nav = _pages(page, pages, lambda p: family_data(family, p, sort), COUNTER)
    if nav:
        rows.append(nav)
    if sorts:
        other = POPULAR if sort == CHEAPEST else CHEAPEST
        rows.append([_button(lang, f"btn_sort_{other}", family_data(family, 0, other))])
    rows.append([_button(lang, "btn_back", MENU_OPEN), _button(lang, "btn_menu", MENU_OPEN)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def model_card(lang: str, model_id: str, family: str, page: int, *, sort: str | None = None,
               sample: bool = True, back: str | None = None) -> InlineKeyboardMarkup:
    """Start, the family's sample, Back (to the list's page in its order, or `back`), Menu."""
    rows: list[Row] = [[_button(lang, "btn_start", start_data(model_id))]]
    if sample:
        rows.append([_button(lang, "btn_sample", sample_data(model_id))])
    rows.append([_button(lang, "btn_back", back or family_data(family, page, sort)),
                 _button(lang, "btn_menu", MENU_OPEN)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def step(lang: str, nonce: str, choices: Sequence[tuple[str, str, int | str | None]], *, wide: bool,
         extra: Sequence[tuple[str, str]] = (), back: bool = True) -> InlineKeyboardMarkup:
    """A wizard screen: its choices as (label, action, arg) (two a row unless `wide`), then its own
    buttons as (text key, action) one a row, then Back and Cancel, then Menu."""
    rows: list[Row] = []
    per_row = 1 if wide else 2
    buttons = [button(label, step_data(nonce, action, arg)) for label, action, arg in choices]
    rows += [buttons[i:i + per_row] for i in range(0, len(buttons), per_row)]
    rows += [[_button(lang, key, step_data(nonce, action))] for key, action in extra]
    last = [_button(lang, "btn_cancel", step_data(nonce, "cancel"))]
    if back:
        last.insert(0, _button(lang, "btn_back", step_data(nonce, "back")))
    rows.append(last)
    rows.append([_button(lang, "btn_menu", MENU_OPEN)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def confirmation(lang: str, nonce: str, price_text: str, *, short: bool,
                 other_models: bool = False, asks: bool = True) -> InlineKeyboardMarkup:
    """Confirm (its callback data carries the screen's nonce: the job's key), Top up when the
    balance is short, Change, Other model (a flow begun from what the user sent), Back, Cancel, Menu.
    A model that asks nothing (a 1080p version of a result) has nothing to change or go back to."""
    rows: list[Row] = []
    if short:
        rows.append([_button(lang, "btn_top_up", TOP_UP)])
    rows.append([button(t(lang, "btn_confirm", price=price_text), step_data(nonce, "ok"))])
    if asks:
        rows.append([_button(lang, "btn_change", step_data(nonce, "chg"))])
    if other_models:
        rows.append([_button(lang, "btn_other_model", other_models_data(nonce))])
    cancel = _button(lang, "btn_cancel", step_data(nonce, "cancel"))
    rows.append([_button(lang, "btn_back", step_data(nonce, "back")), cancel] if asks else [cancel])
    rows.append([_button(lang, "btn_menu", MENU_OPEN)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def history_list(lang: str, items: Sequence[tuple[str, int]], page: int, has_next: bool) -> InlineKeyboardMarkup:
    """A page of generations, (label, job id) each, newest first."""
    rows: list[Row] = [[button(label, job_data(job_id, page))] for label, job_id in items]
    nav: Row = []
    if page > 0:
        nav.append(button("◀", history_data(page - 1)))
    if has_next:
        nav.append(button("▶", history_data(page + 1)))
    if nav:
        rows.append(nav)
    rows.append([_button(lang, "btn_menu", MENU_OPEN)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def history_job(lang: str, job_id: int, page: int, *, repeat: bool, actions: Sequence[Offered] = (),
                files: int = 1) -> InlineKeyboardMarkup:
    """One generation: its follow-ups (a delivered result's actions), Repeat, Back, Menu."""
    rows: list[Row] = action_rows(lang, job_id, actions, files)
    if repeat:
        rows.append([_button(lang, "btn_repeat", again_data(job_id))])
    rows.append([_button(lang, "btn_back", history_data(page)), _button(lang, "btn_menu", MENU_OPEN)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def balance(lang: str, back_to: str | None, *, transfer: bool = False) -> InlineKeyboardMarkup:
    """Top up (and Bank transfer when `transfer`: PAYMENT_TRANSFER_DETAILS is set), history, and
    back to a kept confirmation (`back_to`: its Show button's data)."""
    rows: list[Row] = [[_button(lang, "btn_top_up", TOP_UP), _button(lang, "btn_subscription", SUBSCRIPTION)]]
    if transfer:
        rows.append([_button(lang, "btn_transfer", TRANSFER)])
    if back_to:
        rows.append([_button(lang, "btn_back_to_confirmation", back_to)])
    rows.append([_button(lang, "btn_promo", PROMO), _button(lang, "btn_ref_invite", INVITE)])
    rows.append([_button(lang, "btn_history", MENU_HISTORY), _button(lang, "btn_menu", MENU_OPEN)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def top_up(lang: str, back_to: str | None) -> InlineKeyboardMarkup:
    rows: list[Row] = [[_button(lang, "btn_back_to_confirmation", back_to)]] if back_to else []
    rows.append([_button(lang, "btn_balance", MENU_BALANCE), _button(lang, "btn_menu", MENU_OPEN)])
    return InlineKeyboardMarkup(inline_keyboard=rows)
