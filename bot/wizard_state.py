"""The wizard's state in the FSM: its one aiogram state, the data (Wiz, dumped to JSON in
PostgreSQL) and its buttons' data (Press). Apart from bot/flow.py so the screens and the state
they read stay each under the size limit; bot/flow.py re-exports these names for its users."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiogram.fsm.state import State, StatesGroup

from bot import keyboards

FIELD, CONFIRM, CHANGE = "f", "c", "x"


class Wizard(StatesGroup):
    step = State()


@dataclass
class Wiz:
    """The wizard's FSM data: the model, where the user is, and what they chose so far (FileRef
    for files, JobRef for an earlier result), the files of a multi-file step being collected, and
    the terms (paid_with, price) the confirmation showed."""

    model: str
    nonce: str
    at: str = FIELD
    index: int = 0
    values: dict[str, Any] = field(default_factory=dict)
    editing: bool = False  # a field opened from Change: answering it goes back to the confirmation
    collected: list[Any] = field(default_factory=list)
    terms: list[Any] | None = None
    other_models: bool = False  # begun from what the user sent (routers/intake.py): the confirmation offers others
    shown: int | None = None  # the message showing the current screen (its buttons are retired when it moves on)
    parent: int | None = None  # an action on a result (extend, 1080p): the job it acts on

    def dump(self) -> dict[str, Any]:
        data = {"m": self.model, "n": self.nonce, "at": self.at, "i": self.index, "v": self.values,
                "ed": self.editing, "col": self.collected, "terms": self.terms}
        if self.shown is not None:
            data["msg"] = self.shown
        if self.parent is not None:
            data["par"] = self.parent
        return {**data, "om": True} if self.other_models else data

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Wiz | None:
        """The data as written by dump(), or None for anything else (an older layout, a broken row)."""
        try:
            wiz = cls(model=data["m"], nonce=data["n"], at=data["at"], index=data["i"], values=data["v"],
                      editing=data["ed"], collected=data["col"], terms=data["terms"],
                      other_models=data.get("om") is True, shown=data.get("msg"), parent=data.get("par"))
        except (KeyError, TypeError):
            return None
        kinds_ok = (isinstance(wiz.model, str) and isinstance(wiz.nonce, str) and wiz.at in (FIELD, CONFIRM, CHANGE)
                    and isinstance(wiz.index, int) and isinstance(wiz.values, dict)
                    and isinstance(wiz.editing, bool) and isinstance(wiz.collected, list)
                    and (wiz.terms is None or isinstance(wiz.terms, list))
                    and (wiz.shown is None or (isinstance(wiz.shown, int) and not isinstance(wiz.shown, bool)))
                    and (wiz.parent is None or (isinstance(wiz.parent, int) and not isinstance(wiz.parent, bool))))
        return wiz if kinds_ok else None


def new_nonce() -> str:
    return secrets.token_urlsafe(6)


@dataclass(frozen=True, slots=True)
class Press:
    """A wizard button: w:<nonce>:<action>[:<arg>]."""

    nonce: str
    action: str
    arg: str | None

    @classmethod
    def parse(cls, data: str | None) -> Press | None:
        if not data or not data.startswith(keyboards.STEP):
            return None
        parts = data[len(keyboards.STEP):].split(":", 2)
        if len(parts) < 2:
            return None
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def number(self) -> int | None:
        return int(self.arg) if self.arg is not None and self.arg.isdigit() and len(self.arg) < 19 else None
