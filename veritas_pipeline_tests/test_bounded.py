"""run_bounded: the engine's one way of doing things side by side (page reads, write batches); in_chunks, its one
way of cutting ids and rows into pieces; and how the seconds of writes sent side by side are counted."""

from __future__ import annotations

import random
import threading
import time

import pytest

from veritas_pipeline.engine.bounded import in_chunks, run_bounded
from veritas_pipeline.engine.sync import covered_seconds


def test_results_come_in_the_order_of_the_items_with_at_most_limit_running():
    running, most = 0, 0
    lock = threading.Lock()

    def call(item: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.01 * (item % 3))  # finishing out of order
        with lock:
            running -= 1
        return item * 10

    assert run_bounded(call, list(range(12)), 3, "test") == [item * 10 for item in range(12)]
    assert most == 3


def test_the_earliest_failing_item_raises_and_calls_not_started_are_dropped():
    started = []

    def call(item: int) -> int:
        started.append(item)
        if item in (1, 2):
            time.sleep(0.05 if item == 1 else 0)  # item 2 fails first in time, item 1 first in order
            raise ValueError(f"item {item}")
        time.sleep(0.05)
        return item

    with pytest.raises(ValueError, match="item 1"):
        run_bounded(call, list(range(40)), 3, "test")
    assert len(started) < 40


def test_a_limit_of_one_calls_in_order_in_this_thread_and_stops_at_the_first_error():
    seen = []

    def call(item: int) -> int:
        seen.append((item, threading.current_thread()))
        if item == 2:
            raise RuntimeError("stop")
        return item

    with pytest.raises(RuntimeError):
        run_bounded(call, [0, 1, 2, 3], 1, "test")
    assert seen == [(0, threading.current_thread()), (1, threading.current_thread()), (2, threading.current_thread())]


def test_overlapping_write_spans_count_once():
    spans = [(random.uniform(0, 100), random.uniform(0, 20)) for _ in range(random.randint(1, 30))]
    spans = [(start, start + length) for start, length in spans]
    # The union on a fine grid: each step of 1/100 s is covered or not.
    steps = {step for start, end in spans for step in range(round(start * 100), round(end * 100))}
    assert covered_seconds(spans) == pytest.approx(len(steps) / 100, abs=len(spans) * 0.02)
    assert covered_seconds(spans) <= sum(end - start for start, end in spans) + 1e-9
    assert covered_seconds([(0.0, 4.0), (1.0, 2.0), (3.0, 6.0), (10.0, 11.0)]) == pytest.approx(7.0)
    assert covered_seconds([]) == 0.0


def test_chunks_keep_every_item_once_in_order_each_at_most_size_only_the_last_shorter():
    rng = random.Random()
    for _ in range(200):
        items, size = list(range(rng.randrange(0, 60))), rng.randrange(1, 12)
        chunks = in_chunks(items, size)
        assert [item for chunk in chunks for item in chunk] == items
        assert all(len(chunk) == size for chunk in chunks[:-1])
        assert all(0 < len(chunk) <= size for chunk in chunks)
    with pytest.raises(ValueError):
        in_chunks([1, 2], 0)
