"""Every string a Telegram user sees, in one place: Russian by default, English for English users.

Product issues add their keys here; `t()` falls back to Russian and then to the key itself, so a
missing translation shows something sane instead of failing a handler. Texts are sent as plain
text (no parse mode), so a user's prompt shown back needs no escaping.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

DEFAULT = "ru"

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "welcome": "Привет, {name}! Я создаю картинки, видео и звук нейросетями.",
        "menu": "Главное меню. Выберите, что сделать:",
        "btn_image": "🎨 Создать изображение",
        "btn_video": "🎬 Создать видео",
        "btn_balance": "💰 Баланс",
        "btn_history": "🗂 Мои генерации",
        "btn_help": "❓ Помощь",
        "btn_menu": "☰ Меню",
        "btn_back": "⬅️ Назад",
        "btn_cancel": "✖️ Отмена",
        "btn_start": "▶️ Начать",
        "btn_skip": "⏭ Пропустить",
        "btn_keep": "↩️ Оставить как есть",
        "btn_done": "✅ Готово",
        "btn_confirm": "✅ Подтвердить · {price}",
        "btn_change": "✏️ Изменить",
        "btn_top_up": "💳 Пополнить",
        "btn_repeat": "🔁 Повторить",
        "btn_back_to_confirmation": "↩️ Вернуться к подтверждению",
        "cancelled": "Действие отменено.",
        "nothing_to_cancel": "Отменять нечего — вы в главном меню.",
        "fallback": "Не понял сообщение. Вот что я умею:",
        "coming_soon": "Этот раздел скоро откроется. А пока вот меню:",
        "apology": "Что-то пошло не так, и мы уже разбираемся. Попробуйте ещё раз из меню. Код: {ref}",
        "updating": "Сервис обновляется, повторите через минуту.",
        "friend": "друг",
        "outdated": "⚠️ Это меню устарело.",
        "model_gone": "Этой модели больше нет в каталоге. Выберите другую:",
        "yes": "Да",
        "no": "Нет",
        # catalog screens
        "choose_family": "Что будем создавать?",
        "family_header": "{family}: выберите модель. 🎁 — есть бесплатные генерации, ⭐ — популярная.",
        "price_from": "от {price}",
        "price_range": "от {low} до {high}, по длине",
        "price_free_tier": "бесплатно",
        "price_free": "бесплатно",
        "card_prices": "Цены:",
        "card_any": "Любые настройки",
        "card_free": "🎁 Бесплатно до {limit} раз в день, дальше — по цене.",
        # wizard steps
        "step_header": "{model} · шаг {step} из {steps}",
        "ask_text": "✏️ {title}\nНапишите сообщением, до {limit} символов.",
        "ask_number": "🔢 {title}\nНапишите число от {low} до {high}.",
        "ask_choice": "👇 {title}: выберите кнопкой.",
        "ask_file_image": "🖼 {title}\nПришлите изображение ({formats}, до {limit} МБ) — фото или файлом.",
        "ask_file_video": "🎞 {title}\nПришлите видео ({formats}, до {limit} МБ).",
        "ask_file_audio": "🎧 {title}\nПришлите аудио ({formats}, до {limit} МБ) — файлом или голосовым.",
        "ask_files_many": "Можно до {most} файлов: присылайте по одному.",
        "files_done_hint": "Пришлите ещё или нажмите «Готово».",
        "files_so_far": "Получено: {count} из {most}.",
        "file_received": "📎 Файл получен ({count} из {most}).",
        "ask_task": "👇 {title}: выберите один из ваших готовых результатов.",
        "no_task_sources": "У вас пока нет подходящих результатов. Сначала создайте видео моделью: {models}.",
        "current_value": "Сейчас: {value}",
        "default_value": "По умолчанию: {value}",
        "optional_hint": "Этот шаг можно пропустить.",
        "value_none": "не задано",
        "value_files": "{count} шт.",
        "value_files_seconds": "{count} шт., {seconds} с",
        "value_result": "результат №{id}",
        "use_buttons": "Здесь нужно нажать одну из кнопок ниже.",
        "send_text": "Здесь нужен текст — напишите его сообщением.",
        "send_file_image": "Здесь нужно изображение — пришлите фото или файл с картинкой.",
        "send_file_video": "Здесь нужно видео — пришлите видеофайл.",
        "send_file_audio": "Здесь нужно аудио — пришлите аудиофайл или голосовое сообщение.",
        "bad_empty": "Сообщение пустое — напишите текст.",
        "bad_too_long_text": "Слишком длинно: {got} символов, а можно не больше {limit}. Сократите, пожалуйста.",
        "bad_too_short_text": "Слишком коротко: {got} символов, нужно хотя бы {limit}.",
        "bad_pattern": "Не похоже на то, что нужно. Проверьте и пришлите ещё раз.",
        "bad_number": "Нужно число от {low} до {high}.",
        "bad_file_kind": "Это не тот тип файла: здесь нужен другой (см. ниже).",
        "bad_mime": "Такой формат не подходит. Подойдут: {allowed}.",
        "bad_too_big": "Файл слишком большой: {size} МБ, а можно до {limit} МБ.",
        "bad_too_long_media": "Слишком длинный файл: {got} с, а можно до {limit} с.",
        "bad_no_length": "Не вижу длительности этого файла, а от неё зависит цена. Пришлите его как аудио или видео, "
                         "а не документом.",
        "bad_unknown_length": "Telegram не сообщил длительность этого файла (0 с), а от неё зависит цена. "
                              "Пришлите другой файл или запишите сообщение заново.",
        # confirmation
        "confirm_header": "Проверьте и подтвердите:",
        "confirm_model": "Модель: {model}",
        "confirm_price": "💰 Цена: {price}",
        "confirm_balance": "Доступно на балансе: {available}",
        "confirm_short": "⚠️ Не хватает {short}. Пополните баланс и нажмите «Подтвердить».",
        "confirm_free": "🎁 Бесплатно: осталось {left} из {limit} бесплатных генераций на сегодня.",
        "confirm_free_used_up": "Бесплатные генерации на сегодня закончились ({limit} в день), эта — платная.",
        "confirm_admin": "👑 Для администратора бесплатно (цена {price}).",
        "change_what": "Что изменить?",
        "forbidden_combination": "Модель не принимает такое сочетание настроек. Измените одну из них:",
        "paused": "😔 Простите, генерации временно приостановлены — мы уже это чиним. Деньги не списаны, "
                  "попробуйте подтвердить чуть позже.",
        "terms_changed": "Цена или условия изменились с момента, как я показал этот экран. Вот новые:",
        "insufficient": "Не хватает денег на балансе для этой генерации.",
        "too_many_active": "У вас уже идёт {active} генераций (можно {limit} одновременно). Дождитесь, пока одна "
                           "закончится, и нажмите «Подтвердить» снова.",
        "free_limit_reached": "Бесплатные генерации на сегодня закончились ({limit} в день). Эта будет платной:",
        "status_queued": "⏳ №{n} «{model}»: принято, ставлю в очередь…",
        "already_confirmed": "Эта генерация уже запущена (№{id}), второй раз я её не запускаю.",
        # history
        "history_header": "🗂 Мои генерации (новые сверху):",
        "history_empty": "У вас пока нет генераций. Выберите, что создать:",
        "job_not_found": "Не нашёл такую генерацию.",
        "job_when": "Когда: {when}",
        "job_state": "Состояние: {state}",
        "job_price": "Цена: {price}",
        "job_released": "Результата нет, деньги вернулись на баланс.",
        "job_not_counted": "Результата нет, бесплатная генерация не израсходована.",
        "job_links": "Результат по ссылкам:\n{links}",
        "job_result_pending": "Результат готов и скоро придёт в чат.",
        "state_queued": "в очереди",
        "state_running": "генерируется",
        "state_succeeded": "готово",
        "state_failed": "не получилось",
        "state_timed_out": "слишком долго",
        "paid_free": "бесплатно",
        "paid_admin": "бесплатно (админ)",
        # balance
        "balance_header": "💰 Баланс: {balance}",
        "balance_held": "Зарезервировано под идущие генерации: {held}, доступно: {available}",
        "balance_admin": "👑 Вы администратор: генерации для вас бесплатны.",
        "balance_free_left": "🎁 Бесплатных генераций на сегодня: {left} из {limit}",
        "balance_recent": "Последние операции:",
        "ledger_top_up": "Пополнение",
        "ledger_bonus": "Бонус",
        "ledger_refund": "Возврат",
        "ledger_adjustment": "Корректировка",
        "ledger_hold": "Резерв под генерацию",
        "ledger_capture": "Оплата генерации",
        "ledger_release": "Резерв снят",
        "top_up_soon": "Пополнение скоро появится прямо в боте: Telegram Stars и банковский перевод. "
                       "Как только оно заработает, вернитесь к подтверждению — оно сохранено.",
    },
    "en": {
        "welcome": "Hi, {name}! I create images, videos and sound with AI.",
        "menu": "Main menu. What would you like to do?",
        "btn_image": "🎨 Create an image",
        "btn_video": "🎬 Create a video",
        "btn_balance": "💰 Balance",
        "btn_history": "🗂 My generations",
        "btn_help": "❓ Help",
        "btn_menu": "☰ Menu",
        "btn_back": "⬅️ Back",
        "btn_cancel": "✖️ Cancel",
        "btn_start": "▶️ Start",
        "btn_skip": "⏭ Skip",
        "btn_keep": "↩️ Keep it",
        "btn_done": "✅ Done",
        "btn_confirm": "✅ Confirm · {price}",
        "btn_change": "✏️ Change",
        "btn_top_up": "💳 Top up",
        "btn_repeat": "🔁 Repeat",
        "btn_back_to_confirmation": "↩️ Back to the confirmation",
        "cancelled": "Cancelled.",
        "nothing_to_cancel": "Nothing to cancel: you are in the main menu.",
        "fallback": "I did not understand that. Here is what I can do:",
        "coming_soon": "This section opens soon. Meanwhile, here is the menu:",
        "apology": "Something went wrong and we are looking into it. Please try again from the menu. Ref: {ref}",
        "updating": "The service is updating, please try again in a minute.",
        "friend": "friend",
        "outdated": "⚠️ This menu is outdated.",
        "model_gone": "This model is no longer in the catalog. Please pick another one:",
        "yes": "Yes",
        "no": "No",
        "choose_family": "What shall we create?",
        "family_header": "{family}: pick a model. 🎁 has free generations, ⭐ is popular.",
        "price_from": "from {price}",
        "price_range": "{low} to {high}, by length",
        "price_free_tier": "free",
        "price_free": "free",
        "card_prices": "Prices:",
        "card_any": "Any settings",
        "card_free": "🎁 Free up to {limit} times a day, then at the price.",
        "step_header": "{model} · step {step} of {steps}",
        "ask_text": "✏️ {title}\nSend it as a message, up to {limit} characters.",
        "ask_number": "🔢 {title}\nSend a number from {low} to {high}.",
        "ask_choice": "👇 {title}: pick a button.",
        "ask_file_image": "🖼 {title}\nSend an image ({formats}, up to {limit} MB), as a photo or a file.",
        "ask_file_video": "🎞 {title}\nSend a video ({formats}, up to {limit} MB).",
        "ask_file_audio": "🎧 {title}\nSend audio ({formats}, up to {limit} MB), as a file or a voice message.",
        "ask_files_many": "Up to {most} files: send them one by one.",
        "files_done_hint": "Send more or press “Done”.",
        "files_so_far": "Received: {count} of {most}.",
        "file_received": "📎 File received ({count} of {most}).",
        "ask_task": "👇 {title}: pick one of your finished results.",
        "no_task_sources": "You have no suitable results yet. First create a video with: {models}.",
        "current_value": "Now: {value}",
        "default_value": "Default: {value}",
        "optional_hint": "You may skip this step.",
        "value_none": "not set",
        "value_files": "{count} sent",
        "value_files_seconds": "{count} sent, {seconds} s",
        "value_result": "result #{id}",
        "use_buttons": "Please press one of the buttons below.",
        "send_text": "Text is needed here: please send it as a message.",
        "send_file_image": "An image is needed here: please send a photo or an image file.",
        "send_file_video": "A video is needed here: please send a video file.",
        "send_file_audio": "Audio is needed here: please send an audio file or a voice message.",
        "bad_empty": "The message is empty: please send some text.",
        "bad_too_long_text": "Too long: {got} characters, at most {limit} are allowed. Please shorten it.",
        "bad_too_short_text": "Too short: {got} characters, at least {limit} are needed.",
        "bad_pattern": "That does not look right. Please check it and send it again.",
        "bad_number": "A number from {low} to {high} is needed.",
        "bad_file_kind": "That is the wrong kind of file: another one is needed here (see below).",
        "bad_mime": "This format does not fit. These do: {allowed}.",
        "bad_too_big": "The file is too large: {size} MB, at most {limit} MB.",
        "bad_too_long_media": "The file is too long: {got} s, at most {limit} s.",
        "bad_no_length": "I cannot see how long this file is, and the price depends on it. Please send it as "
                         "audio or video, not as a document.",
        "bad_unknown_length": "Telegram did not tell me how long this file is (0 s), and the price depends on it. "
                              "Please send another file or record the message again.",
        "confirm_header": "Please check and confirm:",
        "confirm_model": "Model: {model}",
        "confirm_price": "💰 Price: {price}",
        "confirm_balance": "Available on your balance: {available}",
        "confirm_short": "⚠️ You are {short} short. Top up, then press “Confirm”.",
        "confirm_free": "🎁 Free: {left} of {limit} free generations left today.",
        "confirm_free_used_up": "Today's free generations are used up ({limit} a day), so this one is paid.",
        "confirm_admin": "👑 Free for an administrator (price {price}).",
        "change_what": "What would you like to change?",
        "forbidden_combination": "The model does not take this combination of settings. Please change one:",
        "paused": "😔 Sorry, generations are paused for a while; we are fixing it. Nothing was charged, "
                  "please confirm again a little later.",
        "terms_changed": "The price or the terms changed since I showed that screen. Here are the new ones:",
        "insufficient": "There is not enough money on your balance for this generation.",
        "too_many_active": "You already have {active} generations running ({limit} at once). Wait until one "
                           "finishes, then press “Confirm” again.",
        "free_limit_reached": "Today's free generations are used up ({limit} a day). This one will be paid:",
        "status_queued": "⏳ #{n} “{model}”: accepted, queueing…",
        "already_confirmed": "This generation is already running (#{id}); I am not starting it twice.",
        "history_header": "🗂 My generations (newest first):",
        "history_empty": "You have no generations yet. What shall we create?",
        "job_not_found": "I could not find that generation.",
        "job_when": "When: {when}",
        "job_state": "State: {state}",
        "job_price": "Price: {price}",
        "job_released": "No result; the money is back on your balance.",
        "job_not_counted": "No result; your free generation was not used up.",
        "job_links": "The result, as links:\n{links}",
        "job_result_pending": "The result is ready and will arrive in the chat shortly.",
        "state_queued": "queued",
        "state_running": "generating",
        "state_succeeded": "done",
        "state_failed": "failed",
        "state_timed_out": "took too long",
        "paid_free": "free",
        "paid_admin": "free (admin)",
        "balance_header": "💰 Balance: {balance}",
        "balance_held": "Held for running generations: {held}, available: {available}",
        "balance_admin": "👑 You are an administrator: your generations are free.",
        "balance_free_left": "🎁 Free generations left today: {left} of {limit}",
        "balance_recent": "Recent operations:",
        "ledger_top_up": "Top-up",
        "ledger_bonus": "Bonus",
        "ledger_refund": "Refund",
        "ledger_adjustment": "Adjustment",
        "ledger_hold": "Held for a generation",
        "ledger_capture": "Paid for a generation",
        "ledger_release": "Hold released",
        "top_up_soon": "Top-ups will come right here in the bot soon: Telegram Stars and bank transfers. "
                       "Once they work, come back to your confirmation: it is kept.",
    },
}


# (user id, language) the user chose with /language, for the update being handled: set by
# bot/middlewares.EnsureUser from the user's row, so every lang_of(user) call follows the choice
# without each handler reading it
CHOSEN: ContextVar[tuple[int, str] | None] = ContextVar("chosen_language", default=None)


def lang_of(user: Any) -> str:
    """The language for a Telegram user (aiogram User, its JSON dict, or None): the one they chose
    with /language when it is known for this update, else Telegram's language_code."""
    if user is None:
        return DEFAULT
    dict_ = isinstance(user, dict)
    chosen = CHOSEN.get()
    if chosen is not None and chosen[0] == (user.get("id") if dict_ else getattr(user, "id", None)):
        return chosen[1]
    code = user.get("language_code") if dict_ else getattr(user, "language_code", None)
    return code_lang(code)


def code_lang(code: str | None) -> str:
    """A language code (Telegram's, or one stored) as one of ours."""
    if isinstance(code, str) and code.lower().startswith("en"):
        return "en"
    return DEFAULT


def choose(user_id: int, lang: str | None) -> Token[tuple[int, str] | None]:
    """Say which language `user_id` chose for the rest of this context (None: not chosen); the
    token resets it (bot/middlewares.EnsureUser does, once the update is handled)."""
    return CHOSEN.set(None if lang is None else (user_id, code_lang(lang)))


def t(lang: str, key: str, **values: Any) -> str:
    """The text for `key` in `lang`, formatted with `values`."""
    template = TEXTS.get(lang, TEXTS[DEFAULT]).get(key) or TEXTS[DEFAULT].get(key) or key
    return template.format(**values) if values else template


def money(lang: str, kopecks: int) -> str:
    """Kopecks as rubles: "1 250 ₽", "12,50 ₽" (ru) / "1,250 ₽", "12.50 ₽" (en)."""
    sign = "−" if kopecks < 0 else ""
    rubles, rest = divmod(abs(kopecks), 100)
    whole = f"{rubles:,}".replace(",", "\u00a0" if lang != "en" else ",")
    if rest:
        whole += f"{',' if lang != 'en' else '.'}{rest:02d}"
    return f"{sign}{whole} ₽"


def signed(lang: str, kopecks: int) -> str:
    """Money with its sign, "+100 ₽" or "−36 ₽", for a ledger line."""
    return ("+" if kopecks > 0 else "") + money(lang, kopecks)


def _merge_topics() -> None:
    from bot.phrases import TOPICS

    for topic in TOPICS:
        for lang, entries in topic.items():
            taken = TEXTS.setdefault(lang, {}).keys() & entries.keys()
            if taken:
                raise RuntimeError(f"text keys defined twice ({lang}): {', '.join(sorted(taken))}")
            TEXTS[lang].update(entries)


_merge_topics()
