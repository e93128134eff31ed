"""A token bucket per sender, in SMS segments per second [S5].

Time and sleep are injected, so the behaviour is tested without waiting and without timing asserts.

>>> clock = [0.0]
>>> async def sleep(s: float) -> None: clock[0] += s
>>> bucket = TokenBucket(rate=2, burst=2, monotonic=lambda: clock[0], sleep=sleep)
>>> import asyncio
>>> asyncio.run(bucket.take(3)); clock[0]
0.5
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up. ``take(n)`` waits until n are there.

    A message of more segments than ``burst`` still goes: the bucket goes into debt and the next
    takers wait it off, so the long-run rate holds.
    """

    def __init__(self, rate: float, burst: float | None = None, *,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self.tokens = self.burst
        self._now = monotonic
        self._sleep = sleep
        self._stamp = monotonic()
        self._lock = asyncio.Lock()
        self.waited = 0.0  # total seconds slept, for reports

    def _refill(self) -> None:
        now = self._now()
        self.tokens = min(self.burst, self.tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def take(self, n: float = 1.0) -> None:
        async with self._lock:
            self._refill()
            self.tokens -= n
            if self.tokens < 0:
                wait = -self.tokens / self.rate
                self.waited += wait
                await self._sleep(wait)
                self._refill()

    def hold(self, seconds: float) -> None:
        """Stop everyone for ``seconds`` (after a 429 from the provider)."""
        self._refill()
        self.tokens = min(self.tokens, 0.0) - seconds * self.rate
