"""The admin_transfers screens (issue 18): a placeholder router until its helper fills it."""

from __future__ import annotations

from aiogram import Router


def router() -> Router:
    return Router(name="admin_transfers")
