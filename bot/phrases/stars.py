"""Texts of the Stars screens, the refunds and the rate, and /paysupport, /terms, /privacy
(Russian first, English for English users)."""

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "stars_screen": "⭐ Пополнение баланса звёздами Telegram.\nКурс: 1 ⭐ = {rate}. Выберите сумму:",
        "stars_hint": "Нет звёзд? Купите их в мобильном приложении Telegram: Настройки → Мои звёзды, или у "
                      "@PremiumBot. В Telegram Desktop оплата без звёзд на счету не открывается.",
        "btn_stars_pack": "{stars} ⭐ → {amount}",
        "btn_stars_custom": "✏️ Другая сумма",
        "btn_stars_cancel": "✖️ Отмена",
        "stars_custom_ask": "Сколько звёзд? Напишите целое число от {min} до {max}.",
        "stars_custom_bad": "Нужно целое число звёзд от {min} до {max}. Попробуйте ещё раз или нажмите «Отмена».",
        "stars_invoice_title": "Пополнение баланса",
        "stars_invoice_description": "{stars} ⭐ → {amount} на баланс. Деньги зачисляются сразу после оплаты.",
        "stars_invoice_label": "Пополнение: {stars} ⭐",
        "stars_invoice_sent": "Счёт на {stars} ⭐ ({amount}) выше: нажмите «Оплатить». Счёт действует {hours} ч.",
        "stars_invoice_failed": "Не удалось выставить счёт. Попробуйте ещё раз чуть позже.",
        "pay_refused_unknown": "Этот счёт не найден. Откройте «Пополнить» и выставьте новый.",
        "pay_refused_paid": "Этот счёт уже оплачен. Чтобы пополнить ещё, откройте «Пополнить».",
        "pay_refused_expired": "Срок действия счёта истёк. Откройте «Пополнить» и выставьте новый.",
        "pay_refused_amount": "Сумма не совпадает со счётом. Откройте «Пополнить» и выставьте новый.",
        "pay_refused_banned": "Оплата недоступна для вашего аккаунта. Напишите в поддержку: /paysupport",
        "debited_reversal": "↩️ Возврат звёзд: с баланса списано {amount}. Баланс: {balance}.",
        "ledger_reversal": "Возврат платежа",
        "stars_refunded_user": "↩️ Звёзды за платёж {charge} возвращены. С баланса списано {amount}.",
        "paysupport_default": "Вопросы по оплате: нажмите «Написать в поддержку», расскажите, что случилось, "
                              "и укажите номер платежа (ниже). Мы ответим здесь и, если оплата не дала "
                              "результата, вернём звёзды.\n"
                              "Если мы не ответили, обратитесь в Telegram: t.me/BotFather?start=starsdispute "
                              "с номером транзакции из «Настройки → Мои звёзды».",
        "paysupport_none": "Платежей звёздами у вас пока нет.",
        "paysupport_header": "Ваши последние платежи:",
        "paysupport_line": "• {day}: {stars} ⭐ → {amount}, номер: {charge}{state}",
        "paysupport_refunded": " (возвращён)",
        "terms_default": "Условия использования.\nБот выполняет генерации с помощью моделей ИИ за деньги с "
                         "баланса. Баланс пополняется звёздами Telegram по курсу, указанному при оплате; "
                         "деньги на балансе не выводятся. Если генерация не удалась, её стоимость "
                         "возвращается на баланс. Если оплата не дала результата, напишите /paysupport — "
                         "мы вернём звёзды. Запрещены генерации, нарушающие закон или правила Telegram.",
        "privacy_default": "Политика конфиденциальности.\nМы храним ваш Telegram id, имя пользователя, язык, "
                           "баланс и историю операций, тексты и файлы ваших генераций — только чтобы "
                           "выполнять их и отвечать на вопросы по оплате. Файлы и тексты передаются "
                           "поставщику моделей (KIE) для генерации. Мы не продаём и не передаём данные "
                           "третьим лицам для рекламы. Чтобы удалить данные, напишите /paysupport.",
        "adm_refunds_header": "↩️ Последние платежи звёздами (нажмите, чтобы вернуть):",
        "adm_refunds_none": "Платежей звёздами пока нет.",
        "adm_refunds_line": "• {day} пользователь {user}: {stars} ⭐ = {amount}, {charge} — {state}",
        "adm_refund_state_paid": "оплачен",
        "adm_refund_state_pending": "возврат в процессе",
        "adm_refund_state_refunded": "возвращён",
        "adm_refund_state_refused": "Telegram отказал в возврате",
        "btn_adm_refund": "↩️ {stars} ⭐ u{user} {charge}",
        "btn_adm_back": "⬅️ Админ-меню",
        "adm_refund_done": "✅ Платёж {charge} возвращён: {stars} ⭐ пользователю {user}, с баланса списано {amount}.",
        "adm_refund_already": "Платёж {charge} уже возвращён.",
        "adm_refund_missing": "Платёж не найден.",
        "adm_refund_spent": "⛔ Нельзя вернуть {charge}: пользователь уже потратил эти деньги (на балансе "
                            "меньше {amount}). Возврат не выполнен.",
        "adm_refund_refused": "⛔ Telegram отказал в возврате {charge}: {reason}. Деньги возвращены на баланс "
                              "пользователя.",
        "adm_refund_refused_before": "Telegram уже отказал в возврате {charge}; деньги пользователю возвращены.",
        "adm_refund_retry": "Telegram не ответил ({reason}). Деньги с баланса уже списаны; нажмите ещё раз, "
                            "чтобы повторить возврат.",
        "adm_rate_header": "⭐ Курс: 1 ⭐ = {rate}.",
        "adm_rate_history": "История:",
        "adm_rate_line": "• {day}: {rate} (админ {admin})",
        "adm_rate_default": "Изменений ещё не было (курс из настройки STARS_RATE).",
        "btn_adm_rate_set": "✏️ Изменить курс",
        "adm_rate_ask": "Сколько копеек даёт одна звезда? Целое число от 1 до 100000 (например, 150 = 1,50 ₽).",
        "adm_rate_bad": "Нужно целое число копеек от 1 до 100000.",
        "adm_rate_set": "✅ Курс изменён: было {before}, стало {after} за 1 ⭐. Новые счета — по новому курсу.",
    },
    "en": {
        "stars_screen": "⭐ Top up with Telegram Stars.\nRate: 1 ⭐ = {rate}. Choose an amount:",
        "stars_hint": "No Stars? Buy them in the Telegram mobile app: Settings → My Stars, or from @PremiumBot. "
                      "Telegram Desktop cannot open the payment with no Stars on your account.",
        "btn_stars_pack": "{stars} ⭐ → {amount}",
        "btn_stars_custom": "✏️ Another amount",
        "btn_stars_cancel": "✖️ Cancel",
        "stars_custom_ask": "How many Stars? Send a whole number from {min} to {max}.",
        "stars_custom_bad": "Send a whole number of Stars from {min} to {max}, or press Cancel.",
        "stars_invoice_title": "Balance top-up",
        "stars_invoice_description": "{stars} ⭐ → {amount} to your balance, credited right after the payment.",
        "stars_invoice_label": "Top-up: {stars} ⭐",
        "stars_invoice_sent": "The invoice for {stars} ⭐ ({amount}) is above: press Pay. It is valid for {hours} h.",
        "stars_invoice_failed": "The invoice could not be sent. Please try again a bit later.",
        "pay_refused_unknown": "This invoice was not found. Open Top up and get a new one.",
        "pay_refused_paid": "This invoice is already paid. To top up again, open Top up.",
        "pay_refused_expired": "This invoice has expired. Open Top up and get a new one.",
        "pay_refused_amount": "The amount does not match the invoice. Open Top up and get a new one.",
        "pay_refused_banned": "Payments are not available for your account. Write to support: /paysupport",
        "debited_reversal": "↩️ Stars refunded: {amount} taken from your balance. Balance: {balance}.",
        "ledger_reversal": "Payment refunded",
        "stars_refunded_user": "↩️ The Stars of payment {charge} were returned. {amount} taken from your balance.",
        "paysupport_default": "Payment questions: press Write to support, tell us what happened and give the "
                              "payment id (below). We answer here and, if a payment got you nothing, refund "
                              "the Stars.\n"
                              "If we do not answer, contact Telegram: t.me/BotFather?start=starsdispute with the "
                              "transaction id from Settings → My Stars.",
        "paysupport_none": "You have no Stars payments yet.",
        "paysupport_header": "Your recent payments:",
        "paysupport_line": "• {day}: {stars} ⭐ → {amount}, id: {charge}{state}",
        "paysupport_refunded": " (refunded)",
        "terms_default": "Terms of use.\nThe bot runs AI model generations paid from your balance. The balance "
                         "is topped up with Telegram Stars at the rate shown when you pay; it cannot be "
                         "withdrawn. A generation that fails is refunded to the balance. If a payment got you "
                         "nothing, send /paysupport and we will refund the Stars. Generations that break the "
                         "law or Telegram's rules are not allowed.",
        "privacy_default": "Privacy policy.\nWe keep your Telegram id, username, language, balance and its "
                           "history, and the texts and files of your generations, only to run them and to "
                           "answer payment questions. Texts and files go to the model provider (KIE) to be "
                           "generated. We do not sell data or share it for advertising. To have your data "
                           "deleted, send /paysupport.",
        "adm_refunds_header": "↩️ Recent Stars payments (press one to refund it):",
        "adm_refunds_none": "No Stars payments yet.",
        "adm_refunds_line": "• {day} user {user}: {stars} ⭐ = {amount}, {charge} — {state}",
        "adm_refund_state_paid": "paid",
        "adm_refund_state_pending": "refund under way",
        "adm_refund_state_refunded": "refunded",
        "adm_refund_state_refused": "Telegram refused the refund",
        "btn_adm_refund": "↩️ {stars} ⭐ u{user} {charge}",
        "btn_adm_back": "⬅️ Admin menu",
        "adm_refund_done": "✅ Payment {charge} refunded: {stars} ⭐ to user {user}, {amount} taken from the balance.",
        "adm_refund_already": "Payment {charge} is already refunded.",
        "adm_refund_missing": "Payment not found.",
        "adm_refund_spent": "⛔ Cannot refund {charge}: the user already spent that money (less than {amount} "
                            "left). Nothing was refunded.",
        "adm_refund_refused": "⛔ Telegram refused to refund {charge}: {reason}. The money is back on the user's "
                              "balance.",
        "adm_refund_refused_before": "Telegram already refused to refund {charge}; the user has the money back.",
        "adm_refund_retry": "Telegram did not answer ({reason}). The money is already taken from the balance; "
                            "press again to retry the refund.",
        "adm_rate_header": "⭐ Rate: 1 ⭐ = {rate}.",
        "adm_rate_history": "History:",
        "adm_rate_line": "• {day}: {rate} (admin {admin})",
        "adm_rate_default": "Never changed (the rate is STARS_RATE's).",
        "btn_adm_rate_set": "✏️ Change the rate",
        "adm_rate_ask": "How many kopecks does one Star credit? A whole number from 1 to 100000 (150 = 1.50 ₽).",
        "adm_rate_bad": "Send a whole number of kopecks from 1 to 100000.",
        "adm_rate_set": "✅ Rate changed from {before} to {after} per ⭐. New invoices use the new rate.",
    },
}
