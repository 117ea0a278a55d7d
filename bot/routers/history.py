"""My generations: the user's jobs (newest first, paginated, state, model, price), one job (its
parameters, the result sent again by its Telegram file_id, never generated again), and Repeat:
the same parameters through the normal confirmation. Repeat is also the "gen:again:<job>" button
the jobs actor puts under every result.

An action on a result (extend, 1080p: bot/routers/actions.py) is a child job: its entry names the
result it acted on, the parent's entry lists its follow-ups and offers its actions again, and
Repeat of a child is the same action on the same parent (while KIE still keeps the parent).
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot import actions_kit, keyboards
from bot.flow import Ctx, acting, repeat_values, start, value_lines
from bot.services import Services
from catalog.actions import Action
from catalog.model import Model
from store import jobs

PAGE = 5
ICONS = {"created": "⏳", "submitting": "⏳", "submitted": "⏳", "running": "⚙️", "succeeded": "✅", "failed": "❌",
         "timed_out": "⌛"}
STATE_KEYS = {"created": "state_queued", "submitting": "state_queued", "submitted": "state_queued",
              "running": "state_running", "succeeded": "state_succeeded", "failed": "state_failed",
              "timed_out": "state_timed_out"}


def paid(ctx: Ctx, job: jobs.Job) -> str:
    if job.paid_with == "free":
        return ctx.t("paid_free")
    if job.paid_with == "admin":
        return ctx.t("paid_admin")
    if job.paid_with in ("plan", "grant"):  # by subscription, by promo code (bot/phrases/subscription.py)
        return ctx.t("paid_" + job.paid_with)
    return ctx.money(job.price)


def title_of(ctx: Ctx, model_id: str) -> str:
    catalog = ctx.services.catalog
    return catalog.model(model_id).title.get(ctx.lang) if model_id in catalog else model_id


def number_of(ctx: Ctx, job: jobs.Job) -> str:
    """The generation as its user counts them ("№2"), not the global id (buttons keep the id)."""
    return ctx.t("gen_no", n=job.user_number)


def when(ctx: Ctx, job: jobs.Job) -> str:
    return job.created_at.astimezone(ctx.services.settings.zone).strftime("%d.%m.%Y %H:%M")


async def send_list(ctx: Ctx, page: int) -> None:
    settings = ctx.services.settings
    found = await jobs.user_jobs(ctx.services.database, settings.bot_id, ctx.user_id, page * PAGE, PAGE + 1)
    has_next, found = len(found) > PAGE, found[:PAGE]
    if not found:
        await ctx.bot.send_message(ctx.chat_id, ctx.t("history_empty"),
                                   reply_markup=keyboards.main_menu(ctx.lang, ctx.services.catalog.families()))
        return
    lines = [ctx.t("history_header")]
    items = []
    parents = {p: await jobs.job(ctx.services.database, p) for p in {j.parent_id for j in found} if p is not None}
    for job in found:
        icon, title = ICONS.get(job.state, "•"), title_of(ctx, job.model)
        state = ctx.t(STATE_KEYS.get(job.state, "state_queued"))
        parent = parents.get(job.parent_id) if job.parent_id is not None else None
        on = f" {ctx.t('history_acted_on', n=parent.user_number)}" if parent is not None else ""
        lines.append(f"{icon} {number_of(ctx, job)} · {when(ctx, job)} · {title}{on} · {state} · {paid(ctx, job)}")
        items.append((f"{icon} {number_of(ctx, job)} {title} · {paid(ctx, job)}", job.id))
    await ctx.bot.send_message(ctx.chat_id, "\n".join(lines),
                               reply_markup=keyboards.history_list(ctx.lang, items, page, has_next))


async def owned(ctx: Ctx, job_id: int | None) -> jobs.Job | None:
    """The job, if it is this user's (a button's id is never trusted)."""
    if job_id is None:
        return None
    job = await jobs.job(ctx.services.database, job_id)
    if job is None or job.bot_id != ctx.services.settings.bot_id or job.user_id != ctx.user_id:
        return None
    return job


async def resend(ctx: Ctx, job: jobs.Job) -> None:
    """The delivered result again, by the file_ids the jobs actor recorded (each as it was sent:
    photo, video, audio or document; a photo's original file too), never generated again."""
    caption: str | None = f"{number_of(ctx, job)} {title_of(ctx, job.model)}"
    recorded = (job.result or {}).get("sent")
    entries = [e for e in recorded if isinstance(e, dict) and isinstance(e.get("file_id"), str)] \
        if isinstance(recorded, list) else []
    if not entries and job.result_file_id is not None:
        catalog = ctx.services.catalog
        entries = [{"as": catalog.model(job.model).output if job.model in catalog else "document",
                    "file_id": job.result_file_id}]
    for entry in entries:
        await send_file(ctx, str(entry.get("as")), entry["file_id"], caption)
        if entry.get("as") == "photo" and isinstance(entry.get("document_file_id"), str):
            await ctx.bot.send_document(ctx.chat_id, entry["document_file_id"])
        caption = None
    if not entries:  # a text result (lyrics): kept in the result itself, there is no file to send
        kept = (job.result or {}).get("texts")
        for words in kept if isinstance(kept, list) else []:
            if not isinstance(words, dict) or not isinstance(words.get("text"), str):
                continue
            title = words.get("title") if isinstance(words.get("title"), str) else ""
            body = "\n\n".join(p for p in (caption, f"📝 {title}" if title else "", words["text"].strip()) if p)
            await ctx.bot.send_message(ctx.chat_id, body[:4096])  # Telegram's limit for a message's text
            caption = None


async def send_file(ctx: Ctx, kind: str, file_id: str, caption: str | None) -> None:
    """A file by its file_id as `kind`; as a document when Telegram refuses that kind for it."""
    bot, chat = ctx.bot, ctx.chat_id
    try:
        if kind == "photo":
            await bot.send_photo(chat, file_id, caption=caption)
        elif kind == "video":
            await bot.send_video(chat, file_id, caption=caption)
        elif kind == "audio":
            await bot.send_audio(chat, file_id, caption=caption)
        else:
            await bot.send_document(chat, file_id, caption=caption)
        return
    except TelegramBadRequest:
        if kind not in ("photo", "video", "audio"):
            raise
    await bot.send_document(chat, file_id, caption=caption)


def result_links(job: jobs.Job) -> list[str]:
    """The result's URLs when it went as a link (too large for Telegram)."""
    result = job.result or {}
    recorded = result.get("sent")
    linked = isinstance(recorded, list) and any(isinstance(e, dict) and e.get("as") == "link" for e in recorded)
    urls = result.get("urls")
    return [u for u in urls if isinstance(u, str)] if linked and isinstance(urls, list) else []


async def again_on_parent(ctx: Ctx, model: Model, job: jobs.Job) -> None:
    """Repeat of a child job: the same action on the same parent (its fields as the child sent
    them), while the parent is still the user's, delivered and kept by KIE."""
    parent = await owned(ctx, job.parent_id)
    preset = actions_kit.kept(model, job.input)
    if parent is None:
        key = "job_not_found"
    elif not actions_kit.actable(parent) or len(preset) != len(actions_kit.parent_fields(model)):
        key = "act_gone"
    elif actions_kit.expired(parent, datetime.now(UTC)):
        key = "act_expired"
    else:
        await start(ctx, model, repeat_values(model, job.input), preset=preset, parent=parent.id)
        return
    await ctx.bot.send_message(ctx.chat_id, ctx.t(key), reply_markup=keyboards.menu_button(ctx.lang))


def number(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) < 19 else None


def router() -> Router:
    router = Router(name="history")

    @router.message(Command("history"))
    async def history(message: Message, bot: Bot, state: FSMContext, services: Services) -> None:
        await send_list(Ctx.of(message, bot, services, state), 0)

    @router.callback_query(F.data == keyboards.MENU_HISTORY)
    async def history_button(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        await send_list(Ctx.of(query, bot, services, state), 0)

    @router.callback_query(F.data.startswith(keyboards.HISTORY))
    async def history_page(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        page = number((query.data or "")[len(keyboards.HISTORY):]) or 0
        await send_list(Ctx.of(query, bot, services, state), min(page, 100_000))

    @router.callback_query(F.data.startswith(keyboards.JOB))
    async def open_job(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        ctx = Ctx.of(query, bot, services, state)
        job_text, _, page_text = (query.data or "")[len(keyboards.JOB):].partition(":")
        job = await owned(ctx, number(job_text))
        if job is None:
            await bot.send_message(ctx.chat_id, ctx.t("job_not_found"), reply_markup=keyboards.menu_button(ctx.lang))
            return
        if job.state == "succeeded":
            await resend(ctx, job)
        lines = [f"{ICONS.get(job.state, '•')} {number_of(ctx, job)} {title_of(ctx, job.model)}"]
        if (on := await acting(ctx, job.model, job.parent_id, job.input)) is not None:
            lines.append(on)
        lines += [ctx.t("job_when", when=when(ctx, job)),
                 ctx.t("job_state", state=ctx.t(STATE_KEYS.get(job.state, "state_queued"))),
                 ctx.t("job_price", price=paid(ctx, job))]
        if job.model in services.catalog:
            lines += value_lines(ctx, services.catalog.model(job.model), job.input)
        if job.state in ("failed", "timed_out") and job.paid_with != "admin":
            lines.append(ctx.t("job_released" if job.paid_with == "money" else "job_not_counted"))
        elif job.state == "succeeded":
            links = result_links(job)
            if links:
                lines.append(ctx.t("job_links", links="\n".join(links)))
            elif job.delivered_at is None:
                lines.append(ctx.t("job_result_pending"))
        children = await jobs.children(services.database, job.id)
        if children:
            lines.append(ctx.t("history_children", items=", ".join(
                f"{number_of(ctx, c)} {title_of(ctx, c.model)}" for c in children)))
        offers: tuple[Action, ...] = ()
        now = datetime.now(UTC)
        if job.model in services.catalog and actions_kit.actable(job) and not actions_kit.expired(job, now):
            offers = actions_kit.offered(services.catalog.model(job.model), job.input)
        await bot.send_message(ctx.chat_id, "\n".join(lines),
                               reply_markup=keyboards.history_job(ctx.lang, job.id, number(page_text) or 0,
                                                                  repeat=job.model in services.catalog,
                                                                  actions=offers, files=actions_kit.files(job)))

    @router.callback_query(F.data.startswith(keyboards.AGAIN))
    async def again(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        ctx = Ctx.of(query, bot, services, state)
        job = await owned(ctx, number((query.data or "")[len(keyboards.AGAIN):]))
        if job is None or job.model not in services.catalog:
            key = "job_not_found" if job is None else "model_gone"
            await bot.send_message(ctx.chat_id, ctx.t(key), reply_markup=keyboards.menu_button(ctx.lang))
            return
        model = services.catalog.model(job.model)
        if job.parent_id is None:
            await start(ctx, model, repeat_values(model, job.input))
            return
        await again_on_parent(ctx, model, job)

    return router
