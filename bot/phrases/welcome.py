"""Texts of the first screen (the greeting, the menu's short labels), /help, /language and the
bot's profile in Telegram (its command list, description and short description)."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        # the greeting under "welcome" (bot/texts.py): what the user has, what things cost, how to start
        "welcome_bonus": "🎁 Подарок за знакомство: {bonus} уже на балансе.",
        "welcome_balance": "💰 На балансе: {balance}.",
        "welcome_free": "🆓 Сегодня бесплатно: ещё {left} из {limit} генераций (модели с 🎁).",
        "welcome_free_used": "🆓 Бесплатные генерации на сегодня закончились, завтра снова {limit}.",
        "welcome_prices": "💵 Цены: {prices}.",
        "welcome_how": "✍️ Просто напишите, что нарисовать, или пришлите фото — либо выберите ниже:",
        "welcome_choose": "Выберите, что сделать:",
        "price_kind_image": "картинка от {price}",
        "price_kind_video": "видео от {price}",
        "price_kind_audio": "звук от {price}",
        "btn_try_idea": "🎲 Идея — попробовать",
        # the menu's family buttons, two a row: short enough for half a phone's width
        "menu_fam_text_to_image": "🎨 Картинка по тексту",
        "menu_fam_image_edit": "🖌 Изменить фото",
        "menu_fam_text_to_video": "🎬 Видео по тексту",
        "menu_fam_image_to_video": "📽 Оживить фото",
        "menu_fam_video_to_video": "🎞 Изменить видео",
        "menu_fam_avatar": "🗣 Говорящий аватар",
        "menu_fam_audio": "🎧 Голос и звуки",
        "menu_fam_image_upscale": "🔍 Улучшить фото",
        "menu_fam_video_upscale": "📺 Улучшить видео",
        "menu_fam_background_removal": "✂️ Удалить фон",
        "menu_fam_music": "🎵 Музыка",
        # /help, built from parts (the free tier, prices and transfer only when they apply)
        "help_intro": "Я создаю картинки, видео и звук нейросетями.",
        "help_start": "✍️ Как начать: напишите, что нарисовать, или пришлите фото — я предложу, что с ним "
                      "сделать. Или выберите в меню, что создать, и модель.",
        "help_free": "🆓 Бесплатно: {limit} генераций в день на моделях с 🎁 (сегодня осталось {left}).",
        "help_prices": "💵 Цены: {prices}. Точную цену я покажу перед запуском, а спишу деньги только за "
                       "готовый результат.",
        "help_exact": "💵 Точную цену я покажу перед запуском, а спишу деньги только за готовый результат.",
        "help_pay": "💳 Оплата: /topup — пополнить звёздами Telegram, /subscribe — подписка, /promo КОД — "
                    "промокод, /invite — бонус за друга.",
        "help_transfer": "🏦 Банковский перевод — в разделе «Баланс».",
        "help_commands": "Ещё: /start — меню, /models — модели, /balance — баланс, /history — мои генерации, "
                         "/language — язык, /cancel — отменить действие, /paysupport — помощь с оплатой, "
                         "/terms — условия, /privacy — конфиденциальность.",
        # /language
        "language_pick": "Выберите язык бота · Choose the bot's language:",
        "language_set": "✅ Теперь я говорю по-русски.",
        "btn_lang_ru": "🇷🇺 Русский",
        "btn_lang_en": "🇬🇧 English",
        # the bot's profile (setMyCommands, setMyDescription, setMyShortDescription)
        "cmd_start": "Главное меню",
        "cmd_help": "Как пользоваться, цены и оплата",
        "cmd_models": "Модели",
        "cmd_balance": "Баланс",
        "cmd_topup": "Пополнить звёздами",
        "cmd_subscribe": "Подписка",
        "cmd_promo": "Ввести промокод",
        "cmd_invite": "Пригласить друга",
        "cmd_history": "Мои генерации",
        "cmd_language": "Язык · Language",
        "cmd_cancel": "Отменить действие",
        "cmd_paysupport": "Помощь с оплатой",
        "cmd_terms": "Условия",
        "cmd_privacy": "Конфиденциальность",
        "profile_description": "Создаю картинки, видео и звук нейросетями: Nano Banana, Flux, Kling, Sora и "
                               "ещё десятки моделей.\n\n"
                               "• Напишите, что нарисовать, или пришлите фото — начнём сразу.{free}\n"
                               "• Цены: {prices}. Точная цена — до запуска, оплата — только за готовый "
                               "результат.\n"
                               "• Пополнение звёздами Telegram, подписка, промокоды.\n\n"
                               "Нажмите «Запустить».",
        "profile_free": "\n• {limit} генераций в день — бесплатно.",
        "profile_short_description": "Картинки, видео и звук нейросетями. Цены: {prices}.",
        "profile_short_how": " Напишите, что нарисовать.",
    },
    "en": {
        "welcome_bonus": "🎁 A welcome gift: {bonus} is on your balance.",
        "welcome_balance": "💰 Balance: {balance}.",
        "welcome_free": "🆓 Free today: {left} of {limit} generations left (models marked 🎁).",
        "welcome_free_used": "🆓 Today's free generations are used up; {limit} more tomorrow.",
        "welcome_prices": "💵 Prices: {prices}.",
        "welcome_how": "✍️ Just type what to draw or send a photo, or pick below:",
        "welcome_choose": "What would you like to do?",
        "price_kind_image": "images from {price}",
        "price_kind_video": "video from {price}",
        "price_kind_audio": "sound from {price}",
        "btn_try_idea": "🎲 Try an idea",
        "menu_fam_text_to_image": "🎨 Image from text",
        "menu_fam_image_edit": "🖌 Edit a photo",
        "menu_fam_text_to_video": "🎬 Video from text",
        "menu_fam_image_to_video": "📽 Animate a photo",
        "menu_fam_video_to_video": "🎞 Edit a video",
        "menu_fam_avatar": "🗣 Talking avatar",
        "menu_fam_audio": "🎧 Voice and sound",
        "menu_fam_image_upscale": "🔍 Upscale a photo",
        "menu_fam_video_upscale": "📺 Upscale a video",
        "menu_fam_background_removal": "✂️ Remove background",
        "menu_fam_music": "🎵 Music",
        "help_intro": "I create images, videos and sound with neural networks.",
        "help_start": "✍️ To start, type what to draw or send a photo: I will offer what to do with it. "
                      "Or pick what to create in the menu, then a model.",
        "help_free": "🆓 Free: {limit} generations a day on models marked 🎁 ({left} left today).",
        "help_prices": "💵 Prices: {prices}. I show the exact price before it starts, and you pay only for a "
                       "finished result.",
        "help_exact": "💵 I show the exact price before it starts, and you pay only for a finished result.",
        "help_pay": "💳 Paying: /topup to top up with Telegram Stars, /subscribe for a subscription, /promo CODE "
                    "for a promo code, /invite for a bonus per friend.",
        "help_transfer": "🏦 Bank transfer: in Balance.",
        "help_commands": "More: /start for the menu, /models for the models, /balance, /history for your "
                         "generations, /language to change the language, /cancel to cancel what you are doing, "
                         "/paysupport for help with a payment, /terms, /privacy.",
        "language_pick": "Choose the bot's language · Выберите язык бота:",
        "language_set": "✅ I speak English now.",
        "btn_lang_ru": "🇷🇺 Русский",
        "btn_lang_en": "🇬🇧 English",
        "cmd_start": "Main menu",
        "cmd_help": "How it works, prices and paying",
        "cmd_models": "Models",
        "cmd_balance": "Balance",
        "cmd_topup": "Top up with Stars",
        "cmd_subscribe": "Subscription",
        "cmd_promo": "Enter a promo code",
        "cmd_invite": "Invite a friend",
        "cmd_history": "My generations",
        "cmd_language": "Language · Язык",
        "cmd_cancel": "Cancel what you are doing",
        "cmd_paysupport": "Help with a payment",
        "cmd_terms": "Terms",
        "cmd_privacy": "Privacy",
        "profile_description": "I create images, videos and sound with AI: Nano Banana, Flux, Kling, Sora and "
                               "dozens more models.\n\n"
                               "• Type what to draw or send a photo, and we start right away.{free}\n"
                               "• Prices: {prices}. The exact price before it starts; you pay only for a "
                               "finished result.\n"
                               "• Top up with Telegram Stars, a subscription, promo codes.\n\n"
                               "Press Start.",
        "profile_free": "\n• {limit} generations a day for free.",
        "profile_short_description": "Images, videos and sound with AI. Prices: {prices}.",
        "profile_short_how": " Type what to draw.",
    },
}
