"""Rate limits per client: in-process by default, shared through Redis across workers.

A client is its API key when it sends a valid one (a hash of the header, never the key
itself), otherwise its IP address: a made-up key must not buy a fresh budget (see
:class:`KnownKeys`). Each client has a one-minute sliding window for reads and a
stricter one for writes: the count of the current minute plus the previous minute's count,
weighted by how much of it still lies within the last 60 seconds (Cloudflare's sliding-window
estimate). Unlike a fixed window it does not reset to zero on the minute, so
a client cannot spend two budgets across a boundary. Every answer carries ``RateLimit-Limit``,
``RateLimit-Remaining`` and ``RateLimit-Reset`` (IETF httpapi draft -06); over the limit the
answer is a ``429`` problem with ``Retry-After``, the seconds until one more request fits.
With ``DYAD_REDIS_URL`` set, all workers and hosts count together (one round trip per
request); without it each process counts on its own.

Guessing keys is throttled apart from that budget: a client IP whose keys were refused
(``401``) ``bad_key_limit`` times in the last minute gets ``429`` for every request that
carries a key, before the key is even looked up.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api_keys import authenticate
from app.problems import problem_response
from app.settings import Settings

WINDOW_SECONDS = 60
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


@dataclass(frozen=True)
class Usage:
    """A client's counts in the previous and the current fixed minute, seen at ``elapsed``."""

    previous: int
    current: int
    elapsed: float  # seconds into the current minute

    @property
    def estimate(self) -> float:
        """Requests in the last 60 seconds, the previous minute's spread evenly over it."""
        return self.previous * (1 - self.elapsed / WINDOW_SECONDS) + self.current

    def remaining(self, limit: int) -> int:
        return max(0, math.floor(limit - self.estimate))

    def wait(self, limit: int) -> int:
        """Whole seconds until one more request fits under ``limit``, if none else comes."""
        if self.current + 1 <= limit:  # the previous minute's share must fade enough
            fraction = 1 - (limit - self.current - 1) / self.previous if self.previous else 0
            seconds = fraction * WINDOW_SECONDS - self.elapsed
        else:  # this minute must become the previous one, and fade in its turn
            fraction = 1 - (limit - 1) / self.current
            seconds = WINDOW_SECONDS - self.elapsed + fraction * WINDOW_SECONDS
        return max(1, math.ceil(round(seconds, 6)))  # (float noise must not add a second)

    @property
    def reset(self) -> int:
        """Seconds until the current minute ends and its count starts to fade."""
        return max(1, math.ceil(WINDOW_SECONDS - self.elapsed))


class Counter(Protocol):
    async def hit(self, key: str, window: int) -> tuple[int, int]:
        """Count one request of ``key`` in minute ``window``; return the previous minute's
        count and this one's, this request included."""
        ...

    async def peek(self, key: str, window: int) -> tuple[int, int]:
        """The previous minute's count of ``key`` and this one's, without counting."""
        ...


class MemoryCounter:
    """Counts in this process; minutes older than the previous one are dropped."""

    def __init__(self) -> None:
        self.minutes: dict[int, dict[str, int]] = {}

    def _counts(self, window: int) -> dict[str, int]:
        if window not in self.minutes:
            self.minutes = {w: c for w, c in self.minutes.items() if w >= window - 1}
            self.minutes[window] = {}
        return self.minutes[window]

    async def hit(self, key: str, window: int) -> tuple[int, int]:
        counts = self._counts(window)
        counts[key] = counts.get(key, 0) + 1
        return self.minutes.get(window - 1, {}).get(key, 0), counts[key]

    async def peek(self, key: str, window: int) -> tuple[int, int]:
        previous = self.minutes.get(window - 1, {}).get(key, 0)
        return previous, self.minutes.get(window, {}).get(key, 0)


class RedisCounter:
    """Counts in Redis, so that every worker and host shares one budget per client."""

    def __init__(self, url: str, prefix: str = "dyad:rl:") -> None:
        self.redis = aioredis.from_url(url)
        self.prefix = prefix

    async def hit(self, key: str, window: int) -> tuple[int, int]:
        name = f"{self.prefix}{window}:{key}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, WINDOW_SECONDS * 2)
            pipe.get(f"{self.prefix}{window - 1}:{key}")
            current, _, previous = await pipe.execute()
        return int(previous or 0), int(current)

    async def peek(self, key: str, window: int) -> tuple[int, int]:
        previous, current = await self.redis.mget(
            f"{self.prefix}{window - 1}:{key}", f"{self.prefix}{window}:{key}"
        )
        return int(previous or 0), int(current or 0)

    async def aclose(self) -> None:
        await self.redis.aclose()


class KnownKeys:
    """Which ``Authorization`` headers carry a valid key, each remembered for a minute.

    Reads look at no key, so a request that sent any header at all once had a budget of
    its own: a new made-up key on every request was never limited. Now a key counts as
    the client only once :func:`app.api_keys.authenticate` accepts it (off the event loop;
    a valid key is looked up again after :attr:`TTL` seconds). Any other header is counted
    under its address, which so pays for the lookup of each made-up key.
    """

    TTL = 60.0
    MAX = 10_000  # remembered keys; all are forgotten at once past this

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.until: dict[str, float] = {}  # a header's digest: until when it is known valid

    async def valid(self, header: bytes, digest: str) -> bool:
        now = time.monotonic()
        if self.until.get(digest, 0.0) > now:
            return True
        try:
            await run_in_threadpool(authenticate, self.engine, header.decode("latin-1"))
        except Exception:  # refused, or the database cannot tell: counted by its address
            return False
        if len(self.until) >= self.MAX:
            self.until.clear()
        self.until[digest] = now + self.TTL
        return True

    async def client_id(self, scope: Scope) -> str:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                digest = hashlib.sha256(value).hexdigest()[:32]
                if await self.valid(value, digest):
                    return "key:" + digest
                break
        client = scope.get("client")
        return "ip:" + (client[0] if client else "unknown")


def make_counter(settings: Settings) -> Counter:
    return RedisCounter(settings.redis_url) if settings.redis_url else MemoryCounter()


clock = time.time  # tests move it


def _minute() -> tuple[int, float]:
    """The current fixed minute and the seconds elapsed in it."""
    now = clock()
    return int(now // WINDOW_SECONDS), now % WINDOW_SECONDS


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings, counter: Counter, engine: Engine) -> None:
        self.app = app
        self.reads = settings.rate_limit_reads
        self.writes = settings.rate_limit_writes
        self.counter = counter
        self.keys = KnownKeys(engine)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        reading = scope["method"] in READ_METHODS
        limit = self.reads if reading else self.writes
        window, elapsed = _minute()
        key = f"{'r' if reading else 'w'}:{await self.keys.client_id(scope)}"
        usage = Usage(*await self.counter.hit(key, window), elapsed)
        headers = {
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": str(usage.remaining(limit)),
            "RateLimit-Reset": str(usage.reset),
        }
        if usage.estimate > limit:
            kind = "reads" if reading else "writes"
            wait = usage.wait(limit)
            response = problem_response(
                429,
                f"Too many {kind}: {limit} a minute per client. Try again in {wait} s.",
                slug="rate-limited",
                headers={**headers, "Retry-After": str(wait)},
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BadKeyThrottle:
    """``429`` for requests carrying a key from a client IP whose keys keep being refused.

    Counted by IP, not by key: a guesser sends a new key each time. Only requests that sent
    ``Authorization`` and got ``401`` count, so a client that forgot its key is not punished,
    and reads (which look at no key) are never refused.
    """

    def __init__(self, app: ASGIApp, settings: Settings, counter: Counter) -> None:
        self.app = app
        self.limit = settings.bad_key_limit
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READ_METHODS:
            await self.app(scope, receive, send)
            return
        if not any(name == b"authorization" for name, _ in scope.get("headers", [])):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = "bad-key:" + (client[0] if client else "unknown")
        window, elapsed = _minute()
        usage = Usage(*await self.counter.peek(key, window), elapsed)
        if usage.estimate > self.limit - 1:  # one more refusal would be over the limit
            wait = usage.wait(self.limit)
            response = problem_response(
                429,
                f"Too many refused API keys from this address: {self.limit} a minute. "
                f"Try again in {wait} s.",
                slug="too-many-bad-keys",
                headers={"Retry-After": str(wait)},
            )
            await response(scope, receive, send)
            return

        async def count_refusals(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                await self.counter.hit(key, window)
            await send(message)

        await self.app(scope, receive, count_refusals)
