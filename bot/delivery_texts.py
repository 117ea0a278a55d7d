"""What the jobs actor tells a user about a generation after Confirm: the status line it keeps
editing, the result's caption and buttons, and the plain-words reason when there is no result.

Kept apart from bot/texts.py (the conversation's strings) because the actor renders these
outside any update; the same rules hold: Russian by default, English for English users, and
never a word of KIE's internals (codes, messages, task ids) in front of a user.
"""

from __future__ import annotations

import math
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.keyboards import MENU_OPEN

CAPTION_PROMPT = 200  # characters of the prompt a caption repeats
CAPTION_MAX = 1024  # Telegram's caption limit

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "job_no": "№{n}",
        "status_sending": "⏳ {no}Отправляю задание модели «{model}»…",
        "status_queued": "🕐 {no}«{model}»: задание в очереди. Прошло {elapsed}.",
        "status_generating": "🎨 {no}«{model}»: генерирую. Прошло {elapsed}.",
        "status_usually": "Обычно это занимает около {usual}.",
        "status_stage": "🎼 {no}«{model}»: {stage} Прошло {elapsed}.",
        "stage_text": "Слова готовы, пишем музыку…",
        "stage_first": "Первая песня готова, вторая на подходе…",
        "text_variant": "Вариант {n}",
        "status_done": "✅ {no}«{model}»: готово за {elapsed}.",
        "status_failed": "❌ {no}«{model}»: не получилось.",
        "btn_again": "🔁 Повторить",  # the result's buttons are bot.keyboards.result_keyboard's
        "btn_menu": "☰ Меню",
        "result_link": "Файл слишком большой для Telegram, скачайте его по ссылке (она действует недолго):\n{url}",
        "result_link_refused": "Telegram не принял файл, скачайте его по ссылке (она действует недолго):\n{url}",
        "result_rest_link": "Результат {n} из {total} не удалось отправить сюда, скачайте его по ссылке "
                            "(она действует недолго):\n{url}",
        "result_missing": "Результат {n} из {total} доставить не удалось: файл больше недоступен. "
                          "Остальное выше.",
        "failed_content": "Модель отказалась выполнять этот запрос: похоже, он нарушает её правила. "
                          "Попробуйте сформулировать иначе.",
        "failed_rejected": "Модель не приняла эти параметры. Попробуйте изменить описание или настройки.",
        "failed_temporary": "Не получилось из-за временной проблемы на нашей стороне или у модели. "
                            "Попробуйте ещё раз чуть позже.",
        "failed_paused": "Генерации временно приостановлены, мы уже это исправляем. Попробуйте позже.",
        "failed_input": "Не удалось получить отправленный вами файл. Пришлите его ещё раз, пожалуйста.",
        "failed_timeout": "Генерация заняла слишком много времени, и мы её остановили. Попробуйте ещё раз.",
        "failed_input_too_long": "Ваш файл оказался длиннее, чем цена, которую вы подтвердили, или чем принимает "
                                 "модель, поэтому генерацию мы не запускали. Пришлите файл покороче.",
        "failed_input_too_long_seconds": "Ваш файл длится {got} с, а можно не больше {limit} с (по подтверждённой "
                                         "цене или по правилам модели), поэтому генерацию мы не запускали. "
                                         "Пришлите файл покороче.",
        "failed_speech": "Не удалось озвучить ваш текст, поэтому видео не делали.",
        "failed_speech_too_long": "Озвученный текст звучит намного дольше, чем мы рассчитали по его длине (так бывает "
                                  "с числами и сокращениями), поэтому видео не делали. Напишите числа словами или "
                                  "сократите текст.",
        "failed_input_unmeasurable": "Не удалось определить длительность вашего аудио или видео, поэтому генерацию "
                                     "мы не запускали. Попробуйте другой формат, например MP3 или MP4.",
        "refund_money": "Деньги вернулись на баланс.",
        "refund_free": "Бесплатная генерация не израсходована.",
    },
    "en": {
        "job_no": "#{n}",
        "status_sending": "⏳ {no}Sending the task to “{model}”…",
        "status_queued": "🕐 {no}“{model}”: queued. {elapsed} so far.",
        "status_generating": "🎨 {no}“{model}”: generating. {elapsed} so far.",
        "status_usually": "It usually takes about {usual}.",
        "status_stage": "🎼 {no}“{model}”: {stage} {elapsed} so far.",
        "stage_text": "Lyrics ready, composing…",
        "stage_first": "The first song is ready, the second is coming…",
        "text_variant": "Variant {n}",
        "status_done": "✅ {no}“{model}”: Done in {elapsed}.",
        "status_failed": "❌ {no}“{model}”: it did not work out.",
        "btn_again": "🔁 Repeat",
        "btn_menu": "☰ Menu",
        "result_link": "The file is too large for Telegram; download it here (the link expires soon):\n{url}",
        "result_link_refused": "Telegram did not accept the file; download it here (the link expires soon):\n{url}",
        "result_rest_link": "Result {n} of {total} could not be sent in the chat; download it from this link "
                            "(the link expires soon):\n{url}",
        "result_missing": "Result {n} of {total} could not be delivered: the file is no longer available. "
                          "The rest is above.",
        "failed_content": "The model refused this request: it seems to break its content rules. "
                          "Try wording it differently.",
        "failed_rejected": "The model did not accept these parameters. Try another description or settings.",
        "failed_temporary": "It failed because of a temporary problem on our side or the model's. "
                            "Please try again a little later.",
        "failed_paused": "Generations are paused for a while; we are fixing it. Please try again later.",
        "failed_input": "We could not get the file you sent. Please send it again.",
        "failed_timeout": "The generation took too long and we stopped it. Please try again.",
        "failed_input_too_long": "Your file turned out longer than the price you confirmed, or than the model "
                                 "takes, so we did not start the generation. Please send a shorter one.",
        "failed_input_too_long_seconds": "Your file plays for {got} s, and at most {limit} s fit (the price you "
                                         "confirmed or the model's limit), so we did not start the generation. "
                                         "Please send a shorter one.",
        "failed_speech": "We could not speak your text, so the video was not made.",
        "failed_speech_too_long": "Your text, spoken, plays much longer than its length promised (numbers and "
                                  "abbreviations do that), so the video was not made. Please write numbers as words "
                                  "or shorten the text.",
        "failed_input_unmeasurable": "We could not read how long your audio or video is, so we did not start the "
                                     "generation. Please try another format, such as MP3 or MP4.",
        "refund_money": "The money is back on your balance.",
        "refund_free": "Your free generation was not used up.",
    },
}

# a job's failure category (store.jobs.Failed.reason, or timed_out) -> what the user reads
FAILURE_TEXT = {
    "content_refused": "failed_content",
    "rejected": "failed_rejected",
    "service_paused": "failed_paused",
    "input_unavailable": "failed_input",
    "timed_out": "failed_timeout",
    "input_too_long": "failed_input_too_long",  # the measured length is over what was priced or the field's limit
    "input_unmeasurable": "failed_input_unmeasurable",  # ingest/media_length.py could not read the length
    "speech_failed": "failed_speech",  # the avatar's typed text could not be spoken (generation/speech.py)
    "speech_too_long": "failed_speech_too_long",  # spoken, it plays far longer than its length promised
}


def lang_of_code(language: str | None) -> str:
    """The stored language code of a user (users.language) as one of ours."""
    return "en" if isinstance(language, str) and language.lower().startswith("en") else "ru"


def t(lang: str, key: str, **values: Any) -> str:
    template = TEXTS.get(lang, TEXTS["ru"]).get(key) or TEXTS["ru"].get(key) or key
    return template.format(**values) if values else template


def duration(seconds: float, lang: str) -> str:
    """"1 мин 05 с" / "1 min 05 s": minutes and seconds, as a status line shows them."""
    whole = max(0, int(seconds))
    minutes, rest = divmod(whole, 60)
    if lang == "en":
        return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"
    return f"{minutes} мин {rest:02d} с" if minutes else f"{rest} с"


def number(lang: str, user_number: int | None) -> str:
    """A generation as its user counts them, "№2 " / "#2 " (with the space a line puts after it);
    empty without one. Never the global job id: that stays in buttons and logs."""
    return t(lang, "job_no", n=user_number) + " " if user_number else ""


STAGES = ("text", "first")  # stages short of the end a family reports (Suno), each with its words


def status(lang: str, state: str, model: str, elapsed: float, usual: float | None,
           user_number: int | None = None, stage: str | None = None) -> str:
    """The status line for a job in `state` ("sending", "queued", "generating"); a running task's
    `stage` (Suno's "text", "first") says how far it got instead of "generating"."""
    if stage in STAGES and state == "generating":
        line = t(lang, "status_stage", model=model, elapsed=duration(elapsed, lang), no=number(lang, user_number),
                 stage=t(lang, f"stage_{stage}"))
    else:
        line = t(lang, f"status_{state}", model=model, elapsed=duration(elapsed, lang), no=number(lang, user_number))
    if usual is not None and state != "sending":
        line += "\n" + t(lang, "status_usually", usual=duration(usual, lang))
    return line


def failure(lang: str, reason: str, paid_with: str, *, got: float | None = None, limit: float | None = None) -> str:
    """Why there is no result, in plain words, and what happened to the money. For
    input_too_long, `got` (the measured seconds) and `limit` (the seconds allowed) name the
    numbers when the caller has them; the stored category alone gives the same text without them."""
    if reason == "input_too_long" and got is not None and limit is not None:
        text = t(lang, "failed_input_too_long_seconds", got=_seconds(got, up=True), limit=_seconds(limit, up=False))
    else:
        text = t(lang, FAILURE_TEXT.get(reason, "failed_temporary"))
    if paid_with == "money":
        text += "\n" + t(lang, "refund_money")
    elif paid_with in ("free", "plan", "grant"):  # the free tier, a plan's allowance, a promo grant
        text += "\n" + t(lang, "refund_free")
    return text


def _seconds(value: float, *, up: bool) -> int:
    """Whole seconds as the user counts them: a measured 15.2 s is "16" over a limit of 15, never "15"."""
    return int(math.ceil(value) if up else math.floor(value))


def ended(lang: str, model: str, elapsed: float, user_number: int | None, *, done: bool) -> str:
    """The status message's last word: done (in how long) or failed, naming the generation."""
    if done:
        return t(lang, "status_done", model=model, elapsed=duration(elapsed, lang), no=number(lang, user_number))
    return t(lang, "status_failed", model=model, no=number(lang, user_number))


def caption(model: str, prompt: object, lang: str = "ru", user_number: int | None = None) -> str:
    """The result's caption: the model's name and the generation's number, then the prompt,
    shortened, in the language's quotes."""
    text = f"{model} · {number(lang, user_number).strip()}" if user_number else model
    if isinstance(prompt, str) and prompt.strip():
        short = prompt.strip()
        if len(short) > CAPTION_PROMPT:
            short = short[:CAPTION_PROMPT - 1].rstrip() + "…"
        text += f"\n“{short}”" if lang == "en" else f"\n«{short}»"
    return text[:CAPTION_MAX]


def menu_keyboard(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=t(lang, "btn_menu"),
                                                                       callback_data=MENU_OPEN)]])
