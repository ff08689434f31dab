"""Seed 003's channel stack, as small as it runs in production.

FastAPI + sse-starlette's EventSourceResponse + broadcaster, exactly the
pieces of seed 003 (`../../../shared/seeds/003_*.txt`):

- ``GET /api/v1/events/{channel}``: subscribe to ``channel`` on the shared
  ``Broadcast`` and stream every message as an unnamed SSE event whose data
  is the ``WSMessage`` JSON (the seed's ``subscribe`` endpoint, verbatim
  apart from the TEST_MODE branch).
- ``POST /api/v1/events/{channel}``: body ``{"type": ..., "object": ...}``
  (the seed's ``WSMessage``), published to ``channel`` (the seed's
  ``send_event``). The seed opens a new ``Broadcast`` per publish; with the
  default ``memory://`` backend that instance would not share subscribers,
  so this publishes on the app's shared instance instead (same result with
  ``redis://``).

With ``SEED_CORS=1`` the app answers CORS for loopback origins (``127.0.0.1``
and ``localhost``, any port, with credentials), so the SDK's browser tests can
use it from their own page; off by default, so the load benchmark measures the
seed's code alone.

The backend is ``SEED_BROADCAST_URL`` (default ``memory://``; give
``redis://127.0.0.1:PORT`` to run the seed's Redis pub/sub path).
Used by ``scripts/bench-load.sh`` as the baseline the Tidings server is
compared against; start it with ``run.sh``.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from enum import Enum

from broadcaster import Broadcast
from fastapi import FastAPI
from pydantic import BaseModel
from sse_starlette.sse import EventSourceResponse

BROADCAST_URL = os.environ.get("SEED_BROADCAST_URL", "memory://")
# sse-starlette's comment ping interval (its default 15 s); the browser tests use
# 1 s so a quiet stream shows body bytes early (Firefox reports an EventSource
# open only once they arrive).
PING_SECS = int(os.environ.get("SEED_PING_SECS", "15"))
pubsub_client = Broadcast(BROADCAST_URL)


class WSMessageTypeEnum(str, Enum):
    """Seed 003's message types."""

    task = "task"
    data = "data"
    file = "file"
    entity = "entity"
    scene = "scene"
    render_progress = "render_progress"
    render_result = "render_result"


class WSMessage(BaseModel):
    """Seed 003's message: a type and its object."""

    type: WSMessageTypeEnum
    object: dict | str


@asynccontextmanager
async def lifespan(_app: FastAPI):
    """Connect the broadcaster for the app's lifetime."""
    await pubsub_client.connect()
    try:
        yield
    finally:
        await pubsub_client.disconnect()


app = FastAPI(lifespan=lifespan)
if os.environ.get("SEED_CORS") == "1":
    from fastapi.middleware.cors import CORSMiddleware

    app.add_middleware(
        CORSMiddleware,
        allow_origin_regex=r"http://(127\.0\.0\.1|localhost)(:\d+)?",
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )


@app.get("/api/v1/events/{channel}")
async def subscribe(channel: str):
    """Stream every message published to ``channel`` (seed 003, verbatim)."""

    async def event_generator():
        async with pubsub_client.subscribe(channel=channel) as subscriber:
            async for event in subscriber:
                yield {"data": event.message}

    return EventSourceResponse(event_generator(), ping=PING_SECS)


@app.post("/api/v1/events/{channel}", status_code=202)
async def publish(channel: str, message: WSMessage):
    """Publish one ``WSMessage`` to ``channel`` (seed 003's ``send_event``)."""
    await pubsub_client.publish(channel=channel, message=message.model_dump_json())
    return {"published": True, "channel": channel}
