"""memory_counts.MemoryCounts: limits' moving window, counted in this process, with no walk over every key.

That the app counts in it is app/test_rate_limits.py's to check: it needs the app, and so PostgreSQL.
"""

import threading

import limits
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from tokenservice.web.memory_counts import SCHEME, SWEEP, MemoryCounts


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def test_it_is_found_by_its_scheme_as_limits_documents_custom_storages():
    assert isinstance(storage_from_string(f"{SCHEME}://"), MemoryCounts)


def test_the_moving_window_refuses_past_the_limit_and_frees_each_entry_a_window_after_it():
    clock = Clock()
    counts = MovingWindowRateLimiter(MemoryCounts(clock=clock))
    three = limits.parse("3 per minute")
    assert [counts.hit(three, "the owner") for _ in range(2)] == [True, True]
    clock.now += 30
    assert [counts.hit(three, "the owner") for _ in range(2)] == [True, False]
    assert counts.get_window_stats(three, "the owner").remaining == 0
    assert counts.hit(three, "bob")  # each key counts apart
    clock.now += 30  # the first two are a minute old
    assert counts.get_window_stats(three, "the owner").remaining == 2
    assert [counts.hit(three, "the owner") for _ in range(3)] == [True, True, False]
    clock.now += 30
    assert counts.get_window_stats(three, "the owner").remaining == 1


def test_it_answers_as_limits_memory_storage_does():
    """The same hits, costs and limits, side by side within one window: the same answers and counts."""
    ours, theirs = MovingWindowRateLimiter(MemoryCounts()), MovingWindowRateLimiter(MemoryStorage())
    theirs.storage.timer.cancel()
    steps = [("5 per minute", "a", 1)] * 7 + [("5 per minute", "b", 3)] * 2 + [("2 per hour", "a", 3)]
    for rate, key, cost in steps:
        item = limits.parse(rate)
        assert ours.hit(item, key, cost=cost) == theirs.hit(item, key, cost=cost), (rate, key, cost)
        assert ours.get_window_stats(item, key).remaining == theirs.get_window_stats(item, key).remaining


def test_no_timer_is_started():
    """limits' MemoryStorage starts a Timer that walks every key every 10 ms; under gevent it runs on the event loop."""
    before = threading.active_count()
    MovingWindowRateLimiter(MemoryCounts()).hit(limits.parse("1 per second"), "the owner")
    assert threading.active_count() == before


def test_keys_nobody_uses_are_dropped_a_few_per_call():
    clock = Clock()
    storage = MemoryCounts(clock=clock)
    counts = MovingWindowRateLimiter(storage)
    minute = limits.parse("10 per minute")
    for address in range(1000):  # a flood, each request from an address of its own
        counts.hit(minute, f"stranger {address}")
    counts.hit(minute, "the owner")  # sorts after the strangers: the heap offers them first
    clock.now += 50
    counts.hit(minute, "the owner")  # still in use a minute after its first hit
    assert storage.held() == 1001
    clock.now += 11
    for address in range(100):
        counts.hit(minute, f"newcomer {address}")
    assert storage.held() == 1001 + 100 - 100 * SWEEP  # each call dropped SWEEP strangers, and kept its own key
    for address in range(1000):
        counts.hit(minute, f"latecomer {address}")
    assert storage.held() == 1 + 100 + 1000  # every stranger dropped; the owner kept
    assert counts.get_window_stats(minute, "the owner").remaining == 9


def test_fixed_window_counters_end_with_their_window():
    clock = Clock()
    storage = MemoryCounts(clock=clock)
    assert [storage.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert storage.get("k") == 3 and storage.get_expiry("k") == clock.now + 60
    clock.now += 60
    assert storage.get("k") == 0 and storage.get_expiry("k") == clock.now
    assert storage.incr("k", 60) == 1
    storage.clear("k")
    assert storage.get("k") == 0
    storage.incr("other", 60)
    assert storage.reset() == 1 and storage.held() == 0
    assert storage.check()
