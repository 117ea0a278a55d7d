"""/metrics is valid Prometheus text: parsed by prometheus_client, linted by promtool when present."""

from __future__ import annotations

import asyncio
import shutil

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.procs import FAKE_TOKEN

pytestmark = pytest.mark.timeout(90)

EXPECTED = {
    "trt_build_info", "trt_actor_restarts", "trt_actor_state", "trt_supervisor_escalations",
    "trt_mailbox_depth", "trt_mailbox_capacity", "trt_mailbox_dropped", "trt_dead_letters",
    "trt_message_handling_seconds", "trt_actor_deadline_misses", "trt_event_loop_lag_seconds",
    "process_resident_memory_bytes", "trt_database_up", "trt_http_requests", "trt_gc_frozen_objects",
    "trt_gc_pause_seconds", "trt_health_status",
}


async def test_metrics_parse_and_lint(database_url, spawn) -> None:
    trt = spawn({"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": database_url, "CHAOS_TOKEN": "chaos-token-1",
                 "RESTART_BACKOFF_MIN": "0"})
    await trt.wait_healthy(status="pass")
    status, _ = await trt.post("/chaos/janitor", {"fault": "crash"}, {"X-Chaos-Token": "chaos-token-1"})
    assert status == 202

    async def restarted() -> bool:
        return (await trt.health())["actors"]["janitor"]["restarts"] == 1

    from tests.procs import eventually

    await eventually(restarted, 10, "janitor restart")
    status, text = await trt.get("/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(families) >= EXPECTED, EXPECTED - set(families)
    restarts = {s.labels["actor"]: s.value for s in families["trt_actor_restarts"].samples
                if s.name == "trt_actor_restarts_total"}
    assert restarts.get("janitor") == 1.0
    running = [s for s in families["trt_actor_state"].samples
               if s.labels == {"actor": "janitor", "state": "running"}]
    assert running and running[0].value == 1.0
    verdict = {s.labels["status"]: s.value for s in families["trt_health_status"].samples}
    assert verdict == {"pass": 0.0, "warn": 1.0, "fail": 0.0}, "a restart within the window is a warn, as /health says"
    assert (await trt.health())["status"] == "warn"
    assert FAKE_TOKEN not in text and FAKE_TOKEN.split(":")[1] not in text
    frozen = families["trt_gc_frozen_objects"].samples[0].value
    assert frozen > 10_000, "the startup heap (aiogram, pydantic, the app) is frozen out of full collections"
    full = [s.value for s in families["trt_gc_pause_seconds"].samples
            if s.name == "trt_gc_pause_seconds_count" and s.labels["generation"] == "2"]
    assert full and full[0] >= 1, "the collection before the freeze is timed like any other"
    started = [line for line in trt.log_lines() if line.get("event") == "started"]
    assert started and started[0]["frozen_objects"] == frozen

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus); the parser check above passed")
    proc = await asyncio.create_subprocess_exec(promtool, "check", "metrics", stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(text.encode()), 30)
    assert proc.returncode == 0, out.decode()
