"""Payments: invoices (``sendInvoice``, Telegram Stars) and the pre-checkout query the bot must answer.

Why it exists: the bot sells generations for Stars; Telegram is strict about invoices (title,
description and payload lengths, one price for XTR, no provider token) and lets a pre-checkout
query be answered only once, so the fake checks the same things.
"""

from __future__ import annotations

from typing import Any

from fakes.telegram.messages import MessageMethods
from fakes.telegram.wire import Call, bad


def _is_price(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("amount"), int) and bool(item.get("label"))


def _invoice(call: Call) -> tuple[str, str, str, int]:
    """An invoice's title, description, currency and total, checked as Telegram checks them
    (sendInvoice and createInvoiceLink alike)."""
    for name in ("title", "description", "payload", "currency"):
        if not call.params.get(name):
            raise bad(f"{name} is empty" if name != "payload" else "INVOICE_PAYLOAD_INVALID")
    title, description = str(call.params["title"]), str(call.params["description"])
    if not 1 <= len(title) <= 32:
        raise bad("INVOICE_TITLE_INVALID" if title else "title is empty")
    if not 1 <= len(description) <= 255:
        raise bad("INVOICE_DESCRIPTION_INVALID")
    if not 1 <= len(str(call.params["payload"]).encode()) <= 128:
        raise bad("INVOICE_PAYLOAD_INVALID")
    prices = call.params.get("prices")
    if not isinstance(prices, list) or not prices or not all(_is_price(item) for item in prices):
        raise bad("can't parse prices JSON object")
    currency = str(call.params["currency"])
    if currency == "XTR" and (len(prices) != 1 or call.params.get("provider_token")):
        raise bad("STARS_INVOICE_INVALID")
    total = sum(int(p["amount"]) for p in prices)
    if total <= 0:
        raise bad("CURRENCY_TOTAL_AMOUNT_INVALID")
    return title, description, currency, total


class PaymentMethods(MessageMethods):
    """``sendInvoice`` (an invoice message in the chat) and ``answerPreCheckoutQuery``."""

    async def _send_invoice(self, call: Call) -> dict[str, Any]:
        chat = self._target_chat(call)
        title, description, currency, total = _invoice(call)
        start_parameter = call.params.get("start_parameter")
        invoice = {
            "title": title,
            "description": description,
            "start_parameter": start_parameter if isinstance(start_parameter, str) else "",
            "currency": currency,
            "total_amount": total,
        }
        return self._new_message(call, chat, {"invoice": invoice})

    async def _create_invoice_link(self, call: Call) -> str:
        """A ``https://t.me/$...`` link to an invoice (the only way to sell a subscription): the same
        checks as sendInvoice, and for ``subscription_period`` Telegram's rules (XTR only, exactly
        2592000 seconds, a price of at most 10000 Stars). Kept in ``invoice_links`` by link."""
        title, description, currency, total = _invoice(call)
        period = call.params.get("subscription_period")
        if period is not None:
            if currency != "XTR" or period != 2592000:
                raise bad("SUBSCRIPTION_PERIOD_INVALID")
            if total > 10000:
                raise bad("STARS_INVOICE_INVALID")
        links: dict[str, dict[str, Any]] = self.__dict__.setdefault("invoice_links", {})
        link = f"https://t.me/$fakeInvoice{len(links) + 1:06d}"
        links[link] = {"title": title, "description": description, "payload": str(call.params["payload"]),
                       "currency": currency, "total_amount": total, "subscription_period": period}
        return link

    async def _edit_user_star_subscription(self, call: Call) -> bool:
        """Cancel (is_canceled=true) or re-enable a user's subscription; kept in
        ``star_subscriptions`` as (user_id, charge id) -> canceled."""
        user_id = self._int_param(call, "user_id", "USER_ID_INVALID")
        charge = call.params.get("telegram_payment_charge_id")
        if not isinstance(charge, str) or not charge:
            raise bad("CHARGE_ID_INVALID")
        canceled = call.params.get("is_canceled")
        if not isinstance(canceled, bool):
            raise bad('parameter "is_canceled" is required')
        subs: dict[tuple[int, str], bool] = self.__dict__.setdefault("star_subscriptions", {})
        subs[(user_id, charge)] = canceled
        return True

    async def _refund_star_payment(self, call: Call) -> bool:
        """Return a Stars payment to its user, once: Telegram answers CHARGE_ALREADY_REFUNDED after
        that. Kept in ``star_refunds`` as (user_id, charge id); a refusal is a fault to inject."""
        user_id = self._int_param(call, "user_id", "USER_ID_INVALID")
        charge = call.params.get("telegram_payment_charge_id")
        if not isinstance(charge, str) or not charge:
            raise bad("CHARGE_ID_EMPTY")
        refunds: set[tuple[int, str]] = self.__dict__.setdefault("star_refunds", set())
        if (user_id, charge) in refunds:
            raise bad("CHARGE_ALREADY_REFUNDED")
        refunds.add((user_id, charge))
        return True

    async def _answer_pre_checkout_query(self, call: Call) -> bool:
        query_id = call.params.get("pre_checkout_query_id")
        if not query_id:
            raise bad("QUERY_ID_INVALID")
        ok = call.params.get("ok")
        if not isinstance(ok, bool):
            raise bad('parameter "ok" is required')
        if not ok and not call.params.get("error_message"):
            raise bad("ERROR_MESSAGE_EMPTY")
        self._answer_once(f"pre_checkout:{query_id}")
        return True
