"""The log line contract (telemetry/logs.py): the keys shippers and the runbook rely on, the text
format for humans, secrets masked, and a storm of one warning kept to a few lines and a count."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from telemetry import logs

pytestmark = pytest.mark.timeout(30)
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    logs.setup("json", "INFO", secrets=["webhook-secret-value"], instance="web-1", stream=stream)
    yield stream
    root.handlers[:] = saved
    root.setLevel(level)
    logs.Process.instance = logs.Process.role = None
    logs.redact.set([])


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_json_line_carries_the_contract_keys(out: io.StringIO) -> None:
    logs.set_role("ACTIVE", 7)
    token = logs.correlation_id.set("u42")
    try:
        logs.get("dispatcher").info("update_handled", extra={"duration": 0.012, "actor": "dispatcher"})
    finally:
        logs.correlation_id.reset(token)
    [line] = lines(out)
    assert {k: line[k] for k in ("level", "event", "actor", "instance", "role", "correlation_id", "duration")} == {
        "level": "info", "event": "update_handled", "actor": "dispatcher", "instance": "web-1", "role": "ACTIVE",
        "correlation_id": "u42", "duration": 0.012}
    assert str(line["ts"]).endswith("Z") and "T" in str(line["ts"])


def test_the_text_format_is_one_readable_line(out: io.StringIO) -> None:
    logs.setup("text", "INFO", instance="web-1", stream=out)
    token = logs.correlation_id.set("j5")
    try:
        logs.get("kie_poller").warning("job_ended", extra={"job_id": 5, "actor": "kie_poller"})
    finally:
        logs.correlation_id.reset(token)
    text = out.getvalue().strip()
    assert "\n" not in text and "WARNING" in text and "[kie_poller] j5 job_ended job_id=5" in text


def test_secrets_and_anything_shaped_like_a_bot_token_are_masked(out: io.StringIO) -> None:
    log = logs.get("poller")
    log.warning("fetch_failed", extra={"error_text": f"GET https://api.telegram.org/file/bot{TOKEN}/photos/a.jpg"})
    log.warning("setwebhook_failed", extra={"error_text": "secret_token=webhook-secret-value refused"})
    try:
        raise RuntimeError(f"https://api.telegram.org/bot{TOKEN}/getMe")
    except RuntimeError:
        log.exception("crashed")
    text = out.getvalue()
    assert TOKEN not in text and TOKEN.split(":")[1] not in text and "webhook-secret-value" not in text
    assert text.count("***") == 3


def test_a_storm_of_one_warning_is_a_few_lines_then_a_count() -> None:
    clock = Clock()
    guard = logs.StormGuard(burst=5, window=10.0, clock=clock)
    stream = io.StringIO()
    handler = logs.GuardedHandler(stream, guard)
    handler.setFormatter(logs.JsonFormatter())
    log = logging.getLogger("trt.storm")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    try:
        for _ in range(100):
            log.warning("webhook_commit_failed", extra={"error_text": "connection refused"})
        log.warning("webhook_commit_failed", extra={"error_text": "disk full"})  # another reason: its own lines
        log.info("update_handled")  # info is never held back
        shown = [json.loads(x) for x in stream.getvalue().splitlines()]
        assert [x["error_text"] for x in shown if x["event"] == "webhook_commit_failed"] == \
            ["connection refused"] * 5 + ["disk full"]
        assert shown[-1]["event"] == "update_handled"

        clock.now += 10.0  # the window is over: how many were held back is said once, before its next line
        before = len(stream.getvalue().splitlines())
        log.warning("webhook_commit_failed", extra={"error_text": "connection refused"})
        new = [json.loads(x) for x in stream.getvalue().splitlines()[before:]]
        assert new[-1]["event"] == "webhook_commit_failed"
        said = [x.get("suppressed") for x in new if x["event"] == "log_suppressed" or "suppressed" in x]
        assert said == [95], new

        for _ in range(20):  # a storm that simply stops is summed up by the next line of any kind
            log.warning("apology_failed", extra={"error_text": "timeout"})
        clock.now += 11.0
        log.info("something_else")
        tail = [json.loads(x) for x in stream.getvalue().splitlines()[-2:]]
        assert tail[0]["event"] == "log_suppressed" and tail[0]["repeated_event"] == "apology_failed"
        assert tail[0]["suppressed"] == 15 and tail[1]["event"] == "something_else"
    finally:
        log.removeHandler(handler)
        log.propagate = True
        log.setLevel(logging.NOTSET)


def test_critical_lines_are_never_held_back() -> None:
    guard = logs.StormGuard(burst=1, window=60.0, clock=Clock())
    record = logging.LogRecord("trt.root", logging.CRITICAL, "", 0, "root_failed", None, None)
    assert all(guard.admit(record) for _ in range(10))
