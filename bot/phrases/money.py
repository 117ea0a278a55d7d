"""Texts of what follows every credit (bot/money_in.py) and of a blocked user."""

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "credited_stars": "✅ Оплата получена: +{amount}. Баланс: {balance}.",
        "credited_subscription": "✅ Подписка: +{amount} на баланс. Баланс: {balance}.",
        "credited_transfer": "✅ Перевод подтверждён: +{amount}. Баланс: {balance}.",
        "credited_promo": "🎁 Промокод применён: +{amount}. Баланс: {balance}.",
        "credited_admin": "✅ Администратор пополнил баланс: +{amount}. Баланс: {balance}.",
        "debited_admin": "ℹ️ Администратор списал с баланса {amount}. Баланс: {balance}.",
        "credited_referral": "🎉 Бонус за приглашённого друга: +{amount}. Баланс: {balance}.",
        "credited_reason": "Причина: {reason}",
        "confirmation_again": "Денег теперь хватает — подтвердите генерацию:",
        "referral_paid": "🎉 Ваш друг совершил первую оплату — вам начислен бонус {amount}.",
        "banned": "Доступ к боту для вашего аккаунта ограничен. Если это ошибка, напишите в поддержку: /paysupport",
    },
    "en": {
        "credited_stars": "✅ Payment received: +{amount}. Balance: {balance}.",
        "credited_subscription": "✅ Subscription: +{amount} to your balance. Balance: {balance}.",
        "credited_transfer": "✅ Transfer confirmed: +{amount}. Balance: {balance}.",
        "credited_promo": "🎁 Promo code applied: +{amount}. Balance: {balance}.",
        "credited_admin": "✅ An administrator topped up your balance: +{amount}. Balance: {balance}.",
        "debited_admin": "ℹ️ An administrator deducted {amount} from your balance. Balance: {balance}.",
        "credited_referral": "🎉 Bonus for a friend you invited: +{amount}. Balance: {balance}.",
        "credited_reason": "Reason: {reason}",
        "confirmation_again": "You now have enough — confirm the generation:",
        "referral_paid": "🎉 A friend you invited made their first payment: you got a bonus of {amount}.",
        "banned": "Access to the bot is restricted for your account. If this is a mistake, write to support: "
                  "/paysupport",
    },
}
