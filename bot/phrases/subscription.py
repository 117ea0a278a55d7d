"""Texts of the subscription screens (Russian first, English for English users)."""

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "btn_subscription": "⭐ Подписка",
        "sub_header": "⭐ Подписка на 30 дней за Telegram Stars. Продлевается сама, отменить можно в любой момент.",
        "sub_none": "Сейчас у вас нет подписки.",
        "sub_plan_line": "• {title} — {stars} ⭐ за 30 дней: {gives}",
        "sub_gives_credit": "{amount} на баланс каждый месяц",
        "sub_gives_daily": "{count} в день бесплатно: {model}",
        "sub_gives_discount": "скидка {discount}% на платные генерации",
        "sub_current": "Ваша подписка: {title}, действует до {until}.",
        "sub_renews": ("Продлится автоматически. Отменить продление — кнопкой ниже или в Telegram: "
                       "Настройки → Мои звёзды."),
        "sub_canceled": "Продление отменено: подписка закончится {until}.",
        "sub_failed": "Не удалось списать оплату за продление: подписка закончится {until}.",
        "sub_allowance_left": "Сегодня осталось бесплатно: {model} — {left} из {count}.",
        "sub_grants_left": "🎁 Бесплатных генераций по промокоду: {left}.",
        "sub_btn_buy": "Оформить «{title}» — {stars} ⭐",
        "sub_btn_cancel": "Отменить продление",
        "sub_btn_resume": "Возобновить продление",
        "sub_btn_pay": "Оплатить {stars} ⭐",
        "sub_invoice_ready": ("Подписка «{title}»: {stars} ⭐ каждые 30 дней. Нажмите «Оплатить».\n"
                              "Нет звёзд? Купите их в мобильном Telegram (Настройки → Мои звёзды) или у @PremiumBot: "
                              "в Telegram Desktop оплата без звёзд на балансе не открывается."),
        "sub_unknown_plan": "Такого тарифа больше нет. Вот актуальные:",
        "sub_already": ("У вас уже есть подписка, которая продлевается. Чтобы сменить тариф, сначала отмените "
                        "продление."),
        "sub_link_failed": "Не получилось создать счёт, попробуйте ещё раз чуть позже.",
        "sub_active_until": "⭐ Подписка «{title}» активна до {until}.",
        "sub_paid_unknown": ("Оплата получена, но я не нашёл вашего заказа подписки. Напишите /paysupport — "
                             "разберёмся или вернём звёзды."),
        "sub_cancel_done": "Продление отменено. Подписка действует до {until}, больше списаний не будет.",
        "sub_resume_done": "Продление возобновлено: следующее списание {until}.",
        "sub_cancel_failed": "Telegram не принял отмену. Попробуйте ещё раз или отмените в Настройки → Мои звёзды.",
        "sub_state_canceled": "Продление подписки «{title}» отменено. Она действует до {until}.",
        "sub_state_active": "Продление подписки «{title}» снова включено.",
        "sub_state_failed": ("Не удалось списать звёзды за продление подписки «{title}». Пополните звёзды и "
                             "оформите подписку снова: /subscribe"),
        "confirm_plan": "⭐ По подписке: бесплатно (сегодня осталось {left}). Без подписки: {price}",
        "confirm_grant": "🎁 Бесплатно по промокоду (осталось {left}). Обычная цена: {price}",
        "confirm_discount": "💰 Цена: {price} (скидка {discount}% по подписке, без неё {full})",
        "paid_plan": "по подписке",
        "paid_grant": "по промокоду",
    },
    "en": {
        "btn_subscription": "⭐ Subscription",
        "sub_header": "⭐ A 30-day subscription for Telegram Stars. It renews by itself; cancel any time.",
        "sub_none": "You have no subscription now.",
        "sub_plan_line": "• {title}: {stars} ⭐ per 30 days: {gives}",
        "sub_gives_credit": "{amount} on your balance every month",
        "sub_gives_daily": "{count} a day free: {model}",
        "sub_gives_discount": "{discount}% off paid generations",
        "sub_current": "Your subscription: {title}, valid until {until}.",
        "sub_renews": "It renews automatically. To cancel renewal, use the button below or Telegram: "
                      "Settings → My Stars.",
        "sub_canceled": "Renewal canceled: the subscription ends on {until}.",
        "sub_failed": "The renewal payment failed: the subscription ends on {until}.",
        "sub_allowance_left": "Free today: {model}: {left} of {count} left.",
        "sub_grants_left": "🎁 Free generations from promo codes: {left}.",
        "sub_btn_buy": "Get {title}: {stars} ⭐",
        "sub_btn_cancel": "Cancel renewal",
        "sub_btn_resume": "Resume renewal",
        "sub_btn_pay": "Pay {stars} ⭐",
        "sub_invoice_ready": ("{title} subscription: {stars} ⭐ every 30 days. Press Pay.\n"
                              "No Stars? Buy them in the mobile Telegram app (Settings → My Stars) or from "
                              "@PremiumBot: Telegram Desktop cannot open the payment without Stars on the balance."),
        "sub_unknown_plan": "That plan is no longer offered. Here are the current ones:",
        "sub_already": "You already have a renewing subscription. To change plans, cancel its renewal first.",
        "sub_link_failed": "Could not create the invoice; please try again a little later.",
        "sub_active_until": "⭐ {title} subscription active until {until}.",
        "sub_paid_unknown": ("Payment received, but I could not find your subscription order. Send /paysupport: "
                             "we will sort it out or return your Stars."),
        "sub_cancel_done": "Renewal canceled. The subscription is valid until {until}; nothing more will be charged.",
        "sub_resume_done": "Renewal resumed: the next charge is on {until}.",
        "sub_cancel_failed": "Telegram did not accept the cancel. Try again, or cancel in Settings → My Stars.",
        "sub_state_canceled": "Renewal of your {title} subscription is canceled. It is valid until {until}.",
        "sub_state_active": "Renewal of your {title} subscription is back on.",
        "sub_state_failed": ("The Stars for renewing your {title} subscription could not be charged. Top up your "
                             "Stars and subscribe again: /subscribe"),
        "confirm_plan": "⭐ By subscription: free ({left} left today). Without it: {price}",
        "confirm_grant": "🎁 Free with a promo code ({left} left). Usual price: {price}",
        "confirm_discount": "💰 Price: {price} ({discount}% off by subscription, {full} without it)",
        "paid_plan": "by subscription",
        "paid_grant": "promo code",
    },
}
