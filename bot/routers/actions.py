"""Actions on a result: the follow-ups its model offers (catalog Model.actions: Suno's extend and
another version, Veo's extend, 1080p and 4K, Runway's extend) as buttons under the delivered
result and in history (act:<job id>:<action id>[:<item index>], bot/keyboards.py).

A press is checked before anything is shown: the parent is the user's own job (a button's data is
never trusted), it succeeded and was delivered, it is younger than the 14 days KIE keeps results
(else a plain message says so), and its model still offers the action. Then the child model's
wizard starts with the fields taken from the parent preset (bot/actions_kit.py) and Wiz.parent
set, so the user answers only what the child asks (Veo's extend: the prompt; 1080p: nothing, so
the confirmation comes at once with its own price) and confirms through the same confirmation:
one job per confirmation, its parent_id the result it acts on (store.jobs.confirm checks again
that the parent is the user's).
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiogram import Bot, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery

from bot import actions_kit, keyboards
from bot.flow import Ctx, asked, start
from bot.routers.history import number, owned
from bot.services import Services
from catalog.model import Model
from store import jobs
from telemetry import logs

log = logs.get("bot")


def parse(data: str | None) -> tuple[int, str, int | None] | None:
    """act:<job id>:<action id>[:<item index>] as (job id, action id, item), or None."""
    if not data or not data.startswith(keyboards.ACTION):
        return None
    parts = data[len(keyboards.ACTION):].split(":")
    if len(parts) not in (2, 3) or not parts[1]:
        return None
    job_id = number(parts[0])
    item = number(parts[2]) if len(parts) == 3 else None
    if job_id is None or (len(parts) == 3 and item is None):
        return None
    return job_id, parts[1], item


async def tell(ctx: Ctx, key: str) -> None:
    await ctx.bot.send_message(ctx.chat_id, ctx.t(key), reply_markup=keyboards.menu_button(ctx.lang))


def child_of(ctx: Ctx, parent: jobs.Job, action_id: str, item: int | None) -> Model | None:
    """The model the parent's model offers as `action_id` (for file `item` when per file), if it
    still does and the catalog has it."""
    catalog = ctx.services.catalog
    if parent.model not in catalog:
        return None
    offers = actions_kit.offered(catalog.model(parent.model), parent.input)
    action = next((a for a in offers if a.id == action_id), None)
    if action is None or action.model not in catalog:
        return None
    if action.per_item and (item is None or item >= actions_kit.files(parent)):
        return None
    if not action.per_item and item not in (None, 0):
        return None
    return catalog.model(action.model)


async def made_before(ctx: Ctx, child: Model, parent: jobs.Job, preset: dict[str, object]) -> str | None:
    """A word above the confirmation when this very follow-up (one that asks nothing: a 1080p or
    4K version) was made of this result already: a second press is more likely a slip than a wish
    to pay again, so the user is told which generation has it (they may still confirm)."""
    if asked(child):
        return None
    for earlier in await jobs.children(ctx.services.database, parent.id):
        if earlier.model == child.id and earlier.state in ("created", "submitting", "submitted", "running",
                                                            "succeeded") \
                and all(earlier.input.get(k) == v for k, v in preset.items()):
            return ctx.t("act_made_before", n=earlier.user_number)
    return None


def router() -> Router:
    router = Router(name="actions")

    @router.callback_query(F.data.startswith(keyboards.ACTION))
    async def act(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services) -> None:
        ctx = Ctx.of(query, bot, services, state)
        ctx.over = None  # the wizard comes under the result, which keeps its buttons (another action, Repeat)
        parsed = parse(query.data)
        parent = await owned(ctx, parsed[0]) if parsed is not None else None
        if parsed is None or parent is None:
            await tell(ctx, "job_not_found")
            return
        _, action_id, item = parsed
        child = child_of(ctx, parent, action_id, item)
        if child is None:
            await tell(ctx, "act_gone")
            return
        if not actions_kit.actable(parent):  # still running or being delivered; a failed one has no result
            await tell(ctx, "act_gone" if parent.state in ("failed", "timed_out") else "act_not_ready")
            return
        if actions_kit.expired(parent, datetime.now(UTC)):
            await tell(ctx, "act_expired")
            return
        try:
            preset = actions_kit.parent_values(child, parent, item)
        except actions_kit.Unavailable as exc:
            log.warning("action_unavailable", extra={"job_id": parent.id, "action": action_id, "why": str(exc)})
            await tell(ctx, "act_gone")
            return
        await start(ctx, child, preset=preset, parent=parent.id, notice=await made_before(ctx, child, parent, preset))

    return router
