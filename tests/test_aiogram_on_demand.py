"""ingest/aiogram_on_demand.py: aiogram's models built when first used validate and serialize
exactly as the ones aiogram builds at import; every one of them can be built that way; the
program's process really runs that way; what the program calls is built before it serves.

Each case runs in a fresh interpreter: this one installed it already (tests/__init__.py), and
building all ~450 models would keep their memory for the rest of the suite."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from ingest import aiogram_on_demand
from tests.procs import FAKE_TOKEN, ROOT

pytestmark = pytest.mark.timeout(120)
PROGRAM = ("actors", "bot", "commands", "generation", "ingest", "kie", "store", "telemetry")

SAMPLES = textwrap.dedent("""
    import json
    MESSAGE = {"message_id": 5, "date": 1700000000, "chat": {"id": 7, "type": "private", "first_name": "Аня"},
               "from": {"id": 7, "is_bot": False, "first_name": "Аня", "language_code": "ru"},
               "text": "/start ref_12", "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}
    UPDATES = [
        {"update_id": 1, "message": MESSAGE},
        {"update_id": 2, "callback_query": {"id": "q", "from": MESSAGE["from"], "chat_instance": "c",
                                            "data": "w:1:ok", "message": MESSAGE}},
        {"update_id": 3, "message": {**MESSAGE, "text": None, "entities": None, "caption": "make it blue",
                                     "photo": [{"file_id": "f", "file_unique_id": "u", "width": 90, "height": 60,
                                                "file_size": 1200}],
                                     "reply_to_message": MESSAGE}},
        {"update_id": 4, "pre_checkout_query": {"id": "p", "from": MESSAGE["from"], "currency": "XTR",
                                                "total_amount": 50, "invoice_payload": "stars:1"}},
        {"update_id": 5, "message": {**MESSAGE, "text": None, "entities": None, "successful_payment": {
            "currency": "XTR", "total_amount": 50, "invoice_payload": "stars:1",
            "telegram_payment_charge_id": "t", "provider_payment_charge_id": "p"}}},
        {"update_id": 6, "my_chat_member": {"chat": MESSAGE["chat"], "from": MESSAGE["from"], "date": 1700000000,
                                            "old_chat_member": {"status": "member", "user": MESSAGE["from"]},
                                            "new_chat_member": {"status": "kicked", "user": MESSAGE["from"],
                                                                "until_date": 0}}},
        {"update_id": 7, "message": {**MESSAGE, "text": None, "entities": None,
                                     "voice": {"file_id": "v", "file_unique_id": "w", "duration": 3}},
         "some_future_field": {"x": 1}},
    ]

    def dumps():
        from aiogram.methods import SendInvoice, SendMessage
        from aiogram.methods.base import Response
        from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, LabeledPrice, Message, Update
        out = [Update.model_validate(u).model_dump(mode="json", exclude_unset=True) for u in UPDATES]
        keyboard = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Да", callback_data="w:1:ok")]])
        sent = SendMessage(chat_id=7, text="<b>hi</b>", reply_markup=keyboard)
        invoice = SendInvoice(chat_id=7, title="t", description="d", payload="p", currency="XTR",
                              prices=[LabeledPrice(label="50", amount=50)])
        out += [method.model_dump(mode="json", exclude_unset=True) for method in (sent, invoice)]
        out.append(Response[Message].model_validate({"ok": True, "result": MESSAGE}).model_dump(mode="json"))
        try:
            Update.model_validate({"update_id": "x", "message": {"chat": 5}})
        except Exception as exc:
            out.append(type(exc).__name__)
        return out
""")


def python(code: str) -> str:
    """Run `code` in a fresh interpreter of this venv at the project's root; its stdout."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_models_built_on_first_use_validate_and_serialize_as_aiograms_own_built_at_import() -> None:
    eager = python(SAMPLES + "print(json.dumps(dumps(), ensure_ascii=False, sort_keys=True))")
    on_demand = python("from ingest import aiogram_on_demand\n"
                       "assert aiogram_on_demand.install()\n"
                       + SAMPLES + "print(json.dumps(dumps(), ensure_ascii=False, sort_keys=True))")
    assert json.loads(on_demand) == json.loads(eager)
    assert json.loads(eager)[-1] == "ValidationError", "a broken update is refused the same way"


def test_every_aiogram_type_method_and_methods_answer_can_be_built_on_first_use() -> None:
    out = python(textwrap.dedent("""
        from ingest import aiogram_on_demand
        assert aiogram_on_demand.install()
        import aiogram.methods, aiogram.types
        from pydantic import BaseModel
        from ingest.bot_api import response_model
        failed, built = [], 0
        exported = [getattr(module, name) for module in (aiogram.types, aiogram.methods) for name in module.__all__]
        for model in [m for m in exported if isinstance(m, type) and issubclass(m, BaseModel)]:
            for target in (model, getattr(model, "__returning__", None)):
                if target is None or isinstance(target, property):
                    continue
                target = model if target is model else response_model(target)
                try:
                    if not target.__pydantic_complete__:
                        target.model_rebuild()
                    built += 1
                except Exception as exc:
                    failed.append(f"{target.__name__}: {type(exc).__name__}: {exc}"[:200])
        print(built)
        print("\\n".join(failed))
    """))
    built, *failed = out.strip().split("\n")
    assert int(built) > 400, out
    assert not [f for f in failed if f], "\n".join(failed)


def test_the_program_imports_with_aiograms_models_unbuilt_and_warm_builds_what_it_calls() -> None:
    out = python(textwrap.dedent("""
        import json
        from ingest import aiogram_on_demand
        assert aiogram_on_demand.install()
        import commands.main, commands.tree, bot.conversation  # the whole program, as run.py loads it
        import aiogram.methods, aiogram.types
        before = {n: getattr(aiogram.types, n).__pydantic_complete__ for n in ("Update", "Message", "User")}
        aiogram_on_demand.warm()
        from ingest.bot_api import response_model
        after = {n: getattr(aiogram.types, n).__pydantic_complete__ for n in aiogram_on_demand.WARM_TYPES}
        after.update({n: getattr(aiogram.methods, n).__pydantic_complete__ for n in aiogram_on_demand.WARM_METHODS})
        for n in aiogram_on_demand.WARM_METHODS:
            after["Response of " + n] = response_model(getattr(aiogram.methods, n).__returning__).__pydantic_complete__
        sticker = aiogram.types.Sticker.__pydantic_complete__
        print(json.dumps({"before": before, "after": after, "sticker": sticker}))
    """))
    seen = json.loads(out)
    assert not any(seen["before"].values()), f"something built aiogram's models before it was used: {seen['before']}"
    assert all(seen["after"].values()), [name for name, done in seen["after"].items() if not done]
    assert seen["sticker"] is False, "only what the program uses is built as a model of its own"


def test_installed_after_aiogram_was_imported_changes_nothing() -> None:
    out = python("import aiogram.types\n"
                 "from ingest import aiogram_on_demand\n"
                 "print(aiogram_on_demand.install(), aiogram.types.Message.__pydantic_complete__)")
    assert out.split() == ["False", "True"]


def _called_methods() -> set[str]:
    """The Bot API methods the program's source calls: bot.<method>(...), message.answer(...),
    query.answer(...), as their aiogram class names."""
    names: set[str] = set()
    for package in PROGRAM:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            names.update(re.findall(r"\bbot\.((?:send|edit|delete|answer|get|set|create|refund|copy|forward)_\w+)\(",
                                    text))
            if re.search(r"\bmessage\.answer\(", text):
                names.add("send_message")
            if re.search(r"\bquery\.answer\(", text):
                names.add("answer_callback_query")
    return {"".join(part.capitalize() for part in name.split("_")) for name in names}


def test_every_method_the_program_calls_is_built_before_it_serves() -> None:
    called = _called_methods()
    assert {"SendMessage", "EditMessageText", "AnswerCallbackQuery", "SendPhoto"} <= called, called
    assert called <= set(aiogram_on_demand.WARM_METHODS), sorted(called - set(aiogram_on_demand.WARM_METHODS))
    import aiogram.methods

    assert all(hasattr(aiogram.methods, name) for name in aiogram_on_demand.WARM_METHODS)


async def test_the_service_runs_with_models_built_on_demand_and_builds_what_it_calls_before_it_starts(
        database_url: str, spawn: Any) -> None:
    trt = spawn({"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": database_url})
    await trt.wait_healthy(status="pass")
    lines = trt.log_lines()
    events = [line["event"] for line in lines]
    built = [line for line in lines if line["event"] == "aiogram_models_built"]
    assert built, "run.py did not install it: every model was built at import, none was left to warm"
    assert built[0]["models"] > 0, "nothing was left to build: aiogram built every model at import"
    assert events.index("aiogram_models_built") < events.index("started")
