"""Rate limits per client: in-process by default, shared through Redis across workers.

A client is its API key when it sends one (a hash of the header, never the key itself),
otherwise its IP address. Each client has a fixed one-minute window for reads and a
stricter one for writes. Every answer carries ``RateLimit-Limit``, ``RateLimit-Remaining``
and ``RateLimit-Reset`` (IETF httpapi draft -06); over the limit the answer is a ``429``
problem with ``Retry-After``. With ``DYAD_REDIS_URL`` set, all workers and hosts count
together (one ``INCR`` per request); without it each process counts on its own.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Protocol

import redis.asyncio as aioredis
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.problems import problem_response
from app.settings import Settings

WINDOW_SECONDS = 60
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class Counter(Protocol):
    async def hit(self, key: str, window: int) -> int:
        """Count one request of ``key`` in ``window``; return the count so far."""
        ...


class MemoryCounter:
    """Counts in this process; old windows are dropped as new ones start."""

    def __init__(self) -> None:
        self.window = -1
        self.counts: dict[str, int] = {}

    async def hit(self, key: str, window: int) -> int:
        if window != self.window:
            self.window, self.counts = window, {}
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key]


class RedisCounter:
    """Counts in Redis, so that every worker and host shares one budget per client."""

    def __init__(self, url: str, prefix: str = "dyad:rl:") -> None:
        self.redis = aioredis.from_url(url)
        self.prefix = prefix

    async def hit(self, key: str, window: int) -> int:
        name = f"{self.prefix}{window}:{key}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, WINDOW_SECONDS * 2)
            count, _ = await pipe.execute()
        return int(count)

    async def aclose(self) -> None:
        await self.redis.aclose()


def client_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return "key:" + hashlib.sha256(value).hexdigest()[:32]
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


def make_counter(settings: Settings) -> Counter:
    return RedisCounter(settings.redis_url) if settings.redis_url else MemoryCounter()


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings, counter: Counter) -> None:
        self.app = app
        self.reads = settings.rate_limit_reads
        self.writes = settings.rate_limit_writes
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        reading = scope["method"] in READ_METHODS
        limit = self.reads if reading else self.writes
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        reset = max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
        count = await self.counter.hit(f"{'r' if reading else 'w'}:{client_id(scope)}", window)
        headers = {
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": str(max(0, limit - count)),
            "RateLimit-Reset": str(reset),
        }
        if count > limit:
            kind = "reads" if reading else "writes"
            response = problem_response(
                429,
                f"Too many {kind}: {limit} a minute per client. Try again in {reset} s.",
                slug="rate-limited",
                headers={**headers, "Retry-After": str(reset)},
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)
