"""Texts of the referral screens (Russian first, English for English users)."""

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "btn_ref_invite": "👥 Пригласить друзей",
        "btn_ref_share": "📤 Поделиться ссылкой",
        "invite_screen": "👥 Приглашайте друзей\n\n"
                         "Ваша личная ссылка:\n{link}\n\n"
                         "Когда приглашённый друг впервые оплатит пополнение или платную генерацию, "
                         "вы получите {bonus}.\n\n"
                         "Приглашено: {invited}\nОплатили: {paid}\nЗаработано: {earned}",
        "invite_share_text": "Генерирую картинки и видео нейросетями в этом боте — попробуй:",
    },
    "en": {
        "btn_ref_invite": "👥 Invite friends",
        "btn_ref_share": "📤 Share the link",
        "invite_screen": "👥 Invite friends\n\n"
                         "Your personal link:\n{link}\n\n"
                         "When a friend you invited first pays for a top-up or a paid generation, "
                         "you get {bonus}.\n\n"
                         "Invited: {invited}\nPaid: {paid}\nEarned: {earned}",
        "invite_share_text": "I make pictures and videos with neural networks in this bot, try it:",
    },
}
