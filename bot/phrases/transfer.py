"""Texts of the bank transfer screens, the user's and the admins' (Russian first, English for
English users). The payment details themselves come from PAYMENT_TRANSFER_DETAILS, shown as given."""

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "btn_transfer": "🏦 Банковский перевод",
        "tr_choose": "🏦 Пополнение банковским переводом.\n\nВыберите сумму или введите свою: от {min} до {max}.",
        "tr_btn_own": "✍️ Другая сумма",
        "tr_btn_cancel": "Отменить заявку",
        "tr_btn_stop": "Отмена",
        "tr_ask_amount": "Введите сумму в рублях, от {min} до {max}. Например: 500",
        "tr_bad_amount": "Не понял сумму «{text}». Напишите число рублей от {min} до {max}, например 500 или 750,50.",
        "tr_out_of_range": "Сумма {amount} вне пределов: от {min} до {max}. Введите другую.",
        "tr_amount_as_text": "Напишите сумму числом, например 500.",
        "tr_details": "🏦 Заявка №{id} на {amount}.\n\nПереведите ровно {amount} по реквизитам:\n\n{details}\n\n"
                      "Затем пришлите сюда скриншот подтверждения перевода — фото или файл-картинку. "
                      "Заявка ждёт скриншот {hours} ч, потом закрывается сама.",
        "tr_resumed": "У вас уже есть заявка №{id} на {amount}, она ждёт скриншот.",
        "tr_need_screenshot": "Нужен скриншот перевода по заявке №{id} — фото или файл-картинка, не текст. "
                              "Администратор сверит его с поступлением.",
        "tr_received": "📨 Скриншот получен. Заявка №{id} на {amount} передана администратору. "
                       "Когда перевод проверят, баланс пополнится — мы напишем.",
        "tr_under_review": "Заявка №{id} на {amount} уже на проверке у администратора. "
                           "Дождитесь решения или отмените заявку.",
        "tr_expired": "Заявка №{id} закрыта: скриншот не пришёл вовремя. Если вы уже перевели деньги, "
                      "создайте новую заявку и пришлите скриншот.",
        "tr_no_request": "Нет заявки, которая ждёт скриншот. Начните заново: Баланс → Банковский перевод.",
        "tr_cancelled": "Заявка №{id} отменена.",
        "tr_cannot_cancel": "Заявку №{id} уже не отменить: {status}.",
        "tr_rejected": "❌ Перевод по заявке №{id} на {amount} не подтверждён.\nПричина: {reason}\n"
                       "Если это ошибка, напишите в поддержку: /paysupport",
        "tr_reason_nf": "платёж не найден",
        "tr_reason_sum": "сумма не совпадает с заявкой",
        "tr_reason_img": "на скриншоте не видно перевода",
        "tr_status_pending": "на проверке",
        "tr_status_approved": "одобрена",
        "tr_status_rejected": "отклонена",
        "tr_status_cancelled": "отменена пользователем",
        "tr_status_expired": "истекла без скриншота",
        "tr_adm_card": "🏦 Заявка №{id} на {amount}\nПользователь: {user}\nСоздана: {created}",
        "tr_adm_approve": "✅ Одобрить",
        "tr_adm_reject": "❌ Отклонить",
        "tr_adm_approved": "✅ Заявка №{id} одобрена: +{amount} пользователю {user}. Его баланс: {balance}.",
        "tr_adm_rejected": "❌ Заявка №{id} отклонена. Пользователю сообщено: {reason}",
        "tr_adm_already": "Заявка №{id} уже решена: {status} ({who}).",
        "tr_adm_by_user": "пользователем",
        "tr_adm_not_ready": "Заявки №{id} нет или у неё ещё нет скриншота.",
        "tr_adm_why": "Почему отклонить заявку №{id} на {amount}? Выберите причину или напишите свою одним "
                      "сообщением (её увидит пользователь).",
        "tr_adm_type_reason": "✍️ Своя причина",
        "tr_adm_type_now": "Напишите причину отказа по заявке №{id} одним сообщением (до {limit} символов).",
        "tr_adm_reason_text": "Причина — это текст. Напишите её одним сообщением или /cancel.",
        "tr_adm_list": "🏦 Переводы на проверке: {review}. Ждут скриншота: {waiting}.",
        "tr_adm_list_empty": "🏦 Переводов на проверке нет. Ждут скриншота: {waiting}.",
        "tr_adm_refresh": "🔄 Обновить",
    },
    "en": {
        "btn_transfer": "🏦 Bank transfer",
        "tr_choose": "🏦 Top up by bank transfer.\n\nPick an amount or type your own: from {min} to {max}.",
        "tr_btn_own": "✍️ Other amount",
        "tr_btn_cancel": "Cancel the request",
        "tr_btn_stop": "Cancel",
        "tr_ask_amount": "Type the amount in rubles, from {min} to {max}. For example: 500",
        "tr_bad_amount": "I could not read the amount “{text}”. Type a number of rubles from {min} to {max}, "
                         "for example 500 or 750.50.",
        "tr_out_of_range": "{amount} is out of bounds: from {min} to {max}. Type another amount.",
        "tr_amount_as_text": "Type the amount as a number, for example 500.",
        "tr_details": "🏦 Request #{id} for {amount}.\n\nTransfer exactly {amount} using these details:\n\n"
                      "{details}\n\nThen send a screenshot of the transfer here, as a photo or an image file. "
                      "The request waits {hours} h for the screenshot, then closes by itself.",
        "tr_resumed": "You already have request #{id} for {amount}, waiting for its screenshot.",
        "tr_need_screenshot": "Request #{id} needs a screenshot of the transfer, a photo or an image file, not text. "
                              "An administrator will match it with the payment.",
        "tr_received": "📨 Screenshot received. Request #{id} for {amount} went to an administrator. "
                       "Once the transfer is checked, your balance is topped up and we will tell you.",
        "tr_under_review": "Request #{id} for {amount} is already being checked by an administrator. "
                           "Wait for the decision or cancel the request.",
        "tr_expired": "Request #{id} is closed: the screenshot did not come in time. If you have already "
                      "transferred the money, create a new request and send the screenshot.",
        "tr_no_request": "No request is waiting for a screenshot. Start again: Balance → Bank transfer.",
        "tr_cancelled": "Request #{id} is cancelled.",
        "tr_cannot_cancel": "Request #{id} can no longer be cancelled: {status}.",
        "tr_rejected": "❌ The transfer for request #{id} ({amount}) was not confirmed.\nReason: {reason}\n"
                       "If this is a mistake, write to support: /paysupport",
        "tr_reason_nf": "the payment was not found",
        "tr_reason_sum": "the amount does not match the request",
        "tr_reason_img": "the screenshot does not show a transfer",
        "tr_status_pending": "being checked",
        "tr_status_approved": "approved",
        "tr_status_rejected": "rejected",
        "tr_status_cancelled": "cancelled by the user",
        "tr_status_expired": "expired without a screenshot",
        "tr_adm_card": "🏦 Request #{id} for {amount}\nUser: {user}\nCreated: {created}",
        "tr_adm_approve": "✅ Approve",
        "tr_adm_reject": "❌ Reject",
        "tr_adm_approved": "✅ Request #{id} approved: +{amount} to user {user}. Their balance: {balance}.",
        "tr_adm_rejected": "❌ Request #{id} rejected. The user was told: {reason}",
        "tr_adm_already": "Request #{id} was already decided: {status} ({who}).",
        "tr_adm_by_user": "by the user",
        "tr_adm_not_ready": "Request #{id} does not exist or has no screenshot yet.",
        "tr_adm_why": "Why reject request #{id} for {amount}? Pick a reason or type your own in one message "
                      "(the user will see it).",
        "tr_adm_type_reason": "✍️ Own reason",
        "tr_adm_type_now": "Type the reason for rejecting request #{id} in one message (up to {limit} characters).",
        "tr_adm_reason_text": "The reason is text. Type it in one message, or /cancel.",
        "tr_adm_list": "🏦 Transfers to check: {review}. Waiting for a screenshot: {waiting}.",
        "tr_adm_list_empty": "🏦 No transfers to check. Waiting for a screenshot: {waiting}.",
        "tr_adm_refresh": "🔄 Refresh",
    },
}
