"""A Suno song from Confirm to the two songs delivered, through a real `run.py serve`.

    .venv/bin/python -m bench.suno [--runs 20] [--concurrency 4] [--seconds 6]

Each run: a user walks the real wizard by posted updates to the confirmation of Suno's first model
a user can pick (its buttons read from the fake Telegram, as bench.generation does), then Confirm
is posted and timed. The fake KIE (in this process) answers createTask at once and plays the task
as KIE documents a Suno generation (DEDICATED.md §3.3): a callback at each stage, text (the
lyrics), first (one song), complete (both songs), at --marks of --seconds (KIE publishes the
stages' order, not their timings: §3.5; the record moves through PENDING, TEXT_SUCCESS,
FIRST_SUCCESS, SUCCESS on the same marks).
The fake Telegram runs in its own process (as in bench.e2e) and stamps each call with
time.monotonic(), the clock this process reads (one clock for every process on this machine).

Figures, p50/p99 over the runs: Confirm posted -> createTask at KIE (POST /api/v1/generate),
-> the first stage's callback leaving KIE, -> the second song's sendAudio at Telegram (both songs
delivered); and, beside it, how long after KIE's complete callback the second song arrived.
Beside them, bench.e2e's anchor, small: /start posted -> the menu's sendMessage, one chat at a time,
on this TRT and on the stock aiogram app (bench.stock_app) against the same fake Telegram. A
generation has no counterpart in the stock app, so the song's rows have no stock line (the output
says so). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bench.generation import KIE_KEY, PACING, User, driving, machine, ms, telegram_calls
from bench.harness import HEADERS, database, fake_telegram, fresh_database, rss_mb, stock, trt, update_body, workdir
from bot import keyboards
from catalog.loader import shipped
from fakes.kie_api import FakeKie
from tests.procs import free_port

CREATE = "/api/v1/generate"
FIRST_CHAT = 910_001
ANCHOR_RUNS = 30


def suno_model() -> str:
    """Suno's first model a user can pick (the menu's order) whose operation is generate."""
    found = [m for m in shipped().models if m.endpoint == "suno" and m.id.split("/")[1] == "generate"]
    if not found:
        raise SystemExit("the catalog has no Suno model yet")
    return found[0].id


class Walker(User):
    """A bench user who walks any model's wizard: each step answered as it comes (a text for a
    prompt, the first option, Skip, Done) until the confirmation's Confirm shows."""

    async def to_confirmation_of(self, model_id: str) -> tuple[str, int]:
        model = shipped().model(model_id)
        await self.say("/start")
        await self.press(*await self.button(rf"^{re.escape(keyboards.family_data(model.family))}$"))
        await self.press(*await self.button(rf"^{re.escape(keyboards.model_data(model_id))}$"))
        await self.press(*await self.button(rf"^{re.escape(keyboards.start_data(model_id))}$"))
        for _ in range(15):
            found, message_id = await self.screen()
            wizard = [d for d in found if d.startswith("w:")]
            action = {d.split(":")[2]: d for d in reversed(wizard)}
            if "ok" in action:
                return action["ok"], message_id
            pick = next((d for d in wizard if d.split(":")[2] in ("o", "b")), None) or action.get("skip") \
                or action.get("done")
            if pick is not None:
                await self.press(pick, message_id)
            else:
                await self.say(f"a song for chat {self.chat}")
        raise RuntimeError(f"chat {self.chat}: no confirmation after 15 steps")

    async def screen(self, timeout: float = 60.0) -> tuple[list[str], int]:
        """The next message shown (sent or edited in) with wizard buttons: its buttons and id."""
        from bench.generation import buttons, message_id_of

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            calls = await telegram_calls(self.session, self.api, chat_id=str(self.chat))
            for index in range(self.seen, len(calls)):
                found = buttons(calls[index])
                if calls[index]["status"] == 200 and any(d.startswith("w:") for d in found):
                    self.seen = index + 1
                    return found, message_id_of(calls[index])
            await asyncio.sleep(0.2)
        raise RuntimeError(f"chat {self.chat}: no wizard screen within {timeout:g}s")


async def one_run(user: Walker, model_id: str, kie: FakeKie, wall: float) -> dict[str, float] | None:
    """One song: the walk (not timed), Confirm (timed from its post), and the stamps of its way."""
    data, message_id = await user.to_confirmation_of(model_id)
    await asyncio.sleep(0.5)  # the wizard's last answers settle
    posted = time.monotonic()
    await user.press(data, message_id)
    deadline = posted + 120
    songs: list[float] = []
    while time.monotonic() < deadline:
        sent = await telegram_calls(user.session, user.api, method="sendAudio", chat_id=str(user.chat))
        songs = [float(c["at"]) for c in sent if c["status"] == 200]
        if len(songs) >= 2:
            break
        await asyncio.sleep(0.2)
    if len(songs) < 2:
        return None
    prompt_of = f"chat {user.chat}"
    create = next((c for c in kie.calls(CREATE) if prompt_of in str(c.json)), None)
    task = next((t for t in kie.tasks.values() if prompt_of in str(t.input)), None)
    if create is None or task is None:
        return None
    attempts = sorted(kie.callbacks_for(task.task_id), key=lambda a: a.at)
    complete = [a for a in attempts if getattr(a, "stage", None) in ("complete", None)]
    return {"create": create.at - posted,
            "first_stage": (attempts[0].at - wall) - posted if attempts else float("nan"),
            "delivered": sorted(songs)[1] - posted,
            "after_complete": sorted(songs)[1] - ((complete[0].at - wall) if complete else float("nan"))}


async def anchor(session: aiohttp.ClientSession, base: str, api: str, first_chat: int, count: int) -> list[float]:
    """bench.e2e's anchor, small: /start posted to the webhook -> the menu's sendMessage at the fake
    Telegram, one chat at a time (`count` chats), seconds each."""
    out: list[float] = []
    for number in range(count):
        chat = first_chat + number
        posted = time.monotonic()
        async with session.post(base + "/webhook", data=update_body(90_000_000 + chat, chat),
                                headers=HEADERS) as response:
            await response.read()
        deadline = posted + 30
        while time.monotonic() < deadline:
            sent = await telegram_calls(session, api, method="sendMessage", chat_id=str(chat))
            arrived = [float(c["at"]) for c in sent if c["status"] == 200]
            if arrived:
                out.append(arrived[0] - posted)
                break
            await asyncio.sleep(0.02)
    return out


class MonotonicKie(FakeKie):
    """The fake KIE whose recorded requests carry time.monotonic() (the fake Telegram's clock)."""

    async def _record(self, request: Any) -> Any:
        call = await super()._record(request)
        call.at = time.monotonic()
        return call


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.suno")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=6.0, help="a task's length at the fake KIE, its stages "
                                                                    "spread over it")
    parser.add_argument("--marks", type=float, nargs=2, default=(0.5, 0.75), metavar=("TEXT", "FIRST"),
                        help="when the text and first stages call back, as fractions of --seconds")
    args = parser.parse_args()
    model_id = suno_model()
    with workdir() as tmp:
        async with database(tmp) as server_url, fake_telegram(tmp) as api:
            await run(tmp, server_url, api, model_id, args.runs, args.concurrency, args.seconds,
                      (args.marks[0], args.marks[1]))


async def run(tmp: Path, server_url: str, api: str, model_id: str, runs: int, concurrency: int,
              seconds: float, marks: tuple[float, float]) -> None:
    print(f"Suno: Confirm -> the two songs delivered, {runs} runs, {concurrency} at a time ({model_id}; the fake "
          f"KIE's task lasts {seconds:g} s and calls back text at {marks[0] * seconds:g} s, first at "
          f"{marks[1] * seconds:g} s, complete at {seconds:g} s)", flush=True)
    print(f"  {machine()}", flush=True)
    db = await fresh_database(server_url, "trt_bench_suno")
    port = free_port()
    wall = time.time() - time.monotonic()  # the fake KIE stamps callback attempts with the wall clock
    extra = {"KIE_API_KEY": KIE_KEY, "PORT": str(port), "WEBHOOK_BASE_URL": f"http://127.0.0.1:{port}",
             "WELCOME_BONUS": "1000000", **PACING}
    async with MonotonicKie(duration=seconds, stage_marks=marks) as kie, \
            trt(tmp, db, api, KIE_API_BASE=kie.base_url, KIE_UPLOAD_BASE=kie.base_url,
                DOWNLOAD_TRUSTED_HOSTS=urlsplit(kie.base_url).netloc, **extra) as app:
        await driving(app)
        results: list[dict[str, float]] = []
        lost = 0
        gate = asyncio.Semaphore(concurrency)
        connector = aiohttp.TCPConnector(limit=4 * concurrency)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
            async def one(number: int) -> None:
                nonlocal lost
                async with gate:
                    user = Walker(session, app.base, api, FIRST_CHAT + number)
                    with contextlib.suppress(RuntimeError):
                        found = await one_run(user, model_id, kie, wall)
                        if found is not None:
                            results.append(found)
                            return
                    lost += 1
            await asyncio.gather(*(one(n) for n in range(runs)))
            trt_start = await anchor(session, app.base, api, FIRST_CHAT + 10_000, ANCHOR_RUNS)
        rss = rss_mb(app.pid)
    async with stock(tmp, api) as stock_app, aiohttp.ClientSession() as session:
        stock_start = await anchor(session, stock_app.base, api, FIRST_CHAT + 20_000, ANCHOR_RUNS)
    print(f"  Confirm posted -> createTask at KIE          {ms([r['create'] for r in results])}", flush=True)
    print(f"  Confirm posted -> the first stage's callback {ms([r['first_stage'] for r in results])}", flush=True)
    print(f"  Confirm posted -> both songs delivered       {ms([r['delivered'] for r in results])}", flush=True)
    print(f"    KIE's complete callback -> the second song  {ms([r['after_complete'] for r in results])}",
          flush=True)
    print("    a generation has no counterpart in the stock app: the song's rows have no stock aiogram line",
          flush=True)
    print(f"  the anchor (bench.e2e's row, one chat at a time, {ANCHOR_RUNS} chats): /start posted -> the menu's "
          f"sendMessage", flush=True)
    print(f"    TRT                                        {ms(trt_start)}", flush=True)
    print(f"    stock aiogram                              {ms(stock_start)}", flush=True)
    print(f"  runs measured {len(results)} of {runs} ({lost} lost); TRT RSS {rss:.1f} MB after the runs; "
          f"{machine()}", flush=True)

if __name__ == "__main__":
    asyncio.run(main())
