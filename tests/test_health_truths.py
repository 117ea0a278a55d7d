"""/health tells the truth: an ACTIVE instance that does not consume, claims nobody holds, an
update running past its deadline. The checks are pure functions over /health's actor sections
(tested here with the shapes the actors report), and the claim query runs on a real PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest

from store import inbox
from store.database import Database
from store.inbox import Incoming
from supervisor import State
from telemetry.health import idle_leader

pytestmark = pytest.mark.timeout(60)
RUNNING = State.RUNNING.value


def actors(role: str = "ACTIVE", **dispatcher: Any) -> dict[str, dict[str, Any]]:
    section = {"state": RUNNING, "consuming": True, "idle_seconds": None, "parked_seconds": None}
    section.update(dispatcher)
    return {"lock_keeper": {"state": RUNNING, "role": role}, "dispatcher": section}


def test_an_active_instance_whose_dispatcher_does_not_consume_fails_after_the_grace() -> None:
    assert idle_leader(actors(consuming=False, idle_seconds=1.0), grace=2.5) == []
    [problem] = idle_leader(actors(consuming=False, idle_seconds=7.0), grace=2.5)
    assert "has not consumed for 7s" in problem


def test_a_dispatcher_parked_without_a_lease_while_active_fails_after_the_grace() -> None:
    [problem] = idle_leader(actors(parked_seconds=9.0), grace=2.5)
    assert "waited 9s for a valid lease" in problem


def test_a_passive_instance_or_a_restarting_dispatcher_is_not_an_idle_leader() -> None:
    assert idle_leader(actors("PASSIVE", consuming=False, idle_seconds=100.0), grace=2.5) == []
    assert idle_leader(actors(state="restarting", consuming=False, idle_seconds=100.0), grace=2.5) == []
    assert idle_leader({"lock_keeper": {"role": "ACTIVE"}}, grace=2.5) == []  # polling tree without a token


async def test_the_inbox_depth_sees_claims_held_by_another_session_and_their_age(db: Database) -> None:
    await db.require().execute("INSERT INTO leader (name, epoch, instance, pid, heartbeat_at, acquired_at) "
                               "VALUES ('trt:leader:7', 1, 't', 1, now(), now())")
    rows = [Incoming(n, "message", 1, json.dumps({"update_id": n})) for n in (1, 2, 3, 4)]
    await inbox.append_batch(db, 7, "test", rows)
    await inbox.claim(db, "trt:leader:7", 1, 7, 2, "stopped-session")  # 1 and 2
    await inbox.claim(db, "trt:leader:7", 1, 7, 1, "live-session")  # takes over 1: the others stay
    await db.require().execute("UPDATE inbox SET claimed_at = now() - interval '90 seconds' "
                               "WHERE claimed_by = 'stopped-session'")
    depth = await inbox.depth(db, 7, "live-session")
    assert (depth.pending, depth.foreign_claims) == (4, 1)
    assert 89 <= depth.foreign_claim_age < 120
    assert (await inbox.depth(db, 7, "stopped-session")).foreign_claims == 1  # the live one's claim
    assert (await inbox.depth(db, 8, "live-session")).pending == 0, "another bot's inbox is apart"


async def test_a_session_takes_over_foreign_claims_once_then_claims_only_what_nobody_holds(db: Database) -> None:
    await db.require().execute("INSERT INTO leader (name, epoch, instance, pid, heartbeat_at, acquired_at) "
                               "VALUES ('trt:leader:9', 1, 't', 1, now(), now())")
    rows = [Incoming(n, "message", n, json.dumps({"update_id": n})) for n in range(1, 7)]
    await inbox.append_batch(db, 9, "test", rows)
    await inbox.claim(db, "trt:leader:9", 1, 9, 2, "dead-session")  # 1 and 2, then it stopped
    first = await inbox.claim(db, "trt:leader:9", 1, 9, 3, "live-session")
    assert [c.update_id for c in first] == [1, 2, 3], "the oldest first, the dead session's claims taken over"
    later = await inbox.claim(db, "trt:leader:9", 1, 9, 2, "live-session", take_over=False)
    assert [c.update_id for c in later] == [4, 5], "only unclaimed rows: its own claims are not read again"
    assert await db.require().fetchval("SELECT count(*) FROM pg_indexes WHERE indexname = 'inbox_unclaimed'") == 1
