"""The families the bot sells, in menu order: what a user picks first, before a model.

A family fixes what the chat collects (a prompt, a photo, a video, an audio file) and what comes
back (photo, video, audio or document), so the wizard and the delivery can rely on it; each model
names its family and may override the output kind.
"""

from __future__ import annotations

from dataclasses import dataclass

OUTPUTS = ("photo", "video", "audio", "document", "text")  # text: words, not a file (Suno's lyrics), sent as a message
LANGUAGES = ("ru", "en")


@dataclass(frozen=True)
class Text:
    """A user-visible string in every language the bot speaks; Russian is the default."""

    ru: str
    en: str

    def get(self, language: str | None) -> str:
        return self.en if language == "en" else self.ru


@dataclass(frozen=True)
class Family:
    id: str
    title: Text
    output: str  # what its models deliver unless a model says otherwise
    timeout_seconds: int  # how long a task may run before it is given up (API.md: minutes for images, 10-15 for video)
    order: int


# documents for upscales and cut-outs: Telegram recompresses photos (and drops transparency)
FAMILIES: tuple[Family, ...] = (
    Family("text_to_image", Text("Картинка по описанию", "Image from text"), "photo", 300, 10),
    Family("image_edit", Text("Изменить фото", "Edit a photo"), "photo", 300, 20),
    Family("text_to_video", Text("Видео по описанию", "Video from text"), "video", 900, 30),
    Family("image_to_video", Text("Оживить фото", "Video from a photo"), "video", 900, 40),
    Family("video_to_video", Text("Изменить видео", "Edit a video"), "video", 900, 50),
    Family("music", Text("Музыка", "Music"), "audio", 900, 55),  # Suno: songs take minutes (DEDICATED.md §3.5)
    Family("avatar", Text("Говорящий аватар", "Talking avatar"), "video", 900, 60),
    Family("audio", Text("Голос и звуки", "Voice and sound"), "audio", 300, 70),
    Family("image_upscale", Text("Улучшить качество фото", "Upscale a photo"), "document", 300, 80),
    Family("video_upscale", Text("Улучшить качество видео", "Upscale a video"), "video", 900, 90),
    Family("background_removal", Text("Удалить фон", "Remove the background"), "document", 300, 100),
)

BY_ID: dict[str, Family] = {f.id: f for f in FAMILIES}
