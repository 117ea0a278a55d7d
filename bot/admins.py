"""Who may run the shop: ADMIN_IDS. Admin routers filter on IsAdmin, so anyone else's /admin or
admin button falls through to the normal screens (the fallback), never to an error that says
an admin panel exists."""

from __future__ import annotations

from typing import Any

from aiogram.filters import Filter
from aiogram.types import TelegramObject

from bot.services import Services


def is_admin(services: Services | None, user_id: int | None) -> bool:
    return services is not None and user_id is not None and user_id in services.settings.admin_ids


class IsAdmin(Filter):
    async def __call__(self, event: TelegramObject, services: Services | None = None, **_: Any) -> bool:
        user = getattr(event, "from_user", None)
        return is_admin(services, getattr(user, "id", None))
