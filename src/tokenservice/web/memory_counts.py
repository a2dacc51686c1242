"""Rate-limit counts kept in this process (memory://), for Flask-Limiter and rate_limits.spend.

Our own because limits' MemoryStorage falls short under a flood from many
addresses: every 10 ms while hits arrive, its timer walks every key it holds
(under gevent, on the event loop), so each new address made every request
slower, and /health went from 0.5 s to over 1 s within 20 s of a login flood
from 192 connections. Here a key's old entries are dropped when the key is
used, and a heap of due times lets each call drop at most SWEEP keys that
nobody uses any more: the cost of a call does not grow with the number of
keys. It is a storage as limits documents them (a subclass of Storage, found
by its scheme), with the moving window only, the strategy config.py sets.
"""

import heapq
import threading
import time
from collections import deque

from limits.storage import MovingWindowSupport, Storage

SCHEME = "tokenservice-memory"
# Keys nobody used within their window that one call drops, at most: more
# than the one key a call can add, so that they never pile up.
SWEEP = 4


class MemoryCounts(Storage, MovingWindowSupport):
    STORAGE_SCHEME = [SCHEME]
    base_exceptions = ValueError  # nothing here fails the way a network storage does

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, clock=time.time, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._clock = clock
        self._lock = threading.Lock()  # flask run and the tests' servers use threads
        self._windows: dict[str, tuple[int, deque[float]]] = {}  # a moving window: (seconds, entry times, oldest first)
        self._counters: dict[str, list] = {}  # a fixed window: [count, time it ends]
        self._due: list[tuple[float, str]] = []  # (when the key may hold nothing live, key): one per key

    def held(self) -> int:
        """How many keys are held (not __len__: Flask-Limiter tests a storage's truth)."""
        return len(self._windows) + len(self._counters)

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        with self._lock:
            now = self._clock()
            self._sweep(now)
            entries = self._live_entries(key, expiry, now)
            if len(entries) + amount > limit:
                return False
            if key not in self._windows:
                self._windows[key] = (expiry, entries)
                heapq.heappush(self._due, (now + expiry, key))
            entries.extend([now] * amount)
            return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        with self._lock:
            now = self._clock()
            entries = self._live_entries(key, expiry, now)
            return (entries[0], len(entries)) if entries else (now, 0)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        with self._lock:
            now = self._clock()
            self._sweep(now)
            counter = self._counters.get(key)
            if counter is None or counter[1] <= now:
                if counter is None:
                    heapq.heappush(self._due, (now + expiry, key))
                counter = self._counters[key] = [0, now + expiry]
            counter[0] += amount
            return counter[0]

    def get(self, key: str) -> int:
        with self._lock:
            counter = self._counters.get(key)
            return counter[0] if counter and counter[1] > self._clock() else 0

    def get_expiry(self, key: str) -> float:
        with self._lock:
            counter = self._counters.get(key)
            return counter[1] if counter and counter[1] > self._clock() else self._clock()

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with self._lock:
            held = self.held()
            self._windows.clear()
            self._counters.clear()
            self._due.clear()
            return held

    def clear(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)
            self._counters.pop(key, None)  # its place in the heap is dropped when due

    def _live_entries(self, key: str, expiry: int, now: float) -> deque[float]:
        window = self._windows.get(key)
        entries = window[1] if window else deque()
        while entries and entries[0] <= now - expiry:
            entries.popleft()
        return entries

    def _sweep(self, now: float) -> None:
        """Look at SWEEP keys at most whose time is due: drop the ones with nothing live, and put back the others."""
        for _ in range(SWEEP):
            if not self._due or self._due[0][0] > now:
                return
            _, key = heapq.heappop(self._due)
            due = None
            counter = self._counters.get(key)
            if counter is not None:
                if counter[1] > now:
                    due = counter[1]
                else:
                    del self._counters[key]
            window = self._windows.get(key)
            if window is not None:
                expiry, entries = window
                entries = self._live_entries(key, expiry, now)
                if entries:
                    due = max(due or 0, entries[0] + expiry)
                else:
                    del self._windows[key]
            if due is not None:
                heapq.heappush(self._due, (due, key))
