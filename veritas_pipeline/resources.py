"""Dagster resources: the two Nautobot instances and the sync engine built on them."""

import os
from pathlib import Path
from typing import Any, Optional

from dagster import ConfigurableResource, InitResourceContext, ResourceDependency
from pydantic import Field, PrivateAttr, model_validator

from .crashed_runs import record_run_process
from .engine.client import ClientSettings, NautobotClient
from .engine.policy import (
    DEFAULT_DISCOVERY_OWNED_MODELS,
    DEFAULT_DISCOVERY_TAGS,
    DEFAULT_PRUNE_MAX_FRACTION,
    DEFAULT_SYNC_TAG,
    SETTINGS,
    PrecedencePolicy,
    load_policy_file,
)
from .engine.state import StateStore
from .engine.sync import SyncEngine
from .engine.writer_slot import WriterSlot
from .metadata import ObjectLinks
from .metrics import Pusher, RunMetrics


class NautobotResource(ConfigurableResource):
    """One Nautobot instance. URL and token come from the environment (EnvVar); the token never appears
    in logs or metadata."""

    url: str = Field(description="Base URL, for example https://nautobot.example.com")
    token: str = Field(description="API token", repr=False)
    verify_tls: bool = Field(default=True, description="Verify the server's TLS certificate")
    page_size: int = Field(default=1000, description="Rows per page on reads (the server caps it at MAX_PAGE_SIZE)")
    timeout_seconds: float = Field(default=120.0, description="Timeout of one HTTP request")
    retries: int = Field(default=5, ge=0, description="Retries of a request that was not answered (refused "
                                                       "connection, 429, 5xx on reads), with exponential backoff")
    retry_budget_seconds: float = Field(default=300.0, gt=0, description="Seconds one sync group may spend "
                                        "failing on this instance (failed attempts and the pauses after them, "
                                        "not time since it began) before it stops")
    rate_limit_per_second: float = Field(default=0.0, description="Most requests per second; 0 is unlimited")
    read_concurrency: int = Field(default=4, ge=1, description="Most GET requests in flight at once: the pages of "
                                  "a listing after its first, and reads by id, are fetched side by side")

    def client(self, *, read_only: bool, name: str, writers: int = 1) -> NautobotClient:
        settings = ClientSettings(url=self.url, token=self.token, verify_tls=self.verify_tls,
                                  page_size=self.page_size, timeout=self.timeout_seconds, retries=self.retries,
                                  rate_limit=self.rate_limit_per_second, retry_budget=self.retry_budget_seconds,
                                  read_concurrency=self.read_concurrency)
        return NautobotClient(settings, read_only=read_only, name=name, writers=writers)


class SyncResource(ConfigurableResource):
    """The sync engine of one run: production (read only), VeritasBot, the state database and the
    precedence policy. One engine serves every group of a run that executes in one process, so each
    model is read once per run."""

    production: ResourceDependency[NautobotResource]
    veritas: ResourceDependency[NautobotResource]
    state_db_url: Optional[str] = Field(
        default=None, repr=False,
        description="SQLAlchemy URL of the pipeline's state database (audit trail, conflicts, adoptions, the writer "
                    "slot), e.g. postgresql://user:password@host/veritas_state; upgraded to the newest schema when "
                    "opened. Unset: the SQLite file veritas_state.db in DAGSTER_HOME")
    batch_size: int = Field(default=250, description="Objects per bulk write request")
    write_concurrency: int = Field(default=4, ge=1, description="Most write requests to VeritasBot in flight at "
                                   "once: a model's batches, and models that do not reference each other, are "
                                   "sent side by side; 1 writes one batch after the other")
    whole_read_interval_hours: float = Field(
        default=12.0, ge=0,
        description="A full sync reads both instances' synced models whole when their last whole read is older "
                    "than this; within it, it plans from the row snapshot brought up to date through both change "
                    "feeds (a few requests when little changed). Only a whole read sees changes that bypass the "
                    "change log (direct SQL). 0: every full sync reads whole")
    discovery_tags: list[str] = Field(default=list(DEFAULT_DISCOVERY_TAGS),
                                      description="Tags that mark objects discovery owns")
    sync_tag: str = Field(default=DEFAULT_SYNC_TAG, description="Tag carried by every object the sync writes")
    safe_fields: Optional[dict[str, list[str]]] = Field(
        default=None, description="Per model label (e.g. dcim.location): the fields the sync may write on a "
                                  "discovery-touched object, replacing the defaults")
    prune_orphans: bool = Field(default=False, description="Delete sync-tagged objects gone from production")
    prune_limit: int = Field(default=50, description="Most orphans deleted in one run")
    prune_max_fraction: float = Field(
        default=DEFAULT_PRUNE_MAX_FRACTION, description="Largest share (0 to 1) of a model's synced objects deleted "
                                                        "in one run; above it none of that model is deleted")
    discovery_owned_models: list[str] = Field(
        default=list(DEFAULT_DISCOVERY_OWNED_MODELS),
        description="Model labels whose adopted objects (VeritasBot had them before the sync) discovery owns; "
                    "adopted rows of other models (built-in statuses, roles, ...) follow production")
    policy_file: Optional[str] = Field(
        default=None, description="A YAML or JSON file whose keys (discovery_tags, sync_tag, safe_fields, "
                                  "prune_orphans, prune_limit, prune_max_fraction, discovery_owned_models) "
                                  "override the fields above; read at each run")
    coverage_threshold: float = Field(
        default=0.95, ge=0, le=1, description="Data-quality check `coverage` warns when a model has a smaller "
                                              "share of its in-scope production objects in VeritasBot")
    freshness_max_age_hours: float = Field(
        default=24.0, gt=0, description="Data-quality check `freshness` warns when a group's last successful "
                                        "sync is older than this")

    pushgateway_url: Optional[str] = Field(
        default=None, description="Prometheus Pushgateway (http://host:port) that each run pushes its metrics "
                                  "to; unset: no metrics are pushed")

    # A settings error must not echo the settings: they hold the instances, whose tokens stay out of messages.
    model_config = {**ConfigurableResource.model_config, "hide_input_in_errors": True}

    @model_validator(mode="before")
    @classmethod
    def _policy_settings_are_strict(cls, settings: Any) -> Any:
        """The policy settings as given, through the policy's strict model: a field's own type would turn
        `prune_limit=True` into 1 before the policy sees it."""
        if isinstance(settings, dict):
            given = {name: value for name, value in settings.items() if name in SETTINGS and value is not None}
            PrecedencePolicy.from_settings(given, "sync resource settings")
        return settings

    _engines: dict = PrivateAttr(default_factory=dict)
    _metrics: dict = PrivateAttr(default_factory=dict)
    _writer_slot: Optional[WriterSlot] = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._engines = {}
        self._metrics = {}
        self._writer_slot = None
        # Every run of the code location uses this resource: the earliest place its own process runs.
        if context.run is not None and context.instance is not None:
            record_run_process(context.instance, context.run)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._writer_slot is not None:
            self._writer_slot.release()

    def hold_writer_slot(self, run_id: str) -> None:
        """Wait until no other run writes to this VeritasBot, then keep the slot until this run ends. Every
        writing asset calls it before its first read, whichever way its run was started."""
        if self._writer_slot is None:
            self._writer_slot = WriterSlot(self.state(), self.veritas.url)
        self._writer_slot.acquire(run_id)

    def metrics(self, run_id: str, mode: str | None, whole_run: bool) -> RunMetrics:
        """The run's metrics; `mode` None (a dry run) pushes nothing. Every client of the run reports to it."""
        if run_id not in self._metrics:
            self._metrics = {run_id: RunMetrics(Pusher(self.pushgateway_url if mode else None), mode or "dry_run",
                                                whole_run)}
        metrics = self._metrics[run_id]
        for (held_run, _incremental), engine in self._engines.items():
            if held_run == run_id:
                metrics.observe(engine.production, engine.veritas)
        return metrics

    def running_metrics(self, run_id: str) -> RunMetrics | None:
        """The metrics of a run that syncs (a group asset made them), else None (checks on their own)."""
        return self._metrics.get(run_id)

    def policy(self) -> PrecedencePolicy:
        """The resource's policy settings, overridden by the policy file's, checked as one strict model."""
        settings = {"discovery_tags": self.discovery_tags, "sync_tag": self.sync_tag,
                    "safe_fields": self.safe_fields or {}, "prune_orphans": self.prune_orphans,
                    "prune_limit": self.prune_limit, "prune_max_fraction": self.prune_max_fraction,
                    "discovery_owned_models": self.discovery_owned_models}
        source = "sync resource settings"
        if self.policy_file:
            settings.update(load_policy_file(self.policy_file))
            source += f" with policy file {self.policy_file}"
        return PrecedencePolicy.from_settings(settings, source)

    def links(self) -> ObjectLinks:
        return ObjectLinks(self.production.url, self.veritas.url)

    def state(self) -> StateStore:
        home = Path(os.environ.get("DAGSTER_HOME", ".")).resolve()
        return StateStore(self.state_db_url or f"sqlite:///{home / 'veritas_state.db'}")

    def engine(self, run_id: str, incremental: bool = False, whole_run: bool = True) -> SyncEngine:
        """The run's engine; an incremental one reads production objects by id (the change sensor's runs).
        A run may hold both: its incremental groups, and the checks and orphans that need whole reads.
        `whole_run` False (some groups only): its reads are never saved as the row snapshot."""
        key = (run_id, incremental)
        if key not in self._engines:
            # One run at a time per process: never serve another run's cache.
            self._engines = {held: engine for held, engine in self._engines.items() if held[0] == run_id}
            self._engines[key] = SyncEngine(
                self.production.client(read_only=True, name="production"),
                self.veritas.client(read_only=False, name="VeritasBot", writers=self.write_concurrency),
                policy=self.policy(), state=self.state(), batch_size=self.batch_size,
                write_concurrency=self.write_concurrency, run_id=run_id, incremental=incremental,
                whole_run=whole_run, whole_read_interval=self.whole_read_interval_hours * 3600)
            if run_id in self._metrics:
                self._metrics[run_id].observe(self._engines[key].production, self._engines[key].veritas)
        return self._engines[key]
