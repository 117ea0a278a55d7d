"""generation/sent.py: a Confirm-made intent is claimed for sending once per epoch, until its deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from generation.sent import Sent

pytestmark = pytest.mark.timeout(10)
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_a_job_is_claimed_once_in_its_epoch_and_a_new_epoch_starts_empty() -> None:
    sent = Sent()
    assert sent.claim(3, 10, NOW + timedelta(minutes=5))
    assert not sent.claim(3, 10, NOW + timedelta(minutes=5)), "the second caller must not send"
    assert 10 in sent and len(sent) == 1
    assert sent.claim(4, 10, NOW + timedelta(minutes=5)), "another epoch knows nothing of the last"
    assert not sent.claim(4, 10, NOW + timedelta(minutes=5))


def test_a_claim_is_dropped_only_once_its_jobs_deadline_has_passed() -> None:
    sent = Sent()
    sent.claim(1, 10, NOW + timedelta(minutes=1))
    sent.claim(1, 11, NOW + timedelta(minutes=30))
    sent.forget_past(NOW)
    assert 10 in sent and 11 in sent
    sent.forget_past(NOW + timedelta(minutes=2))
    assert 10 not in sent and 11 in sent
