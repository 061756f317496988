"""A healthy receiver that is merely busy is not held off as if it were down."""

from __future__ import annotations

import asyncio

from aiohttp import web

from schemas.records import SlaAlert
from streams.settings import Settings
from workers.notify.delivery import Delivery, Target


def _alert(i: int) -> SlaAlert:
    return SlaAlert(alert_id=f"a{i}:breach:0", appeal_id=f"a{i}", level="breach",
                    regime="fz59", region="22", authority_id="22-minzhkh",
                    notify_authority_id="22-minzhkh", due_at="2026-12-01T16:59:59+00:00",
                    fired_at="2026-12-01T17:00:00+00:00", severity="critical", category=None,
                    urgent=False)


async def _two_batches() -> tuple[int, int, set[str], int]:
    async def hook(request: web.Request) -> web.Response:
        await asyncio.sleep(0.25)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    # 400 alerts, 16 at a time, 0.25 s each: ~128 fit the 2 s budget. The budget had been
    # 0.5 s with 50 ms answers, and a loaded CI host's pause of half a second sent none
    # (two CI runs in session 13); a 2 s budget leaves 1.75 s for such a pause.
    settings = Settings(notify_inline_budget=2.0)
    delivery = Delivery(settings)
    target = Target("webhook", f"http://127.0.0.1:{port}/hook")
    try:
        # Many more alerts than the receiver can take within the budget (a 23:59:59 burst).
        first = await asyncio.gather(*(
            delivery.send(_alert(i), [target], budget=settings.notify_inline_budget,
                          hold_off=delivery.hold_off) for i in range(400)))
        # The next batch, with room to finish (a held-off receiver fails at once, whatever
        # the budget; with the burst's 0.5 s, a loaded CI host once ran out of it, 0 of 10).
        second = await asyncio.gather(*(
            delivery.send(_alert(1000 + i), [target], budget=10.0,
                          hold_off=delivery.hold_off) for i in range(10)))
    finally:
        await delivery.close()
        await runner.cleanup()
    return (sum(1 for o in first if o.sent), sum(1 for o in first if o.failed),
            {reason for o in first for _, reason in o.failed},
            sum(1 for o in second if o.sent))


def test_a_busy_receiver_is_not_held_off() -> None:
    sent, parked, reasons, next_batch = asyncio.run(_two_batches())
    assert sent > 0 and parked > 0  # the burst did not fit the budget: the rest is parked
    assert reasons == {"the batch's budget ran out before the receiver's turn"}
    assert next_batch == 10  # and the next batch goes straight to the receiver
