"""A generation's story and its secrets, end to end: `run.py serve` makes a picture for a user who
sends a photo (the image-input model, so Telegram file URLs are in play), then `run.py trace`
tells the job's story and the update that confirmed it, and no secret appears in any log line of
the run or in the trace output."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from fakes.kie_api import CREATE_PATH
from store.database import Database
from tests.procs import FAKE_TOKEN, ROOT, eventually
from tests.test_generation_e2e import Fakes, User, env, fakes, generate, serving, store_db  # noqa: F401

pytestmark = pytest.mark.timeout(240)


async def trace(database_url: str, correlation_id: str) -> tuple[int, str]:
    environ = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"} | {"DATABASE_URL": database_url,
                                                                                  "LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(sys.executable, str(Path(ROOT) / "run.py"), "trace", correlation_id,
                                                cwd=ROOT, env=environ, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


def events_of(block: str) -> list[str]:
    """The event names of one timeline, in order (the column after the actor)."""
    return [line.lstrip(" !").split()[3] for line in block.splitlines()[1:] if " s  " in line]


async def test_a_generations_trace_tells_its_story_and_no_log_line_holds_a_secret(
        database_url: str, store_db: Database, fakes: Fakes, spawn: Any) -> None:  # noqa: F811
    telegram, kie = fakes
    proc = await serving(spawn, database_url, telegram, kie, CHAOS_TOKEN="e2e-chaos-token-0123456789")
    user = User(telegram, 61_101)
    generation = await generate(user, kie, store_db, "google/nano-banana-edit", "make it a watercolor")
    job = generation.job

    last: list[str] = []

    async def told() -> str | None:
        code, out = await trace(database_url, f"j{job.id}")
        last.append(out)
        return out if code == 0 and "job_delivered" in out and "handler_end" in out else None

    out = await eventually(told, 60, f"the job's trace with its delivery and the confirming update's end; "
                                     f"last: {last[-1:]}")
    print(out)
    job_block, _, update_block = out.partition("\n\n")
    assert job_block.startswith(f"trace j{job.id}: "), out
    steps = events_of(job_block)
    for earlier, later in [("confirmed", "kie.create_task"), ("kie.create_task", "job_submitted"),
                           ("job_submitted", "telegram.sendPhoto"), ("telegram.sendPhoto", "job_delivered")]:
        assert earlier in steps and later in steps and steps.index(earlier) < steps.index(later), (earlier, later, out)
    assert steps.index("kie.upload") < steps.index("kie.create_task"), "the photo went to the upload service first"
    assert "status=ok" in next(line for line in job_block.splitlines() if "telegram.sendPhoto" in line)

    assert update_block.startswith("trace u"), f"the confirming update's story follows the job's: {out}"
    story = events_of(update_block)
    assert story[:3] == ["received", "claimed", "handler_start"], out
    assert "job_confirmed" in story and story[-1] == "handler_end", out
    assert "outcome=ok" in update_block.splitlines()[-1], out

    code, missing = await trace(database_url, "u999999999")
    assert code == 1 and "no trace for 'u999999999'" in missing

    [create] = kie.calls(CREATE_PATH)
    callback_secret = urlsplit(create.json["callBackUrl"]).path.split("/")[2]
    secrets = {"bot token": FAKE_TOKEN, "token's secret half": FAKE_TOKEN.split(":")[1],
               "webhook secret": proc.env["WEBHOOK_SECRET"], "KIE key": proc.env["KIE_API_KEY"],
               "chaos token": proc.env["CHAOS_TOKEN"], "KIE callback secret": callback_secret,
               "Telegram file URL": "/file/bot"}
    text = proc.log_text() + out
    assert len(proc.log_lines()) > 20, "the run logged"
    leaked = [name for name, secret in secrets.items() if secret in text]
    assert not leaked, f"secrets in the logs or the trace: {leaked}"
