"""The sync of one group: load, plan, apply, audit. Plain Python; the Dagster layer only calls it."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .apply import Applier, ApplyResult, audit_entries, journal_objects, writes_of_journal
from .catalog import Catalog, Side
from .client import NautobotClient, NautobotWriteError, OutcomeUnknown
from .holders import DiscoveryHolders
from .planner import IDENTITY_ACTION, Conflict, Failure, ModelPlan, Pending, Planner, Write
from .policy import PrecedencePolicy
from .prune import PRUNE_RUN_GROUP, PruneReport, prune_orphans
from .registry import (
    CUSTOM_FIELD_MODEL,
    GROUPS,
    MODELS,
    SYNCED_MODELS,
    TAG_MODEL,
    ModelSpec,
    models_of_group,
)
from .snapshot import RefreshReport, RowSnapshot
from .state import StateStore

log = logging.getLogger(__name__)

# Writes of the sync tag whose answers were lost, before the group stops.
_SETTLE_ATTEMPTS = 5
# Custom field values are written by key, not as references: Nautobot drops a key it has no definition for
# and refuses a choice it does not know, so a model carrying them waits for these models' writes.
_CUSTOM_FIELD_DEFINITIONS = frozenset({CUSTOM_FIELD_MODEL, "extras.customfieldchoice"})


@dataclass
class ModelReport:
    label: str
    in_production: int
    in_veritas: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    adopted: int = 0
    pending: int = 0
    failed: int = 0
    conflicts: int = 0
    orphans: int = 0
    planned_creates: int = 0
    planned_updates: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class GroupReport:
    group: str
    run_id: str
    dry_run: bool
    models: list[ModelReport] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)  # planned (dry run) or attempted
    failures: list[Failure] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)
    # (label, production id, VeritasBot id, name, the precedence rule applied) of every adopted object planned
    adoptions: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    covered: dict[str, list[str] | None] = field(default_factory=dict)  # label -> VeritasBot ids planned, None: all
    orphans: list[tuple[str, str, str]] = field(default_factory=list)  # (label, VeritasBot id, name)
    # "apply": seconds with any of the group's writes in flight (models written side by side count once).
    seconds: dict[str, float] = field(default_factory=lambda: {"load": 0.0, "plan": 0.0, "apply": 0.0})
    apply_spans: list[tuple[float, float]] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)
    # Against the group's previous real run (state database rows: model, object_id, field, ...).
    conflicts_new: list[dict] = field(default_factory=list)
    conflicts_resolved: list[dict] = field(default_factory=list)
    settled: int = 0  # writes whose answer was lost (or refused as a repeat), settled by reading them back
    rows_source: str = ""  # a full run: how its synced models were read (whole, or the row snapshot and feeds)

    @property
    def succeeded(self) -> bool:
        return not self.failures

    @property
    def identity_failures(self) -> list[Failure]:
        """Production objects left out because their VeritasBot counterpart is not theirs alone (or not
        one): they never reach a write, so later groups need not wait for them."""
        return [failure for failure in self.failures if failure.action == IDENTITY_ACTION]

    @property
    def write_failures(self) -> list[Failure]:
        return [failure for failure in self.failures if failure.action != IDENTITY_ACTION]

    def total(self, counter: str) -> int:
        return sum(getattr(model, counter) for model in self.models)


@dataclass(eq=False)
class _Applying:
    """One model's writes, sent by the writer pool while the main thread plans the next models; what they
    did is recorded in the main thread when they are joined (the catalog and the planner are not shared)."""
    spec: ModelSpec
    plan: ModelPlan
    model: ModelReport
    result: ApplyResult = field(default_factory=ApplyResult)
    future: Future | None = None
    span: tuple[float, float] | None = None  # (started, ended) of its writes, monotonic clock


def covered_seconds(spans: list[tuple[float, float]]) -> float:
    """Length of the union of the (start, end) spans: overlapping spans count once."""
    total, reached = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reached:
            total += end - max(start, reached)
            reached = end
    return total


def _waits_for(spec: ModelSpec, label: str) -> bool:
    """Whether `spec`'s writes need `label`'s to have landed first."""
    return spec.may_reference(label) or (spec.custom_fields and label in _CUSTOM_FIELD_DEFINITIONS)


class RunJournal:
    """The applier's write-ahead journal for one run, in the state database; `group` names the group (or the
    prune) whose writes are being sent."""

    def __init__(self, state: StateStore, run_id: str):
        self.state, self.run_id, self.group = state, run_id, ""

    def open(self, label: str, action: str, writes: list[Write], body_digest: str) -> int:
        return self.state.open_journal(self.run_id, self.group, label, action, journal_objects(writes), body_digest)

    def close(self, entry_id: int, outcome: str, done: list[tuple[Write, dict]], failed: list[Failure]) -> None:
        self.state.close_journal(entry_id, outcome, audit_entries(done, failed), self.run_id, self.group)


class SyncEngine:
    """One run's view of the two instances. Build one per run: its catalog caches what it read.

    An incremental engine reads objects by id on both sides, as `sync_group(production_ids=...)` and their
    references need them, instead of whole models; any engine reads discovered (lookup) models so."""

    def __init__(self, production: NautobotClient, veritas: NautobotClient, *,
                 policy: PrecedencePolicy | None = None, state: StateStore | None = None,
                 batch_size: int = 250, write_concurrency: int = 1, run_id: str | None = None,
                 incremental: bool = False, whole_run: bool = True, whole_read_interval: float = 0.0):
        """`whole_read_interval`: seconds after a whole read within which a full run plans from the row snapshot
        brought up to date through both change feeds instead of reading both instances whole (0: it always
        reads whole)."""
        if not production.read_only:
            raise ValueError("the production client must be read-only")
        self.production = production
        self.veritas = veritas
        self.policy = policy or PrecedencePolicy()
        self.state = state
        self.run_id = run_id or uuid.uuid4().hex
        self.incremental = incremental
        self.whole_run = whole_run  # False: a run of some groups, which never saves the row snapshot
        self.catalog = Catalog(production, veritas, adoptions=state.adoptions if state else None,
                               by_id=incremental)
        self.journal = RunJournal(state, self.run_id) if state else None
        # `holds` runs in the writer threads: it reads only the rows of the model being written and of the
        # models it references, whose writes were joined before it was planned.
        self.applier = Applier(veritas, batch_size=batch_size, journal=self.journal, backoff=veritas.settings.backoff,
                               holds=lambda spec, write, row: self.planner().written_as_intended(spec, write, row),
                               concurrency=write_concurrency)
        self.write_concurrency = write_concurrency
        self._writers: ThreadPoolExecutor | None = None  # during a group, with more than one writer
        self._applying: list[_Applying] = []
        self._planner: Planner | None = None
        self._journal_settled = False
        # The row snapshot (snapshot.py): the feeds' cursors taken before a full sync's first read, the
        # groups this engine synced whole, and the refresh of a checks-alone run.
        self._feed_marks: dict | None = None
        self._synced_groups: set[str] = set()
        self._whole_groups: set[str] = set()
        self._refresh: RefreshReport | None = None
        self.whole_read_interval = whole_read_interval
        self.rows_source = ""  # how a full run's synced models were read: whole, or from the row snapshot
        self._read_whole = True
        self._created: str | None = None  # the id of an object this run created (its change entry names our user)

    # ---------------------------------------------------------------- setup
    def _tag_ids(self) -> dict[str, str]:
        """The ids of the sync tag and the discovery tags VeritasBot has, by name."""
        return self.catalog.tag_ids([self.policy.sync_tag, *self.policy.discovery_tags])

    def _ensure_sync_tag(self, dry_run: bool) -> None:
        """The sync tag must allow every model the sync tags before anything carries it."""
        wanted = sorted(spec.label for spec in SYNCED_MODELS if spec.tags)
        tag_id = self._tag_ids().get(self.policy.sync_tag)
        existing = self.catalog.rows(Side.VERITAS, TAG_MODEL)[tag_id] if tag_id else None
        if dry_run:
            return
        endpoint = MODELS[TAG_MODEL].endpoint
        if existing is None:
            # Its own id, so that a create whose answer is lost can be read back, and a repeat is refused.
            body = {"id": str(uuid.uuid4()), "name": self.policy.sync_tag, "content_types": wanted,
                    "color": "2196f3", "description": "Created or updated by veritas_pipeline from production Nautobot"}
            send = self.veritas.create
        elif not set(wanted) <= set(existing.get("content_types") or ()):
            body = {"id": existing["id"], "content_types": sorted(set(wanted) | set(existing["content_types"]))}
            send = self.veritas.update
        else:
            return
        self.catalog.record_written(TAG_MODEL, [self._settled_tag_write(send, endpoint, body, wanted)])

    def _settled_tag_write(self, send, endpoint: str, body: dict, wanted: list[str]) -> dict:
        """The sync tag's write, settled like the applier's: when its answer is lost (or a repeat is refused),
        the tag is read back, and it is done once it allows every model the sync tags."""
        for _attempt in range(_SETTLE_ATTEMPTS):
            try:
                return send(endpoint, [body])[0]
            except (OutcomeUnknown, NautobotWriteError) as error:
                landed = self.veritas.list_by_ids(endpoint, [body["id"]])
                if landed and set(wanted) <= set(landed[0].get("content_types") or ()):
                    return landed[0]
                if isinstance(error, NautobotWriteError):
                    raise
        raise self.veritas.unavailable("POST" if send == self.veritas.create else "PATCH", endpoint,
                                       f"the sync tag's writes keep getting lost, {_SETTLE_ATTEMPTS} times")

    def planner(self) -> Planner:
        if self._planner is None:
            tag_ids = self._tag_ids()
            self._planner = Planner(
                self.catalog, self.policy, sync_tag_id=tag_ids.get(self.policy.sync_tag),
                discovery_tag_ids=frozenset(tag_ids[name] for name in self.policy.discovery_tags if name in tag_ids),
                holders=DiscoveryHolders(self.veritas, [name for name in self.policy.discovery_tags if name in tag_ids]))
        return self._planner

    def settle_open_journal(self) -> int:
        """Settle the journal entries a dead run left open, before this run writes: each object VeritasBot
        holds as that run intended is recorded in the audit trail under that run, once; the rest never
        landed, and this run's plans find it again. Returns the number of entries settled."""
        entries = [entry for entry in self.state.open_journal_entries() if entry["run_id"] != self.run_id] \
            if self.state else []
        for entry in entries:
            spec = MODELS[entry["model"]]
            result = self.applier.settle_open(spec, entry["action"],
                                              writes_of_journal(spec.label, entry["action"], entry["objects"]))
            self.state.close_journal(entry["id"], "settled after its run died", result.audit_entries(),
                                     entry["run_id"], entry["group_name"])
            log.warning("%s: settled a %s of %d objects that run %s left in flight: %d had landed", spec.label,
                        entry["action"], len(entry["objects"]), entry["run_id"], len(result.done))
        return len(entries)

    # ---------------------------------------------------------------- run
    def _row_snapshot(self) -> RowSnapshot:
        return RowSnapshot(self.state, {Side.PRODUCTION: self.production, Side.VERITAS: self.veritas})

    def _start_reading(self) -> None:
        """Before a full run's first read: the synced models' rows from the row snapshot brought up to date
        through both change feeds, unless a whole read is due (then the feeds' cursors, taken before the
        reads, so that what changes during them is read next time)."""
        snapshot = self._row_snapshot()
        due = snapshot.whole_read_due(self.whole_read_interval)
        if due:
            self._feed_marks = snapshot.feed_marks()
            self.rows_source = f"read whole: {due}"
        else:
            rows, refresh = snapshot.refresh()
            for (side, label), table in rows.items():
                self.catalog.use_rows(side, label, table)
            self.catalog.use_lookup_matches(self.state.load_lookup_matches())
            self._feed_marks, self._read_whole = refresh.cursors, False
            self.rows_source = f"row snapshot: {refresh.summary()}"
        log.info("synced models %s", self.rows_source)

    def save_snapshot(self) -> bool:
        """After every group was synced whole by this engine: save what it planned from and wrote as the row
        snapshot that the checks between syncs and the next full run start from. A dry run's reads count too:
        they are what both instances held, and the cursors date from before them. Returns whether it was saved."""
        if self.state is None or self._feed_marks is None or self._whole_groups != set(GROUPS):
            return False
        self._row_snapshot().save_after_sync(self._feed_marks, self.catalog.whole_rows(),
                                             read_whole=self._read_whole, written=self.catalog.written,
                                             created=self._created, matches=self.catalog.lookup_matches())
        return True

    def refresh_from_snapshot(self) -> RefreshReport | None:
        """For checks run alone (this engine synced nothing): the synced models' rows from the row snapshot,
        brought up to date through both change feeds, and the lookup matches that still hold, handed to the
        catalog; once per engine. None when the engine synced in this run: its catalog holds what it read and
        wrote."""
        if self.state is None or self._synced_groups or self.incremental:
            return None
        if self._refresh is None:
            rows, self._refresh = self._row_snapshot().refresh()
            for (side, label), table in rows.items():
                self.catalog.use_rows(side, label, table)
            self.catalog.use_lookup_matches(self.state.load_lookup_matches())
        return self._refresh

    def prune_orphans(self, *, dry_run: bool = False) -> PruneReport:
        """Every synced model's orphans (the planner's, computed once per run), deleted only when the
        policy opts in; each delete request's outcome goes to the audit trail through the journal."""
        self._start_writing(PRUNE_RUN_GROUP, dry_run)
        return prune_orphans(self.catalog, lambda spec: self.planner().orphans(spec),
                             lambda spec: self.planner().synced_count(spec), self.applier, self.policy,
                             dry_run=dry_run)

    def _start_writing(self, group: str, dry_run: bool) -> None:
        """A new retry budget on both instances; before the run's first write, the dead runs' journal."""
        for client in (self.production, self.veritas):
            client.retry_budget.start()
        if self.journal:
            self.journal.group = group
        if not dry_run and not self._journal_settled:
            self._journal_settled = True
            self.settle_open_journal()

    def sync_group(self, group: str, *, dry_run: bool = False,
                   production_ids: dict[str, set[str] | None] | None = None) -> GroupReport:
        """Sync every model of a group; with `production_ids` only the models listed, each restricted to
        the given production ids (None: the whole model, orphans included)."""
        if group not in GROUPS:
            raise ValueError(f"unknown sync group {group!r}; known: {', '.join(GROUPS)}")
        report = GroupReport(group, self.run_id, dry_run)
        log.info("group %s: started%s", group, " (dry run)" if dry_run else "")
        first = not self._synced_groups
        self._synced_groups.add(group)
        if self.state:
            self.state.start_run(self.run_id, group, dry_run)
        try:
            if self.state and self.whole_run and production_ids is None and not self.incremental \
                    and self._feed_marks is None and first:
                self._start_reading()
            return self._sync_group(group, report, dry_run, production_ids)
        except Exception as error:
            if self.state:  # the group stopped: its run record says so, with the one-line cause
                self.state.finish_run(self.run_id, group, False, {
                    "models": [model.as_dict() for model in report.models], "seconds": report.seconds,
                    "error": str(error)})
            raise

    def _sync_group(self, group: str, report: GroupReport, dry_run: bool,
                    production_ids: dict[str, set[str] | None] | None) -> GroupReport:
        started = time.monotonic()
        self._start_writing(group, dry_run)
        self._ensure_sync_tag(dry_run)
        planner = self.planner()
        report.seconds["load"] += time.monotonic() - started
        deferred: list[tuple[ModelSpec, ModelReport, ModelPlan]] = []
        with self._writers_of_group(report, planner):
            for spec in models_of_group(group):
                if production_ids is not None and spec.label not in production_ids:
                    continue
                model, plan = self._sync_model(spec, planner, report, dry_run,
                                               None if production_ids is None else production_ids[spec.label])
                if plan.deferred:
                    deferred.append((spec, model, plan))
            self._join(report, planner)
            for spec, model, plan in deferred:
                failed = {failure.object_id for failure in report.failures}
                writes = [write for write in plan.deferred if write.veritas_id not in failed]
                report.writes.extend(writes)
                model.planned_updates += len(writes)
                if not dry_run:
                    self._apply(spec, writes, plan, model, report, planner)
        if production_ids is None:
            self._whole_groups.add(group)
            report.rows_source = self.rows_source
        report.requests = {"production": self.production.requests_made, "veritas": self.veritas.requests_made}
        log.info("group %s: %s in %.1f s: %d created, %d updated, %d unchanged, %d failed, %d pending, "
                 "%d conflicts", group, "planned" if dry_run else "synced", time.monotonic() - started,
                 report.total("created"), report.total("updated"), report.total("unchanged"),
                 report.total("failed"), report.total("pending"), report.total("conflicts"))
        if self.state:
            self.state.record_conflicts(self.run_id, group, report.conflicts)
            report.conflicts_new, report.conflicts_resolved = self.state.conflict_changes(
                self.run_id, group, report.covered)
            self.state.finish_run(self.run_id, group, report.succeeded, {
                "models": [model.as_dict() for model in report.models], "seconds": report.seconds,
                "covered": report.covered})
        return report

    def _sync_model(self, spec: ModelSpec, planner: Planner, report: GroupReport, dry_run: bool,
                    production_ids: set[str] | None) -> tuple[ModelReport, ModelPlan]:
        started = time.monotonic()
        loaded_before = self.catalog.load_seconds
        self.catalog.load_model(spec.label, production_ids)
        stale = self.catalog.stale_adoptions(spec.label, production_ids)
        if stale:  # their VeritasBot objects are gone: match those production objects afresh
            log.info("%s: forgetting %d adoptions whose VeritasBot object is gone", spec.label, len(stale))
            self.catalog.forget_adoptions(spec.label, stale)
            if self.state and not dry_run:
                self.state.forget_adoptions(spec.label, stale)
        self._join(report, planner, lambda label: _waits_for(spec, label))
        plan = planner.plan(spec, production_ids)
        loaded = self.catalog.load_seconds - loaded_before
        report.seconds["load"] += loaded
        report.seconds["plan"] += time.monotonic() - started - loaded
        log.info("%s: %d in production, %d in VeritasBot; %d to create, %d to update, %d unchanged, %d pending "
                 "(read %.1f s, planned %.1f s)", spec.label, plan.production_count, plan.veritas_count,
                 len(plan.creates), len(plan.updates), plan.unchanged, len({p.production_id for p in plan.pending}),
                 loaded, time.monotonic() - started - loaded)

        model = ModelReport(spec.label, plan.production_count, plan.veritas_count, unchanged=plan.unchanged,
                            adopted=len(plan.adopted), pending=len({p.production_id for p in plan.pending}),
                            conflicts=len(plan.conflicts), orphans=len(plan.orphans),
                            planned_creates=len(plan.creates), planned_updates=len(plan.updates),
                            failed=len(plan.failures))
        report.models.append(model)
        report.conflicts.extend(plan.conflicts)
        report.pending.extend(plan.pending)
        report.orphans.extend((spec.label, veritas_id, name) for veritas_id, name in plan.orphans)
        report.writes.extend(plan.writes)
        report.failures.extend(plan.failures)
        report.adoptions.extend((spec.label, production_id, veritas_id,
                                 self.catalog.display(Side.VERITAS, spec.label, veritas_id),
                                 plan.adoption_rules[production_id])
                                for production_id, veritas_id in plan.adopted.items())
        report.covered[spec.label] = None if production_ids is None else sorted(plan.covered)
        if self.state and not dry_run:
            self.state.remember_adoptions(spec.label, plan.adopted, plan.adoption_rules)
        if not dry_run:
            self._apply(spec, plan.writes, plan, model, report, planner)
        return model, plan

    @contextlib.contextmanager
    def _writers_of_group(self, report: GroupReport, planner: Planner) -> Iterator[None]:
        """The group's writer pool, which applies models side by side while the main thread plans (with one
        writer there is none: each model is applied as soon as it is planned). The group ends once every
        write has been joined; when it stops on an error, the writes in flight end and are counted first."""
        if self.write_concurrency == 1:
            yield
            return
        with ThreadPoolExecutor(self.write_concurrency, thread_name_prefix="apply") as self._writers:
            try:
                yield
            except BaseException:
                for applying in self._applying:  # models not yet being written stay unwritten
                    applying.future.cancel()
                with contextlib.suppress(Exception):  # the error that stopped the group is the one raised
                    self._join(report, planner)
                raise
            else:
                self._join(report, planner)
            finally:
                self._writers = None

    def _apply(self, spec: ModelSpec, writes: list[Write], plan: ModelPlan, model: ModelReport,
               report: GroupReport, planner: Planner) -> None:
        if not writes:
            return
        applying = _Applying(spec, plan, model)
        if self._writers is None:
            try:
                self._send(applying, writes)
            finally:
                self._record(applying, report, planner)
            return
        if any(earlier.future.done() and earlier.future.exception() for earlier in self._applying):
            self._join(report, planner)  # an earlier model's writes stopped the group: send nothing more
        applying.future = self._writers.submit(self._send, applying, writes)
        self._applying.append(applying)

    def _send(self, applying: _Applying, writes: list[Write]) -> None:
        started = time.monotonic()
        try:
            self.applier.apply(applying.spec, writes, applying.result)
        finally:
            applying.span = (started, time.monotonic())

    def _join(self, report: GroupReport, planner: Planner,
              waited_for: Callable[[str], bool] = lambda _label: True) -> None:
        """Wait for the writes in flight of the models `waited_for` names (default all), record what they
        did in registry order, then raise the first error among them (NautobotUnavailable stops the group)."""
        joining = [applying for applying in self._applying if waited_for(applying.spec.label)]
        self._applying = [applying for applying in self._applying if applying not in joining]
        errors = []
        for applying in joining:
            error = None if applying.future.cancelled() else applying.future.exception()
            self._record(applying, report, planner)
            if error is not None:
                errors.append(error)
        if errors:
            raise errors[0]

    def _record(self, applying: _Applying, report: GroupReport, planner: Planner) -> None:
        """What a model's writes did, also when they stopped the group (the journal audited it)."""
        spec, result, model = applying.spec, applying.result, applying.model
        if applying.span is not None:
            report.apply_spans.append(applying.span)
            report.seconds["apply"] = covered_seconds(report.apply_spans)
        self.catalog.record_written(spec.label, [row for _write, row in result.done])
        for failure in result.failed:
            planner.mark_unavailable(spec.label, self._production_id(applying.plan, failure.object_id), "failed")
        created = [write.veritas_id for write, _row in result.done if write.action == "create"]
        self._created = self._created or (created[0] if created else None)
        model.created += len(created)
        model.updated += sum(1 for write, _row in result.done if write.action == "update")
        model.failed += len(result.failed)
        report.failures.extend(result.failed)
        report.settled += result.settled

    @staticmethod
    def _production_id(plan: ModelPlan, veritas_id: str) -> str:
        for write in plan.writes:
            if write.veritas_id == veritas_id:
                return write.production_id
        return veritas_id
