"""Writing a plan to VeritasBot: bulk requests in batches, bad objects isolated, nothing else lost.

Nautobot's bulk writes are all or nothing. When a batch is refused, the objects that Nautobot names in
its per-item errors fail with that text and the rest is sent again; when it names none (a 500, a
non-list body), the batch is split in halves until each bad object stands alone.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from .client import NautobotClient, NautobotWriteError
from .planner import Failure, Write
from .registry import ModelSpec

log = logging.getLogger(__name__)


@dataclass
class ApplyResult:
    done: list[tuple[Write, dict]] = field(default_factory=list)  # each write with VeritasBot's answer
    failed: list[Failure] = field(default_factory=list)
    requests: int = 0

    def audit_entries(self) -> list[dict]:
        """State-database rows for these writes: what was done, and what failed and why."""
        entries = [{"model": write.label, "object_id": write.veritas_id, "object_name": write.name,
                    "action": write.action, "changes": _jsonable(write.changes), "succeeded": True, "error": None}
                   for write, _row in self.done]
        entries += [{"model": failure.label, "object_id": failure.object_id, "object_name": failure.name,
                     "action": failure.action, "changes": None, "succeeded": False,
                     "error": _error_text(failure.error)} for failure in self.failed]
        return entries


class Applier:
    def __init__(self, client: NautobotClient, batch_size: int = 250):
        self.client = client
        self.batch_size = batch_size

    def apply(self, spec: ModelSpec, writes: list[Write]) -> ApplyResult:
        result = ApplyResult()
        creates = sorted((w for w in writes if w.action == "create"), key=lambda w: w.level)
        # Level by level: a tree's children are only sent once their parents exist.
        for _level, same_level in groupby(creates, key=lambda w: w.level):
            self._send(spec, "create", self._without_failed_parents(spec, list(same_level), result), result)
        self._send(spec, "update", [w for w in writes if w.action == "update"], result)
        return result

    def delete(self, spec: ModelSpec, writes: list[Write]) -> ApplyResult:
        """Bulk deletes; a refused batch (409: something still references an object) is split the same way."""
        result = ApplyResult()
        self._send(spec, "delete", writes, result)
        return result

    def _without_failed_parents(self, spec: ModelSpec, writes: list[Write], result: ApplyResult) -> list[Write]:
        if not spec.tree:
            return writes
        failed_ids = {failure.object_id for failure in result.failed}
        kept = []
        for write in writes:
            parent = write.body.get(spec.tree)
            if parent in failed_ids:
                result.failed.append(Failure(spec.label, write.veritas_id, write.name, write.action,
                                             f"not written: its parent {parent} failed"))
            else:
                kept.append(write)
        return kept

    def _send(self, spec: ModelSpec, action: str, writes: list[Write], result: ApplyResult) -> None:
        for start in range(0, len(writes), self.batch_size):
            batch = writes[start:start + self.batch_size]
            log.info("%s: %s %d-%d of %d", spec.label, action, start + 1, start + len(batch), len(writes))
            self._send_batch(spec, action, batch, result)

    def _send_batch(self, spec: ModelSpec, action: str, batch: list[Write], result: ApplyResult) -> None:
        if not batch:
            return
        result.requests += 1
        bodies = [write.body for write in batch]
        try:
            if action == "create":
                answer = self.client.create(spec.endpoint, bodies)
            elif action == "update":
                answer = self.client.update(spec.endpoint, bodies)
            else:
                self.client.delete(spec.endpoint, [write.veritas_id for write in batch])
                answer = bodies
        except NautobotWriteError as error:
            self._isolate(spec, action, batch, error, result)
            return
        by_id = {row["id"]: row for row in answer or []}
        for write in batch:
            if write.veritas_id in by_id:
                result.done.append((write, by_id[write.veritas_id]))
            else:  # bulk PATCH silently skips ids it cannot see
                result.failed.append(Failure(spec.label, write.veritas_id, write.name, action,
                                             "VeritasBot did not return the object: it no longer exists there"))

    def _isolate(self, spec: ModelSpec, action: str, batch: list[Write], error: NautobotWriteError,
                 result: ApplyResult) -> None:
        if len(batch) == 1:
            result.failed.append(Failure(spec.label, batch[0].veritas_id, batch[0].name, action,
                                         _single_error(error.detail)))
            return
        detail = error.detail
        if isinstance(detail, list) and len(detail) == len(batch) and any(detail):
            retry = []
            for write, item_error in zip(batch, detail):
                if item_error:
                    result.failed.append(Failure(spec.label, write.veritas_id, write.name, action, item_error))
                else:
                    retry.append(write)
            self._send_batch(spec, action, retry, result)
            return
        middle = len(batch) // 2
        self._send_batch(spec, action, batch[:middle], result)
        self._send_batch(spec, action, batch[middle:], result)


def _single_error(detail):
    if isinstance(detail, list) and len(detail) == 1:
        return detail[0]
    return detail


def _jsonable(changes: dict[str, tuple[Any, Any]]) -> dict[str, list[Any]]:
    return {name: [before, after] for name, (before, after) in changes.items()}


def _error_text(error: Any) -> str:
    return error if isinstance(error, str) else json.dumps(error, default=str)
