"""The live feed's fan-out: site filtering and the resync after a client fell behind."""

from __future__ import annotations

import json

from monitoring.live import LiveFeed, sse_stream


def notify(feed: LiveFeed, **payload: str) -> None:
    feed._on_notify(None, 1, "monitoring_alerts", json.dumps(payload))


async def test_a_client_hears_only_its_sites_alerts() -> None:
    feed = LiveFeed("postgresql://unused")
    stream = sse_stream(feed, "site-a")
    assert (await anext(stream)).event == "ready"
    notify(feed, alert_id="1", site_id="site-b", change="raised")
    notify(feed, alert_id="2", site_id="site-a", change="raised")
    event = await anext(stream)
    assert (event.event, json.loads(str(event.data))["alert_id"]) == ("alert", "2")
    await stream.aclose()


async def test_a_client_that_fell_behind_is_told_to_resync() -> None:
    feed = LiveFeed("postgresql://unused", queue_size=2)
    stream = sse_stream(feed, None)
    await anext(stream)
    for i in range(3):
        notify(feed, alert_id=str(i), site_id="site-a", change="raised")
    event = await anext(stream)
    assert json.loads(str(event.data)) == {"change": "resync"}
    await stream.aclose()
