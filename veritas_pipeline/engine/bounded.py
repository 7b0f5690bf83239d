"""Work in bounded pieces: calls side by side, a bounded number at once, their results in the order of their
inputs; and sequences cut into pieces of a bounded size (a request's ids, a statement's rows)."""

from __future__ import annotations

from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Callable, Sequence, TypeVar

Item, Result = TypeVar("Item"), TypeVar("Result")


def in_chunks(items: Sequence[Item], size: int) -> list[Sequence[Item]]:
    """`items` cut into consecutive pieces of `size` (the last one shorter), in order."""
    return [items[start:start + size] for start in range(0, len(items), size)]


def run_bounded(call: Callable[[Item], Result], items: Sequence[Item], limit: int, name: str) -> list[Result]:
    """`call` of every item, at most `limit` at once, the results in the items' order. When one raises, the
    calls not started yet are dropped, those running end, and the error of the earliest item that failed is
    raised (the same error whatever the timing)."""
    if limit <= 1 or len(items) <= 1:
        return [call(item) for item in items]
    with ThreadPoolExecutor(min(limit, len(items)), thread_name_prefix=name) as pool:
        futures = [pool.submit(call, item) for item in items]
        wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            future.cancel()
    failed = next((future for future in futures if not future.cancelled() and future.exception()), None)
    if failed is not None:
        raise failed.exception()
    return [future.result() for future in futures]
