"""What follows every credit, whatever brought the money (store/money_in.py): the user is told
the amount and their new balance, a confirmation they were on when the balance was short is
offered again (its own Confirm, so one tap runs it), and a referrer this credit paid is told.

Called after the credit's transaction committed. Telegram may refuse or time out: the money is
in either way, so a failure here is logged (and a 403 marks the user as having blocked the bot),
never raised into the handler, which would run the update again for nothing.
"""

from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError, TelegramNetworkError
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.types import InlineKeyboardMarkup

from bot import keyboards
from bot.flow import CONFIRM, Ctx, Wiz, Wizard, show
from bot.services import Services
from bot.texts import money, t
from store import accounts, money_in
from store.money_in import Credited
from telemetry import logs

log = logs.get("bot")


async def language(services: Services, user_id: int) -> str:
    """The language the user chose with /language, else the one Telegram gave at first contact
    (Russian for one never seen)."""
    user = await accounts.get_user(services.database, services.settings.bot_id, user_id)
    return "en" if user is not None and (user.speaks or "").lower().startswith("en") else "ru"


def user_state(bot: Bot, storage: BaseStorage, user_id: int) -> FSMContext:
    """The user's FSM in their private chat with the bot (where the wizard runs)."""
    return FSMContext(storage=storage, key=StorageKey(bot_id=bot.id, chat_id=user_id, user_id=user_id))


async def kept_confirmation(state: FSMContext) -> Wiz | None:
    """The wizard's data when the user is at a confirmation (kept while they top up), else None."""
    if await state.get_state() != Wizard.step.state:
        return None
    wiz = Wiz.load(await state.get_data())
    return wiz if wiz is not None and wiz.at == CONFIRM else None


async def after_credit(bot: Bot, services: Services, storage: BaseStorage, credited: Credited, *,
                       reason: str | None = None, lang: str | None = None) -> None:
    """Tell `credited.user_id` about the credit (with `reason`, shown as given: an admin's words),
    offer their kept confirmation again, and tell the referrer a fresh referral bonus paid."""
    money_in.committed(credited)
    user_id = credited.user_id
    lang = lang or await language(services, user_id)
    key = "credited_" + credited.source if credited.amount > 0 else "debited_" + credited.source
    text = t(lang, key, amount=money(lang, abs(credited.amount)), balance=money(lang, credited.balance.available))
    if reason:
        text += "\n" + t(lang, "credited_reason", reason=reason)
    state = user_state(bot, storage, user_id)
    wiz = await kept_confirmation(state)
    sent = await _send(bot, services, user_id, text, None if wiz is not None else keyboards.menu_button(lang))
    if sent and wiz is not None and credited.amount > 0 and wiz.model in services.catalog:
        ctx = Ctx(bot, user_id, user_id, lang, services, state)
        try:
            await show(ctx, wiz, notice=t(lang, "confirmation_again"), fresh=False, save=False)
        except (TelegramAPIError, TelegramNetworkError) as exc:
            log.info("confirmation_again_failed", extra={"user_id": user_id, "error_text": str(exc)[:200]})
    if credited.referral is not None:
        referrer = credited.referral.referrer_id
        their = await language(services, referrer)
        await _send(bot, services, referrer,
                    t(their, "referral_paid", amount=money(their, credited.referral.amount)),
                    keyboards.menu_button(their))


async def _send(bot: Bot, services: Services, user_id: int, text: str,
                markup: InlineKeyboardMarkup | None) -> bool:
    try:
        await bot.send_message(user_id, text, reply_markup=markup)
        return True
    except TelegramForbiddenError:
        await accounts.set_blocked(services.database, services.settings.bot_id, user_id, True)
    except (TelegramAPIError, TelegramNetworkError) as exc:
        log.info("credit_notice_failed", extra={"user_id": user_id, "error_text": str(exc)[:200]})
    return False
