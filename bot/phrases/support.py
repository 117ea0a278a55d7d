"""Texts of support: the user's message to the admins and the admins' answer (bot/routers/support.py)."""

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "btn_support_write": "✍️ Написать в поддержку",
        "btn_support_reply": "↩️ Ответить",
        "support_ask": "Опишите одним сообщением, что случилось; можно приложить скриншот и номер платежа. "
                       "Сообщение получит администратор, ответ придёт сюда.",
        "support_sent": "✅ Сообщение передано в поддержку. Ответ придёт в этот чат.",
        "support_failed": "Не получилось передать сообщение. Пришлите его ещё раз или нажмите «Отмена».",
        "support_nobody": "Поддержка в боте сейчас недоступна. Обратитесь в Telegram: "
                          "t.me/BotFather?start=starsdispute с номером транзакции из «Настройки → Мои звёзды».",
        "support_from": "🆘 Обращение в поддержку\nОт: {name} (id {id}, {username}, язык {language})\n"
                        "Сообщение — ниже. Ответить: кнопка.",
        "support_reply_ask": "Напишите ответ пользователю {id} одним сообщением (можно с фото). /cancel — отмена.",
        "support_answer": "💬 Ответ поддержки:",
        "support_answer_sent": "✅ Ответ отправлен пользователю {id}.",
        "support_answer_failed": "Не удалось отправить ответ пользователю {id} (он мог заблокировать бота). "
                                 "Попробуйте ещё раз или нажмите «Отмена».",
    },
    "en": {
        "btn_support_write": "✍️ Write to support",
        "btn_support_reply": "↩️ Reply",
        "support_ask": "Tell us in one message what happened; you may attach a screenshot and the payment id. "
                       "An administrator gets it and the answer comes here.",
        "support_sent": "✅ Your message went to support. The answer will come to this chat.",
        "support_failed": "Your message could not be passed on. Send it again or press Cancel.",
        "support_nobody": "Support in the bot is not available right now. Contact Telegram: "
                          "t.me/BotFather?start=starsdispute with the transaction id from Settings → My Stars.",
        "support_from": "🆘 A support request\nFrom: {name} (id {id}, {username}, language {language})\n"
                        "The message is below. To answer: the button.",
        "support_reply_ask": "Write the answer to user {id} in one message (a photo is fine). /cancel to cancel.",
        "support_answer": "💬 Support answers:",
        "support_answer_sent": "✅ The answer went to user {id}.",
        "support_answer_failed": "The answer could not be sent to user {id} (they may have blocked the bot). "
                                 "Try again or press Cancel.",
    },
}
