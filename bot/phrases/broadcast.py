"""Texts of the broadcast screens (Russian first, English for English users)."""

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "bc_prompt": "📣 Рассылка\n\nПришлите сообщение для рассылки: текст или фото с подписью. "
                     "Форматирование сохранится. Перед отправкой будет предпросмотр.",
        "bc_unsupported": "Для рассылки подходит текст или фото с подписью. Пришлите одно из двух.",
        "bc_preview": "👆 Так сообщение увидят пользователи.\nПолучателей: {count}. Отправить?",
        "bc_confirm": "✅ Отправить",
        "bc_cancel": "✖️ Отмена",
        "bc_dropped": "Рассылка отменена, ничего не отправлено.",
        "bc_started": "📣 Рассылка #{id} запущена, получателей: {total}. Ход — в сообщении ниже.",
        "bc_already": "Эта рассылка уже запущена: #{id}.",
        "bc_outdated": "Этот предпросмотр устарел. Начните заново: /admin → Рассылка.",
        "bc_progress": "📣 Рассылка #{id}: {state}\nОтправлено: {sent} из {total}\n"
                       "Заблокировали бота: {blocked}\nНе доставлено: {failed}\nОсталось: {left}",
        "bc_state_running": "идёт",
        "bc_state_paused": "на паузе",
        "bc_state_cancelled": "отменена",
        "bc_state_done": "завершена",
        "bc_pause": "⏸ Пауза",
        "bc_resume": "▶️ Продолжить",
        "bc_stop": "⏹ Отменить рассылку",
        "bc_final": "📣 Рассылка #{id} {state}.\nОтправлено: {sent} из {total}\n"
                    "Заблокировали бота: {blocked}\nНе доставлено: {failed}",
        "bc_final_rest": "\nНе отправлено (отмена): {left}",
        "bc_unchanged": "Рассылка #{id} уже {state}.",
        "bc_unknown": "Такой рассылки нет.",
    },
    "en": {
        "bc_prompt": "📣 Broadcast\n\nSend the message to broadcast: a text or a photo with a caption. "
                     "Formatting is kept. You will see a preview before anything is sent.",
        "bc_unsupported": "A broadcast is a text or a photo with a caption. Please send one of those.",
        "bc_preview": "👆 This is what users will get.\nRecipients: {count}. Send it?",
        "bc_confirm": "✅ Send",
        "bc_cancel": "✖️ Cancel",
        "bc_dropped": "Broadcast cancelled, nothing was sent.",
        "bc_started": "📣 Broadcast #{id} started, recipients: {total}. Progress is in the message below.",
        "bc_already": "This broadcast has already started: #{id}.",
        "bc_outdated": "This preview is outdated. Start again: /admin → Broadcast.",
        "bc_progress": "📣 Broadcast #{id}: {state}\nSent: {sent} of {total}\n"
                       "Blocked the bot: {blocked}\nNot delivered: {failed}\nLeft: {left}",
        "bc_state_running": "sending",
        "bc_state_paused": "paused",
        "bc_state_cancelled": "cancelled",
        "bc_state_done": "finished",
        "bc_pause": "⏸ Pause",
        "bc_resume": "▶️ Resume",
        "bc_stop": "⏹ Cancel broadcast",
        "bc_final": "📣 Broadcast #{id} {state}.\nSent: {sent} of {total}\n"
                    "Blocked the bot: {blocked}\nNot delivered: {failed}",
        "bc_final_rest": "\nNot sent (cancelled): {left}",
        "bc_unchanged": "Broadcast #{id} is already {state}.",
        "bc_unknown": "There is no such broadcast.",
    },
}
