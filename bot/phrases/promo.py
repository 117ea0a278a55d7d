"""Texts of the promo screens (Russian first, English for English users)."""

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "btn_promo": "🎟 Промокод",
        "promo_ask": "Отправьте промокод сообщением.",
        "promo_ask_in_wizard": "Отправьте команду /promo КОД — генерация, которую вы настраиваете, сохранится.",
        "promo_generations": "🎁 Промокод {code} применён: +{count} бесплатных генераций.",
        "promo_unknown": "❌ Промокод {code} не найден. Проверьте, нет ли опечатки.",
        "promo_expired": "⌛ Срок действия промокода {code} истёк.",
        "promo_inactive": "❌ Промокод {code} больше не действует.",
        "promo_used_up": "😔 Промокод {code} уже использовали максимальное число раз.",
        "promo_already": "ℹ️ Вы уже активировали промокод {code}: каждый код можно применить один раз.",
        # the admin's screens
        "btn_promo_new": "➕ Новый промокод",
        "btn_promo_admin_back": "⬅️ Админка",
        "promo_admin_title": "🎟 Промокоды",
        "promo_admin_none": "Промокодов пока нет.",
        "promo_admin_line": "• {code}: {value}, использований {uses}/{max_uses}, до {until} — {status}",
        "promo_admin_gens": "{count} генераций",
        "promo_status_active": "активен",
        "promo_status_disabled": "отключён",
        "promo_status_expired": "истёк",
        "promo_status_used_up": "исчерпан",
        "promo_admin_off": "🚫 Отключить {code}",
        "promo_admin_ask": "Новый промокод: отправьте одной строкой\n"
                           "КОД rub СУММА ИСПОЛЬЗОВАНИЙ ДНЕЙ — деньги на баланс (сумма в рублях)\n"
                           "КОД gen ЧИСЛО ИСПОЛЬЗОВАНИЙ ДНЕЙ — бесплатные генерации\n\n"
                           "Например: SPRING rub 100 50 30 или FREE3 gen 3 100 7\n"
                           "Код: 3–32 латинские буквы, цифры, _ или -. /cancel — отмена.",
        "promo_admin_bad": "Не понял. {why}\nФормат: КОД rub|gen ЗНАЧЕНИЕ ИСПОЛЬЗОВАНИЙ ДНЕЙ",
        "promo_admin_bad_code": "Код — 3–32 латинские буквы, цифры, _ или -.",
        "promo_admin_bad_kind": "Вид — rub (деньги) или gen (генерации).",
        "promo_admin_bad_number": "Значение, использования и дни — положительные числа (дней не больше 3650).",
        "promo_admin_taken": "Промокод {code} уже существует.",
        "promo_admin_created": "✅ Промокод {code} создан: {value}, {max_uses} использований, до {until}.",
        "promo_admin_disabled": "🚫 Промокод {code} отключён.",
        "promo_admin_unknown": "Промокод не найден.",
    },
    "en": {
        "btn_promo": "🎟 Promo code",
        "promo_ask": "Send the promo code in a message.",
        "promo_ask_in_wizard": "Send the command /promo CODE: the generation you are setting up is kept.",
        "promo_generations": "🎁 Promo code {code} applied: +{count} free generations.",
        "promo_unknown": "❌ Promo code {code} was not found. Check it for typos.",
        "promo_expired": "⌛ Promo code {code} has expired.",
        "promo_inactive": "❌ Promo code {code} is no longer valid.",
        "promo_used_up": "😔 Promo code {code} has been used the maximum number of times.",
        "promo_already": "ℹ️ You have already used promo code {code}: each code works once per person.",
        "btn_promo_new": "➕ New promo code",
        "btn_promo_admin_back": "⬅️ Admin",
        "promo_admin_title": "🎟 Promo codes",
        "promo_admin_none": "No promo codes yet.",
        "promo_admin_line": "• {code}: {value}, used {uses}/{max_uses}, until {until} — {status}",
        "promo_admin_gens": "{count} generations",
        "promo_status_active": "active",
        "promo_status_disabled": "disabled",
        "promo_status_expired": "expired",
        "promo_status_used_up": "used up",
        "promo_admin_off": "🚫 Disable {code}",
        "promo_admin_ask": "New promo code: send one line\n"
                           "CODE rub AMOUNT USES DAYS — money to the balance (amount in rubles)\n"
                           "CODE gen COUNT USES DAYS — free generations\n\n"
                           "For example: SPRING rub 100 50 30 or FREE3 gen 3 100 7\n"
                           "Code: 3-32 Latin letters, digits, _ or -. /cancel to stop.",
        "promo_admin_bad": "I did not get that. {why}\nFormat: CODE rub|gen VALUE USES DAYS",
        "promo_admin_bad_code": "A code is 3-32 Latin letters, digits, _ or -.",
        "promo_admin_bad_kind": "The kind is rub (money) or gen (generations).",
        "promo_admin_bad_number": "Value, uses and days are positive numbers (at most 3650 days).",
        "promo_admin_taken": "Promo code {code} already exists.",
        "promo_admin_created": "✅ Promo code {code} created: {value}, {max_uses} uses, until {until}.",
        "promo_admin_disabled": "🚫 Promo code {code} disabled.",
        "promo_admin_unknown": "Promo code not found.",
    },
}
