"""Wizard buttons of a screen that is no longer the current one (the wizard moved on, ended, or
another began): "this menu is outdated" and the current step, or the menu outside a wizard.
Confirm of a confirmation that already made its job (a double click, a replay after the wizard
ended) says so and makes sure its status message exists. Included after the wizard's routers.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery

from bot import keyboards
from bot.flow import Ctx, Press, Wiz, announce, confirmed_job, show
from bot.services import Services


def router() -> Router:
    router = Router(name="stale")

    @router.callback_query(F.data.startswith(keyboards.STEP))
    async def outdated(query: CallbackQuery, bot: Bot, state: FSMContext, services: Services, fence_epoch: int,
                       wiz: Wiz | None = None) -> None:
        ctx = Ctx.of(query, bot, services, state)
        press = Press.parse(query.data)
        if press is not None and press.action == "ok":
            job = await confirmed_job(ctx, press.nonce)
            if job is not None:
                await announce(ctx, job, fence_epoch)
                await bot.send_message(ctx.chat_id, ctx.t("already_confirmed", id=job.id))
                return
        if wiz is not None:
            await show(ctx, wiz, notice=ctx.t("outdated"), fresh=False, save=False)
            return
        await bot.send_message(ctx.chat_id, ctx.t("outdated"),
                               reply_markup=keyboards.main_menu(ctx.lang, services.catalog.families()))

    return router
