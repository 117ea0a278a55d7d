"""aiogram's Telegram types and methods built when first used, not all of them at import.

Why: `aiogram.types` ends by rebuilding each of its ~450 pydantic models (types and methods)
against one namespace of all of them, and each model's validator then holds its own copy of
every model it can reach (a Message reaches most of them). That was 165 MB of the process's
190 MB before it served anything, and 1.5 s of its start, for a bot that validates Updates and
calls about twenty methods. aiogram already declares its models `defer_build`; `install()`,
called before anything imports aiogram, lets that rebuild pass and puts the names of that
namespace in each of aiogram's type and method modules (the names they import only for type
checkers), so pydantic builds a model from the same schema the first time it is used.
`warm()` then builds what every process uses (the Update, the methods this program calls and
their responses) before it serves, so no update pays for it. tests/test_aiogram_on_demand.py
builds every model this way (one that could not be built would fail there, not at a user's
update) and checks that every method this program calls is warmed.

Only the program's own process installs it (run.py, and tests/__init__.py for the code the tests
run in-process); the stock aiogram apps in bench/ build at import, as aiogram does.
"""

from __future__ import annotations

import importlib
import sys
import time
from typing import Any

from telemetry import logs

log = logs.get("app")

# The methods this program calls (tests/test_aiogram_on_demand.py finds every call in its source)
WARM_METHODS = (
    "AnswerCallbackQuery", "AnswerPreCheckoutQuery", "CopyMessage", "CreateInvoiceLink", "DeleteMessage",
    "DeleteWebhook", "EditMessageReplyMarkup", "EditMessageText", "EditUserStarSubscription", "GetFile", "GetMe",
    "GetMyCommands", "GetMyDescription", "GetMyShortDescription", "GetUpdates", "GetWebhookInfo", "RefundStarPayment",
    "SendAudio", "SendChatAction", "SendDocument", "SendInvoice", "SendMessage", "SendPhoto", "SendVideo",
    "SendVoice", "SetMyCommands", "SetMyDescription", "SetMyShortDescription", "SetWebhook",
)
WARM_TYPES = ("Update", "InlineKeyboardMarkup", "BotCommand", "LabeledPrice")

_installed: list[bool] = []


def install() -> bool:
    """Before aiogram is first imported: its models are built on first use. False (and nothing
    changes) when aiogram was imported already: then they were built at import, as aiogram does."""
    if _installed or "aiogram.types" in sys.modules:
        return bool(_installed)
    from pydantic import BaseModel

    rebuild = BaseModel.__dict__["model_rebuild"]
    original = rebuild.__func__
    namespace: dict[str, Any] = {}

    def passed(cls: type[BaseModel], *, force: bool = False, raise_errors: bool = True,
               _parent_namespace_depth: int = 2, _types_namespace: Any = None) -> bool | None:
        if _types_namespace and not force:  # aiogram's rebuild of every model, at its import
            namespace.update(_types_namespace)
            return None
        done: bool | None = original(cls, force=force, raise_errors=raise_errors,
                                     _parent_namespace_depth=_parent_namespace_depth + 1,
                                     _types_namespace=_types_namespace)
        return done

    # pydantic's own classmethod swapped for the length of one import: mypy forbids assigning a method
    BaseModel.model_rebuild = classmethod(passed)  # type: ignore[method-assign, assignment]
    try:
        for package in ("aiogram.types", "aiogram.methods"):
            importlib.import_module(package)
    finally:
        BaseModel.model_rebuild = rebuild  # type: ignore[method-assign]  # pydantic's own, put back
    # the names aiogram's modules import only for type checkers, in each module where pydantic looks
    # for them: a model's forward references resolve in its own module, whichever model it is part of
    # (a Response[...] made at run time included)
    for name, module in list(sys.modules.items()):
        if name.startswith(("aiogram.types.", "aiogram.methods.")) and module is not None:
            for key, value in namespace.items():
                module.__dict__.setdefault(key, value)
    _installed.append(True)
    return True


def warm() -> None:
    """Build what every process uses, once, before it serves (a no-op when built at import)."""
    import aiogram.methods
    import aiogram.types

    from ingest.bot_api import response_model

    started = time.perf_counter()
    built = 0
    for name in WARM_TYPES:
        built += _build(getattr(aiogram.types, name))
    for name in WARM_METHODS:
        method = getattr(aiogram.methods, name)
        built += _build(method)
        built += _build(response_model(method.__returning__))
    log.info("aiogram_models_built", extra={"models": built, "seconds": round(time.perf_counter() - started, 3)})


def _build(model: Any) -> int:
    if model.__pydantic_complete__:
        return 0
    model.model_rebuild()
    return 1
