"""bench/poster.py against a real aiohttp server on 127.0.0.1: every post sent once, every answer
read whole (bodies and kept-alive connections included), each status counted."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from bench.poster import post_at_rate, webhook_request
from tests.procs import free_port

pytestmark = pytest.mark.timeout(60)


async def test_every_post_is_sent_once_and_each_answer_read_whole_even_when_posts_wait_for_a_connection() -> None:
    seen: list[int] = []
    release = asyncio.Event()

    async def webhook(request: web.Request) -> web.Response:
        update_id = json.loads(await request.read())["update_id"]
        seen.append(update_id)
        if update_id < 3:  # the first posts hold both connections: later ones must wait for them
            await release.wait()
        if update_id % 3 == 0:
            return web.json_response({"ok": False, "error": "x" * update_id}, status=401)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        requests = [webhook_request(f"127.0.0.1:{port}", json.dumps({"update_id": n}).encode(),
                                    {"Content-Type": "application/json"}) for n in range(60)]
        posting = asyncio.create_task(post_at_rate(f"http://127.0.0.1:{port}", requests, 2000, conns=2))
        async with asyncio.timeout(10):
            while len(seen) < 2:  # noqa: ASYNC110 - the server's handlers run on this loop
                await asyncio.sleep(0.01)
        assert not posting.done()  # 58 posts are waiting for the two held connections
        release.set()
        latencies, statuses = await posting
    finally:
        await runner.cleanup()
    assert sorted(seen) == list(range(60))
    assert statuses == {401: 20, 200: 40}
    assert len(latencies) == 60 and min(latencies) >= 0
