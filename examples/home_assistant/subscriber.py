"""A dashboard in twenty lines: follow every companion session on a broker.

Needs only aiomqtt and the broker's address; no companion import. Delivery is
at least once, so events are deduplicated by (band, session, number).

    python examples/home_assistant/subscriber.py mqtt://127.0.0.1:1883
"""

from __future__ import annotations

import argparse
import asyncio
import json
from urllib.parse import urlsplit

import aiomqtt


async def follow(url: str, until_done: bool) -> None:
    broker = urlsplit(url)
    seen: set[tuple[str, str, int]] = set()
    async with aiomqtt.Client(broker.hostname or "127.0.0.1", broker.port or 1883) as client:
        await client.subscribe("companion/+/event", qos=1)
        async for message in client.messages:
            if not message.topic.matches("companion/+/event"):
                continue  # some brokers also deliver retained messages of other topics
            if not isinstance(message.payload, bytes):
                continue
            event = json.loads(message.payload)
            key = (event["band_id"], event["session_id"], event["number"])
            if key in seen:
                continue
            seen.add(key)
            print(f"{event['band_id']} #{event['number']} {event['type']}", flush=True)
            if until_done and event["type"] in ("session_done", "session_stopped"):
                return


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--until-done", action="store_true", help="exit when a session ends")
    args = parser.parse_args()
    asyncio.run(follow(args.url, args.until_done))
