"""A new pool connection walks the hot path's statements once, in a transaction it rolls back.

Why: PostgreSQL compiles a PL/pgSQL function, and plans each statement in it (the triggers' and
the foreign keys' queries too), once per connection, on first use; asyncpg prepares a statement
once per connection too. A Confirm's trt_confirm cost 6-7 ms of the server's CPU on a connection
that had never run it, against 0.7 ms after. A pool grows in a burst, so the first Confirms after
a start, a failover or a quiet spell each paid that on a fresh connection, when the burst was
already short of CPU (bench.generation's A: 50 Confirms at once; with the walk, its
PostgreSQL spent 70 and 90 ms of CPU from the presses to the 18th createTask, against 130 and 100
without, in runs interleaved with it). asyncpg runs `warm` as the pool's `init`, before a new
connection is first handed out; its plans then last as long as the connection, which is kept an
hour idle rather than asyncpg's five minutes. (A connection opened in a burst pays the walk
instead, once, before its first use.)

The walk is the real path under a leader row of its own (WARM_LOCK, this backend's pid) for a
user of bot 0 (no Telegram bot has id 0): a Confirm's update, statement by statement, from its
claim to its done mark (a first contact with a bonus, alone and in a batch of two, the wizard's
and the terms' reads, a free and a paid Confirm, a paid one with createTask's intent, the two
steps to 'submitted', the status message, the wizard cleared), and a known user's /start. Its
last statement's arrays make asyncpg read their types once; a connection that had not walked the
terms' read prepared it mid-burst (8 of the first 18 Confirms in one run of bench.generation A),
and a done mark read the array types there: a round trip and a catalog query each. The rollback
takes every row back, so nothing is ever committed, no sequence-numbered row is seen, and no
NOTIFY is sent. A database without the schema yet (a
pool opened before migrations) or a walk that fails otherwise leaves the connection cold, never
broken: the db actor applies migrations before it opens its pool.

The walk never waits on a lock for long (WAIT_LIMIT, local to its transaction): asyncpg runs it
inside the `acquire()` of whoever asked for the connection, whatever that caller was about to do.
With the inbox held by a long lock (a migration, an operator's LOCK TABLE), the walk's claim
waited as long as the lock did; a trace batch's acquire hung past its actor's 5 s deadline, and
the root's rest_for_one restarted the intake with it (seen as a flaky
tests/test_intake_health.py). Past the limit the walk gives up and the connection is handed out cold.

Measured and not done (issue 21's nineteenth session): the walk six times over, in savepoints, so
that PostgreSQL's plan cache (custom plans for a statement's first five runs on a connection)
settles before a burst. Against one walk, bench.generation A read p99 107 against 97 ms over 3
rounds, and PostgreSQL's CPU in the window was the same (a mean of 73 ms for both).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import asyncpg

from store import accounts, fence, first_contacts, fsm, grants, inbox, jobs, standing
from telemetry import logs

log = logs.get("store")

WARM_BOT = 0
WARM_LOCK = "trt:warmup:{pid}"
WAIT_LIMIT = "200ms"  # the longest the walk waits on any one lock before it leaves the connection cold


class _Done(Exception):
    """Raised at the end of the walk, so the transaction around it rolls back."""


async def warm(conn: asyncpg.Connection) -> bool:
    """Walk the hot path on `conn` and roll it back; whether the walk got to its end."""
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{WAIT_LIMIT}'")  # gone with the rollback
            await _walk(conn)
            raise _Done
    except _Done:
        return True
    except asyncpg.PostgresError as exc:  # no schema yet, or one this walk does not know
        log.info("db_warmup_skipped", extra={"error": type(exc).__name__})
        return False


async def _walk(conn: asyncpg.Connection) -> None:
    pid = await conn.fetchval("SELECT pg_backend_pid()")
    lock, user, epoch = WARM_LOCK.format(pid=pid), int(pid), 1
    await conn.execute(
        """INSERT INTO leader (name, epoch, instance, pid, heartbeat_at, acquired_at)
           VALUES ($1, $2, 'warmup', $3, now(), now())""", lock, epoch, int(pid))
    # a Confirm's update, statement by statement: claimed, its user and wizard read, its terms
    # read, the job confirmed (with createTask's intent, and without) and submitted, its status message
    # recorded, the wizard cleared, done
    await conn.fetchval(fence.CHECK, lock, epoch)
    for take_over in (True, False):
        await conn.fetch(inbox.CLAIM[take_over], WARM_BOT, 1, epoch, lock)
    await conn.fetchrow(first_contacts.FIRST_CONTACT, lock, epoch, WARM_BOT, user, "en", None, 100,
                        accounts.WELCOME_KEY.format(user_id=user))
    await conn.fetch(first_contacts.FIRST_CONTACTS, lock, epoch, WARM_BOT, [user + 1, user + 2], ["en", "en"],
                     [None, None], 100, [accounts.WELCOME_KEY.format(user_id=u) for u in (user + 1, user + 2)])
    key = (WARM_BOT, user, user, 0, "", "default")
    await conn.fetchrow(fsm.READ, *key)
    await conn.fetchrow(standing.STANDING, WARM_BOT, user, date.today())  # a known user's /start
    await conn.fetch(standing.STANDINGS, WARM_BOT, [user, user + 1], date.today())  # several at once
    await grants.standing(conn, WARM_BOT, user, "warmup", 100, day=date.today(), now=datetime.now(UTC))
    free = await conn.fetchrow(jobs.CONFIRM, lock, epoch, WARM_BOT, user, user, f"warmup:{pid}:free", "warmup",
                               "warmup", json.dumps({"prompt": "warmup"}), 100, "free", 0, date.today(), 1, 2, None,
                               "jobs", None)
    row, sent = [await conn.fetchrow(statement, lock, epoch, WARM_BOT, user, user, f"warmup:{pid}:{n}", "warmup",
                                     "warmup", json.dumps({"prompt": "warmup"}), 50, 3, None, "jobs", None,
                                     date.today(), datetime.now(UTC))
                 for n, statement in enumerate((jobs.CONFIRM_MONEY, jobs.CONFIRM_SUBMITTING))]
    for confirmed in (free, row, sent):
        if confirmed is None or confirmed["c_outcome"] != "created":
            raise asyncpg.PostgresError(f"the warm-up's confirm answered {confirmed and confirmed['c_outcome']!r}")
    assert row is not None
    await conn.fetchrow(jobs.step_sql(*jobs.SUBMITTING, 0), row["id"], epoch, lock)
    await conn.fetchrow(jobs.step_sql(*jobs.SUBMITTED, 1), row["id"], epoch, f"warmup-{pid}", lock)
    for only_if_none in (True, False):
        await conn.fetchrow(jobs.step_sql(*jobs.status_message_step(only_if_none), 1), row["id"], epoch, 1, lock)
    await conn.fetchval(fsm.CLEAR, *key)
    await conn.execute(inbox.MARK_DONE, WARM_BOT, [], [])  # asyncpg reads the arrays' types here, once
