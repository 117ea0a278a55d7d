"""Referrals (issue 18): a new user arriving through a friend's link is linked once (no
self-referral, no relinking, no cycle, the code's format checked), the friend gets the bonus once
at the first paid top-up however the payments arrive, and the Invite friends screen shows the
link, the count and the earnings. Real PostgreSQL, the fake Telegram over HTTP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot import keyboards
from store import accounts, money_in, promo, referrals
from store.fence import fenced
from tests.conftest import Money
from tests.wizard_kit import Chat, rub, t

pytestmark = pytest.mark.timeout(60)

BOT = Money.bot_id
FRIEND, NEWCOMER, OTHER = 8101, 8102, 8103
BONUS = 1000


async def user(money: Money, user_id: int) -> None:
    await accounts.ensure_user(money.db, money.name, money.epoch, BOT, user_id, "ru", 0)


async def link(money: Money, user_id: int, code: str | None) -> referrals.Linked:
    return await referrals.link(money.db, money.name, money.epoch, BOT, user_id, code)


async def pay_stars(money: Money, user_id: int, charge: str, kopecks: int = 5000) -> money_in.Credited:
    """What a Stars payment's handler does: its payment row and the credit in one fenced transaction."""
    async with fenced(money.db, money.name, money.epoch) as conn:
        await conn.execute(
            """INSERT INTO star_payments (bot_id, charge_id, user_id, stars, kopecks) VALUES ($1, $2, $3, 50, $4)
               ON CONFLICT DO NOTHING""", BOT, charge, user_id, kopecks)
        return await money_in.credit_in(conn, BOT, user_id, kopecks, source="stars", key=f"stars:{charge}",
                                        epoch=money.epoch, referral_bonus=BONUS)


async def test_a_new_user_is_linked_once_to_the_owner_of_the_code(money: Money) -> None:
    await user(money, FRIEND)
    await user(money, NEWCOMER)
    code = await referrals.code_of(money.db, BOT, FRIEND)
    assert referrals.CODE.fullmatch(code) and code == await referrals.code_of(money.db, BOT, FRIEND), "made once"
    assert (await link(money, NEWCOMER, code)) == referrals.Linked("linked", FRIEND)
    assert (await link(money, NEWCOMER, code)).outcome == "already_linked", "the same /start again"
    assert await referrals.referrer_of(money.db, BOT, NEWCOMER) == FRIEND
    assert await referrals.stats(money.db, BOT, FRIEND) == referrals.Stats(invited=1, paid=0, earned=0)


async def test_codes_are_personal_and_not_the_user_id(money: Money) -> None:
    for user_id in (FRIEND, NEWCOMER):
        await user(money, user_id)
    first, second = [await referrals.code_of(money.db, BOT, u) for u in (FRIEND, NEWCOMER)]
    assert first != second and str(FRIEND) not in first


async def test_nobody_refers_themselves(money: Money) -> None:
    await user(money, FRIEND)
    code = await referrals.code_of(money.db, BOT, FRIEND)
    assert (await link(money, FRIEND, code)).outcome == "self"
    assert await referrals.referrer_of(money.db, BOT, FRIEND) is None


async def test_a_linked_user_is_never_relinked_to_someone_else(money: Money) -> None:
    for user_id in (FRIEND, NEWCOMER, OTHER):
        await user(money, user_id)
    await link(money, NEWCOMER, await referrals.code_of(money.db, BOT, FRIEND))
    other = await referrals.code_of(money.db, BOT, OTHER)
    assert (await link(money, NEWCOMER, other)) == referrals.Linked("already_linked", FRIEND)
    assert await referrals.referrer_of(money.db, BOT, NEWCOMER) == FRIEND


async def test_two_new_users_cannot_refer_each_other(money: Money) -> None:
    for user_id in (FRIEND, NEWCOMER):
        await user(money, user_id)
    await link(money, NEWCOMER, await referrals.code_of(money.db, BOT, FRIEND))
    assert (await link(money, FRIEND, await referrals.code_of(money.db, BOT, NEWCOMER))).outcome == "cycle"


async def test_malformed_and_unknown_codes_link_nobody(money: Money) -> None:
    await user(money, NEWCOMER)
    for payload in ("ref_", "ref_abc", "ref_abc!def", "ref_" + "a" * 17, "refabcdefgh", "", None, "ref_abc def"):
        assert referrals.parse_payload(payload) is None, payload
    assert referrals.parse_payload("ref_Abc123xyz") == "Abc123xyz"
    assert (await link(money, NEWCOMER, "NoSuchCode1")).outcome == "unknown_code"
    assert (await link(money, NEWCOMER, "bad code!")).outcome == "unknown_code"
    assert await referrals.referrer_of(money.db, BOT, NEWCOMER) is None


async def test_an_old_user_or_one_who_already_paid_is_not_new(money: Money) -> None:
    for user_id in (FRIEND, NEWCOMER, OTHER):
        await user(money, user_id)
    code = await referrals.code_of(money.db, BOT, FRIEND)
    await money.db.require().execute("UPDATE users SET first_seen = now() - interval '1 hour' WHERE user_id = $1",
                                     NEWCOMER)
    assert (await link(money, NEWCOMER, code)).outcome == "not_new"
    await pay_stars(money, OTHER, "charge-other")
    assert (await link(money, OTHER, code)).outcome == "not_new", "money moved before the link"
    assert (await referrals.link(money.db, money.name, money.epoch, BOT, NEWCOMER, code,
                                 new_for=timedelta(hours=2))).outcome == "linked"


async def test_the_welcome_bonus_alone_does_not_make_a_user_old(money: Money) -> None:
    await user(money, FRIEND)
    await accounts.ensure_user(money.db, money.name, money.epoch, BOT, NEWCOMER, "ru", 500)
    assert (await link(money, NEWCOMER, await referrals.code_of(money.db, BOT, FRIEND))).outcome == "linked"


async def test_the_referrer_is_paid_once_at_the_first_paid_top_up(money: Money) -> None:
    for user_id in (FRIEND, NEWCOMER):
        await user(money, user_id)
    await link(money, NEWCOMER, await referrals.code_of(money.db, BOT, FRIEND))
    first = await pay_stars(money, NEWCOMER, "charge-1")
    again = await pay_stars(money, NEWCOMER, "charge-1")  # the same successful_payment delivered again
    second = await pay_stars(money, NEWCOMER, "charge-2")
    assert first.referral == referrals.Rewarded(FRIEND, NEWCOMER, BONUS)
    assert again.referral is None and not again.fresh and second.referral is None
    assert (await accounts.balance(money.db, BOT, FRIEND)).balance == BONUS
    assert await referrals.stats(money.db, BOT, FRIEND) == referrals.Stats(invited=1, paid=1, earned=BONUS)


async def test_concurrent_first_payments_pay_the_referrer_once(money: Money) -> None:
    for user_id in (FRIEND, NEWCOMER):
        await user(money, user_id)
    await link(money, NEWCOMER, await referrals.code_of(money.db, BOT, FRIEND))
    results = await asyncio.gather(*(pay_stars(money, NEWCOMER, f"charge-{i}") for i in range(6)),
                                   *(pay_stars(money, NEWCOMER, "charge-0") for _ in range(4)))
    assert [r.referral for r in results if r.referral is not None] == [referrals.Rewarded(FRIEND, NEWCOMER, BONUS)]
    assert (await accounts.balance(money.db, BOT, FRIEND)).balance == BONUS
    assert (await accounts.balance(money.db, BOT, NEWCOMER)).balance == 6 * 5000


async def test_a_promo_code_pays_no_referrer(money: Money) -> None:
    for user_id in (FRIEND, NEWCOMER):
        await user(money, user_id)
    await link(money, NEWCOMER, await referrals.code_of(money.db, BOT, FRIEND))
    async with fenced(money.db, money.name, money.epoch) as conn:
        await promo.create(conn, BOT, 1, "GIFT", "amount", 300, 5, datetime.now(UTC) + timedelta(days=1))
    done = await promo.redeem(money.db, money.name, money.epoch, BOT, NEWCOMER, "gift")
    assert done.credited is not None and done.credited.referral is None
    assert (await accounts.balance(money.db, BOT, FRIEND)).balance == 0


# --- through the bot ----------------------------------------------------------------------------

async def test_start_with_a_friends_link_links_a_new_user_and_welcomes_them(chat: Chat) -> None:
    friend = Chat(chat.money, chat.fake, chat.bot, user=FRIEND)
    await friend.say("/start")
    await friend.press(keyboards.INVITE)
    code = await referrals.code_of(chat.money.db, BOT, FRIEND)
    link_text = f"https://t.me/trt_fake_bot?start=ref_{code}"
    assert link_text in (friend.last.text or "")
    assert "https://t.me/share/url?url=" in str(friend.last.params["reply_markup"])

    await chat.say(f"/start ref_{code}")
    assert keyboards.MENU_HELP in chat.data(), "the main menu, as /start sends it"
    assert await referrals.referrer_of(chat.money.db, BOT, chat.user) == FRIEND

    await chat.say(f"/start ref_{code}")  # the same link again: welcomed, linked once
    await friend.say("/invite")
    assert t("invite_screen", link=link_text, bonus=rub(chat.settings.referral_bonus), invited=1, paid=0,
             earned=rub(0)) == friend.last.text


async def test_start_with_a_malformed_or_unknown_code_still_welcomes(chat: Chat) -> None:
    for payload in ("ref_!!bad!!", "ref_NoSuchCode1", "ref_"):
        await chat.say(f"/start {payload}")
        assert keyboards.MENU_HELP in chat.data(), payload
    assert await referrals.referrer_of(chat.money.db, BOT, chat.user) is None


async def test_the_invite_button_sits_on_the_balance_screen(chat: Chat) -> None:
    await chat.say("/balance")
    assert keyboards.INVITE in chat.data() and keyboards.PROMO in chat.data()
