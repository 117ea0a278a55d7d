"""The process from outside: /health, /chaos, restarts, escalation to exit, SIGTERM."""

from __future__ import annotations

import signal

import pytest

from tests.procs import FAKE_TOKEN, eventually

pytestmark = pytest.mark.timeout(90)
CHAOS = "chaos-token-for-tests"
HDR = {"X-Chaos-Token": CHAOS}


def env(database_url: str, **extra: str) -> dict[str, str]:
    base = {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": database_url, "CHAOS_TOKEN": CHAOS,
            "HEALTH_RESTART_WINDOW": "1.5", "RESTART_BACKOFF_MIN": "0.01", "RESTART_BACKOFF_MAX": "0.2"}
    base.update(extra)
    return base


async def test_chaos_crash_and_hang_heal_and_sigterm_exits_zero(database_url, spawn) -> None:
    trt = spawn(env(database_url))
    body = await trt.wait_healthy(status="pass")
    assert body["database"]["state"] == "up"
    assert {"db", "correlation_flusher", "work", "janitor", "ingress"} <= set(body["actors"])

    status, _ = await trt.post("/chaos/janitor", {"fault": "crash"})
    assert status == 401
    status, _ = await trt.post("/chaos/janitor", {"fault": "crash"}, {"X-Chaos-Token": "wrong-token-123"})
    assert status == 401
    status, answer = await trt.post("/chaos/nobody", {"fault": "crash"}, HDR)
    assert status == 404, answer
    status, answer = await trt.post("/chaos/janitor", {"fault": "explode"}, HDR)
    assert status == 400, answer

    status, _ = await trt.post("/chaos/janitor", {"fault": "crash"}, HDR)
    assert status == 202
    warned = await trt.wait_healthy(status="warn", timeout=10)
    assert any("janitor" in p for p in warned["problems"])

    async def janitor_restarted() -> dict | None:
        body = await trt.health()
        item = body["actors"]["janitor"]
        return body if item["restarts"] == 1 and item["state"] == "running" else None

    body = await eventually(janitor_restarted, 10, "janitor restarted once")
    assert body["actors"]["janitor"]["last_error"].startswith("ChaosCrash")
    assert isinstance(body["actors"]["janitor"]["last_error_at"], float)
    await trt.wait_healthy(status="pass", timeout=10)

    # a hang past its deadline: the deadline trips, the actor is restarted, the rest keep serving
    status, _ = await trt.post("/chaos/correlation_flusher", {"fault": "hang", "deadline": 0.5}, HDR)
    assert status == 202

    async def flusher_restarted() -> dict | None:
        body = await trt.health()
        item = body["actors"]["correlation_flusher"]
        return body if item["restarts"] == 1 and item["state"] == "running" else None

    body = await eventually(flusher_restarted, 15, "correlation_flusher restarted after the hang")
    assert body["actors"]["correlation_flusher"]["deadline_misses"] == 1
    assert "DeadlineExceeded" in body["actors"]["correlation_flusher"]["last_error"]

    # a hang that also ignores cancellation: only the watchdog can end it
    status, _ = await trt.post("/chaos/janitor", {"fault": "hang", "deadline": 0.3, "ignore_cancel": True}, HDR)
    assert status == 202

    async def janitor_abandoned() -> dict | None:
        body = await trt.health()
        item = body["actors"]["janitor"]
        # (the flusher's rest_for_one restart made a fresh `work`, so janitor counts from 0 again)
        done = item["restarts"] >= 1 and "abandoned" in (item["last_error"] or "") and item["state"] == "running"
        return body if done else None

    body = await eventually(janitor_abandoned, 15, "janitor restarted by its watchdog")
    assert "abandoned" in body["actors"]["janitor"]["last_error"]
    await trt.wait_healthy(status="pass", timeout=10)

    trt.signal(signal.SIGTERM)
    assert await trt.wait_exit(10) == 0
    events = [line["event"] for line in trt.log_lines()]
    assert "stopping" in events and "stopped" in events


async def test_restart_intensity_of_root_ends_the_process_with_a_reason(database_url, spawn) -> None:
    trt = spawn(env(database_url))
    await trt.wait_healthy(status="pass")
    # root allows 5 restarts in 30 s; crashing db (first in rest_for_one) restarts everything
    for attempt in range(6):
        async def accepted(n: int = attempt) -> int | None:
            try:
                status, _ = await trt.post("/chaos/db", {"fault": "crash"}, HDR)
            except OSError:
                return None
            return status if status == 202 else None

        await eventually(accepted, 15, f"crash #{attempt + 1} accepted")
        if attempt < 5:
            await eventually(lambda n=attempt: _db_restarts(trt, n + 1), 15, f"db restart {attempt + 1}")
    assert await trt.wait_exit(20) == 1
    lines = trt.log_lines()
    failed = [line for line in lines if line["event"] == "root_failed"]
    assert failed, trt.log_text()[-2000:]
    assert "more than 5 restarts" in failed[0]["reason"]
    assert "Traceback" not in trt.log_text()


async def _db_restarts(trt, count: int) -> bool:
    body = await trt.health()
    return body["actors"]["db"]["restarts"] >= count and body["actors"]["ingress"]["state"] == "running"


async def test_chaos_is_absent_without_token_and_exit_fault_exits(database_url, spawn) -> None:
    quiet = spawn(env(database_url, CHAOS_TOKEN=""), name="nochaos")
    await quiet.wait_healthy()
    status, _ = await quiet.post("/chaos/janitor", {"fault": "crash"}, HDR)
    assert status == 404
    status, _ = await quiet.get("/")
    assert status == 302

    loud = spawn(env(database_url), name="chaos")
    await loud.wait_healthy()
    status, _ = await loud.post("/chaos/janitor", {"fault": "exit", "code": 3}, HDR)
    assert status == 202
    assert await loud.wait_exit(10) == 3


async def test_unreachable_database_is_reported_not_fatal(spawn) -> None:
    from tests.procs import free_port

    url = f"postgresql://trt:secret-password@127.0.0.1:{free_port()}/trt"
    trt = spawn(env(url))
    body = await trt.wait_healthy(status="fail", timeout=30)
    assert body["database"]["state"] == "down"
    assert "secret-password" not in str(body)
    assert any("database" in p for p in body["problems"])
    assert body["actors"]["db"]["state"] == "running"
    assert "secret-password" not in trt.log_text()
    trt.signal(signal.SIGTERM)
    assert await trt.wait_exit(10) == 0


async def test_a_slow_fault_on_ingress_is_handled_by_ingress_not_mistaken_for_its_http_route(
        database_url, spawn) -> None:
    """Ingress once named its HTTP chaos route `_chaos`, shadowing the actor's fault handler: every
    fault sent to ingress crashed it (AttributeError) instead of doing what was asked."""
    trt = spawn(env(database_url))
    await trt.wait_healthy(status="pass")
    status, _ = await trt.post("/chaos/ingress", {"fault": "slow", "seconds": 0.2}, HDR)
    assert status == 202

    async def slowed() -> list[dict] | None:
        lines = trt.log_lines()
        return [line for line in lines if line.get("event") == "chaos_fault" and line.get("actor") == "ingress"] or None

    await eventually(slowed, 10, "ingress took the slow fault")
    body = await trt.wait_healthy(status="pass", timeout=10)
    assert body["actors"]["ingress"]["restarts"] == 0
    assert body["actors"]["ingress"]["last_error"] is None
