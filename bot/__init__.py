"""The Telegram side: aiogram client, routers, keyboards and texts."""
