"""The money invariants, checked from the outside: what the tests assert after every test that
moves money, and what a soak's checker asserts after chaos. Each violation is one readable line.

- every account is what its ledger entries add up to (balance and held);
- no account has a negative held or available balance;
- every job holds what its ledger says (hold less capture or release), and an account's held is
  the sum of its jobs' holds: no money held by nothing;
- a paid job has exactly one hold of its price, then exactly one capture (succeeded) or release
  (failed, timed out) of it; a running one has neither; an unpaid job has no hold at all;
- a finished job holds nothing;
- a job any of whose results reached the user (job_deliveries.reached) is a success, and if paid
  captured: a delivered result is never refunded;
- money in: every Stars payment credited exactly once, by what its order said (a subscription
  charge with no monthly credit: nothing), and every Stars credit names a recorded payment; a
  refunded payment reversed exactly once, by what it credited; a referral bonus only for a
  linked pair, at most once, and recorded on the link;
- free generations by entitlement: a job paid with a promo grant or a plan's allowance has
  exactly one use of that kind (and no other job has one); a grant is used at most its count;
  a plan's allowance of a model is never exceeded on a day (failed and timed-out jobs gave nothing,
  so they do not count);
- optionally: no user used more free generations a day than the limit, or runs more jobs at once.
"""

from __future__ import annotations

from store import promo, transfers
from store.database import Database


async def check(db: Database, bot_id: int | None = None, *, free_daily_limit: int | None = None,
                max_active: int | None = None) -> list[str]:
    """Violations over one bot's rows (every bot's when `bot_id` is None); empty when all hold."""
    pool = db.require()
    problems: list[str] = []
    for r in await pool.fetch(
            """SELECT a.bot_id, a.user_id, a.balance, a.held, COALESCE(l.balance, 0) AS l_balance,
                      COALESCE(l.held, 0) AS l_held, COALESCE(j.held, 0) AS j_held
                 FROM accounts a
                 LEFT JOIN (SELECT bot_id, user_id, sum(balance_delta) AS balance, sum(held_delta) AS held
                              FROM ledger GROUP BY bot_id, user_id) l USING (bot_id, user_id)
                 LEFT JOIN (SELECT bot_id, user_id, sum(held) AS held FROM jobs GROUP BY bot_id, user_id) j
                        USING (bot_id, user_id)
                WHERE ($1::bigint IS NULL OR a.bot_id = $1)""", bot_id):
        who = f"user {r['user_id']} (bot {r['bot_id']})"
        if (r["balance"], r["held"]) != (r["l_balance"], r["l_held"]):
            problems.append(f"{who}: account balance/held {r['balance']}/{r['held']} but the ledger adds up to "
                            f"{r['l_balance']}/{r['l_held']}")
        if r["held"] < 0 or r["balance"] - r["held"] < 0:
            problems.append(f"{who}: negative: balance {r['balance']}, held {r['held']}")
        if r["held"] != r["j_held"]:
            problems.append(f"{who}: account holds {r['held']} but its jobs hold {r['j_held']}")
    for r in await pool.fetch(
            """SELECT j.id, j.user_id, j.state, j.paid_with, j.price, j.held,
                      count(l.id) FILTER (WHERE l.kind = 'hold') AS holds,
                      count(l.id) FILTER (WHERE l.kind = 'capture') AS captures,
                      count(l.id) FILTER (WHERE l.kind = 'release') AS releases,
                      COALESCE(sum(l.held_delta) FILTER (WHERE l.kind = 'hold'), 0) AS held_in,
                      COALESCE(sum(-l.held_delta) FILTER (WHERE l.kind IN ('capture', 'release')), 0) AS held_out,
                      COALESCE(sum(-l.balance_delta) FILTER (WHERE l.kind = 'capture'), 0) AS captured,
                      count(l.id) FILTER (WHERE l.user_id <> j.user_id OR l.bot_id <> j.bot_id) AS strangers
                 FROM jobs j LEFT JOIN ledger l ON l.job_id = j.id
                WHERE ($1::bigint IS NULL OR j.bot_id = $1)
                GROUP BY j.id""", bot_id):
        job = f"job {r['id']} ({r['state']}, {r['paid_with']}, price {r['price']})"
        paid = r["paid_with"] == "money"
        finished = r["state"] in ("succeeded", "failed", "timed_out")
        expected = (
            1 if paid else 0,
            1 if paid and r["state"] == "succeeded" else 0,
            1 if paid and r["state"] in ("failed", "timed_out") else 0,
        )
        if (r["holds"], r["captures"], r["releases"]) != expected:
            problems.append(f"{job}: {r['holds']} holds, {r['captures']} captures, {r['releases']} releases; "
                            f"expected {expected[0]}, {expected[1]}, {expected[2]}")
        if r["held"] != r["held_in"] - r["held_out"]:
            problems.append(f"{job}: holds {r['held']} but its ledger entries leave {r['held_in'] - r['held_out']}")
        if paid and (r["held_in"] != r["price"] * r["holds"] or r["captured"] != r["price"] * r["captures"]):
            problems.append(f"{job}: held {r['held_in']} and captured {r['captured']}, not its price")
        if finished and r["held"]:
            problems.append(f"{job}: finished with {r['held']} still held")
        if r["strangers"]:
            problems.append(f"{job}: {r['strangers']} ledger entries of another user")
    for r in await pool.fetch(
            """SELECT j.id, j.state, j.paid_with FROM jobs j
                WHERE ($1::bigint IS NULL OR j.bot_id = $1) AND j.state IN ('failed', 'timed_out')
                  AND EXISTS (SELECT 1 FROM job_deliveries d WHERE d.job_id = j.id AND d.reached)""", bot_id):
        problems.append(f"job {r['id']} ({r['state']}, {r['paid_with']}): a result reached the user, yet it "
                        f"ended {r['state']}" + (" and was released" if r["paid_with"] == "money" else ""))
    for r in await pool.fetch(
            """SELECT bot_id, user_id, count(*) AS jobs, min(user_number) AS lo, max(user_number) AS hi,
                      count(DISTINCT user_number) AS numbers
                 FROM jobs WHERE ($1::bigint IS NULL OR bot_id = $1) GROUP BY bot_id, user_id
               HAVING min(user_number) <> 1 OR max(user_number) <> count(*)
                   OR count(DISTINCT user_number) <> count(*)""", bot_id):
        problems.append(f"user {r['user_id']} (bot {r['bot_id']}): {r['jobs']} jobs numbered {r['lo']}..{r['hi']} "
                        f"({r['numbers']} distinct): a user's generations are numbered 1, 2, 3... without gaps")
    problems += await _money_in(db, bot_id)
    problems += await _entitlements(db, bot_id)
    problems += await promo.invariants(db, bot_id)
    problems += await transfers.invariant_problems(db, bot_id)
    if free_daily_limit is not None:
        for r in await pool.fetch(
                """SELECT user_id, free_day, count(*) AS used FROM jobs
                    WHERE ($1::bigint IS NULL OR bot_id = $1)
                      AND paid_with = 'free' AND state NOT IN ('failed', 'timed_out')
                    GROUP BY bot_id, user_id, free_day HAVING count(*) > $2""", bot_id, free_daily_limit):
            problems.append(f"user {r['user_id']}: {r['used']} free generations on {r['free_day']}, "
                            f"limit {free_daily_limit}")
    if max_active is not None:
        for r in await pool.fetch(
                """SELECT user_id, count(*) AS active FROM jobs
                    WHERE ($1::bigint IS NULL OR bot_id = $1)
                      AND state IN ('created', 'submitting', 'submitted', 'running')
                    GROUP BY bot_id, user_id HAVING count(*) > $2""", bot_id, max_active):
            problems.append(f"user {r['user_id']}: {r['active']} jobs running at once, limit {max_active}")
    return problems


async def _money_in(db: Database, bot_id: int | None) -> list[str]:
    pool = db.require()
    problems: list[str] = []
    for r in await pool.fetch(
            """SELECT p.bot_id, p.charge_id, p.user_id, p.kopecks, p.refunded_at,
                      count(l.id) FILTER (WHERE l.idempotency_key IN ('stars:' || p.charge_id,
                                                                     'subscription:' || p.charge_id)) AS credits,
                      COALESCE(sum(l.balance_delta) FILTER (WHERE l.idempotency_key IN
                               ('stars:' || p.charge_id, 'subscription:' || p.charge_id)), 0) AS credited,
                      count(l.id) FILTER (WHERE l.kind = 'reversal') AS reversals,
                      COALESCE(-sum(l.balance_delta) FILTER (WHERE l.kind = 'reversal'), 0) AS reversed,
                      count(l.id) FILTER (WHERE l.user_id <> p.user_id) AS strangers
                 FROM star_payments p
                 LEFT JOIN ledger l ON l.bot_id = p.bot_id
                       AND l.idempotency_key IN ('stars:' || p.charge_id, 'subscription:' || p.charge_id,
                                                 'reversal:' || p.charge_id)
                WHERE ($1::bigint IS NULL OR p.bot_id = $1)
                GROUP BY p.bot_id, p.charge_id""", bot_id):
        payment = f"Stars payment {r['charge_id']} of user {r['user_id']} ({r['kopecks']} kopecks)"
        if (r["credits"], r["credited"]) != ((1, r["kopecks"]) if r["kopecks"] else (0, 0)):
            problems.append(f"{payment}: credited {r['credits']} times, {r['credited']} kopecks")
        if r["strangers"]:
            problems.append(f"{payment}: {r['strangers']} ledger entries of another user")
        if r["reversals"] > 1 or (r["reversals"] and r["reversed"] != r["credited"]):
            problems.append(f"{payment}: {r['reversals']} reversals of {r['reversed']} kopecks")
        if r["reversals"] and r["refunded_at"] is None:
            problems.append(f"{payment}: reversed but not marked refunded")
    for r in await pool.fetch(
            """SELECT l.user_id, l.idempotency_key FROM ledger l
                WHERE ($1::bigint IS NULL OR l.bot_id = $1) AND l.source IN ('stars', 'subscription')
                  AND NOT EXISTS (SELECT 1 FROM star_payments p WHERE p.bot_id = l.bot_id
                                     AND l.idempotency_key = l.source || ':' || p.charge_id)""", bot_id):
        problems.append(f"user {r['user_id']}: a Stars credit {r['idempotency_key']} without its payment")
    for r in await pool.fetch(
            """SELECT l.user_id AS referrer, l.idempotency_key, r.referrer_id, r.rewarded_at, r.bonus, l.balance_delta
                 FROM ledger l
                 LEFT JOIN referrals r ON r.bot_id = l.bot_id AND l.idempotency_key = 'referral:' || r.user_id
                WHERE ($1::bigint IS NULL OR l.bot_id = $1) AND l.source = 'referral'""", bot_id):
        if r["referrer_id"] != r["referrer"] or r["rewarded_at"] is None or r["bonus"] != r["balance_delta"]:
            problems.append(f"user {r['referrer']}: referral bonus {r['idempotency_key']} without its rewarded link")
    return problems


async def _entitlements(db: Database, bot_id: int | None) -> list[str]:
    """The promo grants and plan allowances (store/grants.py, sql/011_subscriptions.sql)."""
    pool = db.require()
    problems: list[str] = []
    for r in await pool.fetch(
            """SELECT j.id, j.paid_with, count(u.job_id) AS uses, min(u.kind) AS kind FROM jobs j
                 LEFT JOIN entitlement_uses u ON u.job_id = j.id
                WHERE ($1::bigint IS NULL OR j.bot_id = $1)
                  AND (j.paid_with IN ('grant', 'plan') OR u.job_id IS NOT NULL)
                GROUP BY j.id, j.paid_with
               HAVING count(u.job_id) <> 1 OR min(u.kind) IS DISTINCT FROM j.paid_with""", bot_id):
        problems.append(f"job {r['id']} ({r['paid_with']}): {r['uses']} entitlement uses ({r['kind']})")
    for r in await pool.fetch(
            """SELECT g.user_id, g.key, g.count, count(u.job_id) AS used FROM grants g
                 JOIN entitlement_uses u ON u.bot_id = g.bot_id AND u.kind = 'grant' AND u.grant_key = g.key
                 JOIN jobs j ON j.id = u.job_id AND j.state NOT IN ('failed', 'timed_out')
                WHERE ($1::bigint IS NULL OR g.bot_id = $1)
                GROUP BY g.bot_id, g.user_id, g.key, g.count HAVING count(u.job_id) > g.count""", bot_id):
        problems.append(f"user {r['user_id']}: grant {r['key']} of {r['count']} used {r['used']} times")
    for r in await pool.fetch(
            """SELECT user_id, model, day, job_id, rank, allowance FROM (
                   SELECT u.user_id, u.model, u.day, u.job_id, u.allowance,
                          row_number() OVER (PARTITION BY u.bot_id, u.user_id, u.day, u.model ORDER BY u.job_id) AS rank
                     FROM entitlement_uses u JOIN jobs j ON j.id = u.job_id
                    WHERE ($1::bigint IS NULL OR u.bot_id = $1) AND u.kind = 'plan'
                      AND j.state NOT IN ('failed', 'timed_out')) counted
                WHERE rank > allowance""", bot_id):
        problems.append(f"user {r['user_id']}: job {r['job_id']} is use {r['rank']} of {r['model']} on {r['day']}, "
                        f"allowance {r['allowance']}")
    return problems
