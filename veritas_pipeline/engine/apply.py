"""Writing a plan to VeritasBot: bulk requests in batches, bad objects isolated, nothing else lost, and
no write sent blindly twice.

Nautobot's bulk writes are all or nothing. When a batch is refused, the objects that Nautobot names in
its per-item errors fail with that text and the rest is sent again; when it names none (a 500, a
non-list body), the batch is split in halves until each bad object stands alone.

A batch whose answer was lost (timeout, reset, 502-504 after sending) may have been committed. It is
settled by reading its objects back: one that is there as intended is done, one that is absent is sent
again, one that differs is updated. A refused create whose object exists under its id, and a delete of
an object already gone, are settled the same way, so a repeat of a committed write is never a failure.
Whatever the refusal says: a lost answer does not mean the request has ended, so the first send can
commit after the read-back found nothing, and the repeat is then refused for the unique key its own
object holds ("The fields parent, name must make a unique set"), not as "already exists".
Each batch's intent is journaled (state database) before it is sent and closed with its outcome; an
entry a dead run left open is settled by the next run (`settle_open`), so the audit trail records every
committed change exactly once.

The batches of one step (a model's creates of one tree level, its updates, its deletes) are sent side by
side, each with its own bisection and settlement; the next step starts once every batch of this one is
done. At most `concurrency` write requests are in flight at once over everything this applier sends, also
when several models are applied from several threads. Each batch's outcomes are merged in batch order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any, Callable, Protocol

from .bounded import run_bounded
from .client import NautobotClient, NautobotUnavailable, NautobotWriteError, OutcomeUnknown
from .planner import Failure, Write, recorded_value
from .registry import MODELS, ModelSpec

log = logging.getLogger(__name__)

# Whether VeritasBot's row holds what a write meant to set: the planner's comparison, by canonical form.
Holds = Callable[[ModelSpec, Write, dict], bool]
# Rounds of settling and re-sending one batch whose answers keep getting lost, before the group stops.
_SETTLE_ROUNDS = 6


_METHODS = {"create": "POST", "update": "PATCH", "delete": "DELETE"}


class Journal(Protocol):
    """Where each request's intent is kept before it is sent, and its outcome (with the audit entries of
    what it did) once known."""

    def open(self, label: str, action: str, writes: list[Write], body_digest: str) -> int: ...

    def close(self, entry_id: int, outcome: str, done: list[tuple[Write, dict]], failed: list[Failure]) -> None: ...


@dataclass
class _Outcome:
    """What one request did: answered, refused (per object) or settled by reading VeritasBot."""
    name: str
    done: list[tuple[Write, dict]]
    failed: list[Failure]
    settled: int = 0


@dataclass
class ApplyResult:
    done: list[tuple[Write, dict]] = field(default_factory=list)  # each write with VeritasBot's answer
    failed: list[Failure] = field(default_factory=list)
    requests: int = 0
    settled: int = 0  # writes whose answer was lost or refused as a repeat, settled by reading them back

    def audit_entries(self) -> list[dict]:
        return audit_entries(self.done, self.failed)

    def add(self, other: ApplyResult) -> None:
        self.done += other.done
        self.failed += other.failed
        self.requests += other.requests
        self.settled += other.settled


def audit_entries(done: list[tuple[Write, dict]], failed: list[Failure]) -> list[dict]:
    """State-database rows for writes: what was done, and what failed and why."""
    entries = [{"model": write.label, "object_id": write.veritas_id, "object_name": write.name,
                "action": write.action, "changes": _jsonable(write.changes), "succeeded": True, "error": None}
               for write, _row in done]
    entries += [{"model": failure.label, "object_id": failure.object_id, "object_name": failure.name,
                 "action": failure.action, "changes": None, "succeeded": False,
                 "error": _error_text(failure.error)} for failure in failed]
    return entries


def journal_objects(writes: list[Write]) -> list[dict]:
    """A batch's intent as the journal keeps it: enough to settle it after a crash and audit what landed."""
    return json.loads(json.dumps([{"id": w.veritas_id, "production_id": w.production_id, "name": w.name,
                                   "changes": _jsonable(w.changes),
                                   "intended": {name: recorded_value(MODELS[w.label].field(name), value)
                                                for name, value in w.intended.items()}} for w in writes],
                                 default=str))


def writes_of_journal(label: str, action: str, objects: list[dict]) -> list[Write]:
    """The writes of a journal entry, rebuilt to settle them (a credential-bearing value is only its digest
    there, so an update of one is taken as not landed, and planned again)."""
    return [Write(label, action, o["id"], o["production_id"], o["name"], {"id": o["id"]},
                  {name: tuple(pair) for name, pair in (o["changes"] or {}).items()}, intended=o["intended"])
            for o in objects]


class Applier:
    def __init__(self, client: NautobotClient, batch_size: int = 250, *, holds: Holds,
                 journal: Journal | None = None, backoff: float = 0.5, concurrency: int = 1):
        """`journal` and `holds` are called from the sending threads when `concurrency` is above 1."""
        if concurrency < 1:
            raise ValueError(f"write concurrency must be 1 or more, got {concurrency}")
        self.client = client
        self.batch_size = batch_size
        self.holds = holds
        self.journal = journal
        self.backoff = backoff
        self.concurrency = concurrency
        self._writes_in_flight = threading.BoundedSemaphore(concurrency)

    def apply(self, spec: ModelSpec, writes: list[Write], result: ApplyResult) -> ApplyResult:
        """Send `writes` (creates level by level, then updates), adding each outcome to `result` as it comes,
        so that what was done before an error that stops the group is still recorded."""
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

    def settle_open(self, spec: ModelSpec, action: str, writes: list[Write]) -> ApplyResult:
        """The outcome of writes a dead run sent: those VeritasBot holds as intended (or, for deletes, no
        longer holds) are done; the rest never landed, and the next plan finds them again."""
        result = ApplyResult()
        result.done, _unsettled = self._read_back(spec, action, writes)
        result.settled = len(writes)
        return result

    # ---------------------------------------------------------------- sending
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
        """Every batch, `concurrency` at once; their outcomes are added to `result` in batch order, also
        those of the batches that ended when one raised (what they did is journaled and must be counted)."""
        starts = range(0, len(writes), self.batch_size)
        outcomes = {start: ApplyResult() for start in starts}

        def send(start: int) -> None:
            batch = writes[start:start + self.batch_size]
            log.info("%s: %s %d-%d of %d", spec.label, action, start + 1, start + len(batch), len(writes))
            self._send_batch(spec, action, batch, outcomes[start])

        try:
            run_bounded(send, starts, self.concurrency, f"write-{spec.label}")
        finally:
            for start in starts:
                result.add(outcomes[start])

    def _send_batch(self, spec: ModelSpec, action: str, batch: list[Write], result: ApplyResult,
                    round_: int = 0) -> None:
        """One request and its outcome, journaled: the entry opens before it is sent and closes with what
        this request did (which the journal records in the audit trail in the same transaction); writes to
        send again (split halves, objects not yet there) follow as requests of their own."""
        if not batch:
            return
        if round_:  # a re-send after lost answers: pause, within the group's retry budget
            delay = min(self.backoff * 2 ** (round_ - 1), 30.0)
            if round_ > _SETTLE_ROUNDS or not self.client.retry_budget.take(delay):
                raise self.client.unavailable(_METHODS[action], spec.endpoint,
                                              f"answers to writes keep getting lost, {round_} times in a row")
            time.sleep(delay)
        result.requests += 1
        bodies = [write.body for write in batch]
        entry = self.journal.open(spec.label, action, batch, _digest(bodies)) if self.journal else None
        try:
            outcome, follow_ups = self._attempt(spec, action, batch, bodies, round_)
        except NautobotUnavailable:
            if entry is not None:
                self.journal.close(entry, "unavailable", [], [])
            raise
        result.done += outcome.done
        result.failed += outcome.failed
        result.settled += outcome.settled
        if entry is not None:
            self.journal.close(entry, outcome.name, outcome.done, outcome.failed)
        for again_action, writes, again_round in follow_ups:
            self._send_batch(spec, again_action, writes, result, again_round)

    def _attempt(self, spec: ModelSpec, action: str, batch: list[Write], bodies: list[dict],
                 round_: int) -> tuple[_Outcome, list]:
        try:
            with self._writes_in_flight:
                if action == "create":
                    answer = self.client.create(spec.endpoint, bodies)
                elif action == "update":
                    answer = self.client.update(spec.endpoint, bodies)
                else:
                    self.client.delete(spec.endpoint, [write.veritas_id for write in batch])
                    answer = bodies
        except OutcomeUnknown as unknown:
            log.info("%s: %s of %d objects: %s; reading them back", spec.label, action, len(batch), unknown.reason)
            done, unsettled = self._read_back(spec, action, batch)
            return _Outcome("settled", done, [], len(batch)), _by_action(unsettled, round_ + 1)
        except NautobotWriteError as error:
            if action == "delete":  # ids already gone are done; the others are isolated
                gone, present = self._read_back(spec, action, batch)
                if gone:
                    return _Outcome("settled", gone, [], len(gone)), [("delete", present, 0)]
            return self._isolate(spec, action, batch, error)
        by_id = {row["id"]: row for row in answer or []}
        done = [(write, by_id[write.veritas_id]) for write in batch if write.veritas_id in by_id]
        # Bulk PATCH silently skips ids it cannot see.
        failed = [Failure(spec.label, write.veritas_id, write.name, action,
                          "VeritasBot did not return the object: it no longer exists there")
                  for write in batch if write.veritas_id not in by_id]
        return _Outcome("answered", done, failed), []

    def _read_back(self, spec: ModelSpec, action: str, batch: list[Write]) -> tuple[list[tuple[Write, dict]],
                                                                                      list[Write]]:
        """(done, still to send) for writes that may or may not have landed, from VeritasBot's rows now. A
        create that landed but differs is done, plus an update to what it should be."""
        rows = {row["id"]: row for row in self.client.list_by_ids(spec.endpoint, [w.veritas_id for w in batch])}
        done: list[tuple[Write, dict]] = []
        unsettled: list[Write] = []
        for write in batch:
            row = rows.get(write.veritas_id)
            if action == "delete":
                (unsettled.append(write) if row is not None else done.append((write, write.body)))
            elif row is None:
                unsettled.append(write)
            elif self.holds(spec, write, row):
                done.append((write, row))
            else:
                if action == "create":
                    done.append((write, row))
                unsettled.append(Write(write.label, "update", write.veritas_id, write.production_id, write.name,
                                       write.body, write.changes if action == "update" else {},
                                       intended=write.intended))
        return done, unsettled

    def _isolate(self, spec: ModelSpec, action: str, batch: list[Write],
                 error: NautobotWriteError) -> tuple[_Outcome, list]:
        if len(batch) == 1:
            return self._fail_or_settle(spec, action, batch, [_single_error(error.detail)])
        detail = error.detail
        if isinstance(detail, list) and len(detail) == len(batch) and any(detail):
            refused = [(write, item_error) for write, item_error in zip(batch, detail) if item_error]
            outcome, follow_ups = self._fail_or_settle(spec, action, [w for w, _e in refused], [e for _w, e in refused])
            return outcome, [*follow_ups, (action, [w for w, e in zip(batch, detail) if not e], 0)]
        middle = len(batch) // 2
        return _Outcome("refused", [], []), [(action, batch[:middle], 0), (action, batch[middle:], 0)]

    def _fail_or_settle(self, spec: ModelSpec, action: str, writes: list[Write],
                        errors: list[Any]) -> tuple[_Outcome, list]:
        """Refused writes fail with Nautobot's text, except creates whose object exists under its id: a
        repeat of a committed create, done (and updated if it differs). The planner only creates ids
        VeritasBot did not hold, so one that is there now was put there by an earlier send."""
        repeats = list(writes) if action == "create" else []
        landed: list[tuple[Write, dict]] = []
        follow_ups: list = []
        if repeats:
            landed, unsettled = self._read_back(spec, action, repeats)
            follow_ups = [("update", [w for w in unsettled if w.action == "update"], 0)]
        landed_ids = {write.veritas_id for write, _row in landed}
        failed = [Failure(spec.label, write.veritas_id, write.name, action, item_error)
                  for write, item_error in zip(writes, errors) if write.veritas_id not in landed_ids]
        return _Outcome("refused", landed, failed, len(landed)), follow_ups


def _by_action(writes: list[Write], round_: int) -> list[tuple[str, list[Write], int]]:
    return [(action, [w for w in writes if w.action == action], round_) for action in ("create", "update", "delete")]


def _single_error(detail):
    if isinstance(detail, list) and len(detail) == 1:
        return detail[0]
    return detail


def _digest(bodies: list[dict]) -> str:
    return hashlib.sha256(json.dumps(bodies, sort_keys=True, default=str).encode()).hexdigest()


def _jsonable(changes: dict[str, tuple[Any, Any]]) -> dict[str, list[Any]]:
    return {name: [before, after] for name, (before, after) in changes.items()}


def _error_text(error: Any) -> str:
    return error if isinstance(error, str) else json.dumps(error, default=str)
