"""Texts of the actions on a result (bot/routers/actions.py): the follow-up buttons under a
delivered result (extend, another version, 1080p, 4K), the confirmation's line naming the result
an action acts on, the plain answers when it cannot, and history's chain of a result and the jobs
that acted on it.

A button's label is keyed by the catalog's action id (btn_action_<id>); the confirmation's line by
the child model's operation (the second segment of its id, acting_<operation>), with a generic
line for any other."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "btn_action_extend": "⏩ Продлить",
        "btn_action_another": "🔀 Другая версия",
        "btn_action_cover": "🔀 Другая версия",
        "btn_action_remix": "🔀 Другая версия",
        "btn_action_hd1080": "📺 1080p",
        "btn_action_1080p": "📺 1080p",
        "btn_action_uhd4k": "🖥 4K",
        "btn_action_4k": "🖥 4K",
        "btn_action_upscale": "🔍 Улучшить",
        "btn_action_vary": "🔀 Вариация",
        "btn_action_any": "✨ {action}",
        "btn_action_item": "{label} {n}",
        "acting_extend": "⏩ Продление результата №{n}",
        "acting_cover": "🔀 Другая версия результата №{n}",
        "acting_remix": "🔀 Другая версия результата №{n}",
        "acting_1080p": "📺 1080p-версия результата №{n}",
        "acting_4k": "🖥 4K-версия результата №{n}",
        "acting_upscale": "🔍 Улучшение результата №{n}",
        "acting_any": "✨ Действие с результатом №{n}",
        "acting_item": "{line}, файл {item}",
        "act_made_before": ("ℹ️ Такая версия этого результата уже есть: №{n} (в «Мои генерации»). "
                            "Новая стоит столько же."),
        "act_expired": "Этому результату больше 14 дней: сервис генерации его уже не хранит, поэтому продолжить "
                       "его нельзя. Сделайте новую генерацию.",
        "act_not_ready": "Этот результат ещё не доставлен — действие станет доступно, когда он придёт.",
        "act_gone": "Это действие для этого результата больше недоступно.",
        "history_acted_on": "↳ к результату №{n}",
        "history_children": "Продолжения: {items}",
    },
    "en": {
        "btn_action_extend": "⏩ Extend",
        "btn_action_another": "🔀 Another version",
        "btn_action_cover": "🔀 Another version",
        "btn_action_remix": "🔀 Another version",
        "btn_action_hd1080": "📺 1080p",
        "btn_action_1080p": "📺 1080p",
        "btn_action_uhd4k": "🖥 4K",
        "btn_action_4k": "🖥 4K",
        "btn_action_upscale": "🔍 Upscale",
        "btn_action_vary": "🔀 Vary",
        "btn_action_any": "✨ {action}",
        "btn_action_item": "{label} {n}",
        "acting_extend": "⏩ Extending result #{n}",
        "acting_cover": "🔀 Another version of result #{n}",
        "acting_remix": "🔀 Another version of result #{n}",
        "acting_1080p": "📺 1080p version of result #{n}",
        "acting_4k": "🖥 4K version of result #{n}",
        "acting_upscale": "🔍 Upscaling result #{n}",
        "acting_any": "✨ An action on result #{n}",
        "acting_item": "{line}, file {item}",
        "act_made_before": ("ℹ️ This result already has this version: #{n} (in My generations). "
                            "A new one costs the same."),
        "act_expired": "This result is more than 14 days old: the generation service no longer keeps it, so it "
                       "cannot be continued. Please make a new generation.",
        "act_not_ready": "This result has not been delivered yet: the action is available once it arrives.",
        "act_gone": "This action is no longer available for this result.",
        "history_acted_on": "↳ on result #{n}",
        "history_children": "Follow-ups: {items}",
    },
}
