"""A typed answer asked for in the middle of something else (a custom amount of Stars, a message
to support): the state it interrupts is remembered in the FSM data and restored afterwards, so a
confirmation kept while the user tops up or writes to support is still there, one tap away."""

from __future__ import annotations

from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State

from bot.flow import CONFIRM, Wiz

PREVIOUS = "st_prev"  # the FSM state a typed input interrupted (a kept confirmation), restored after it


async def ask_input(state: FSMContext, asking: State) -> None:
    """Wait for a typed value in `asking`, remembering the state it interrupts (its data stays)."""
    previous = await state.get_state()
    if previous != asking.state:
        await state.update_data({PREVIOUS: previous})
    await state.set_state(asking)


async def end_input(state: FSMContext) -> Wiz | None:
    """Back to the interrupted state; the wizard's data when that was a kept confirmation."""
    data = await state.get_data()
    previous = data.pop(PREVIOUS, None)
    await state.set_state(previous)
    await state.set_data(data)
    wiz = Wiz.load(data) if previous is not None else None
    return wiz if wiz is not None and wiz.at == CONFIRM else None
