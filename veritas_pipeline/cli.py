"""`veritas-sync`: run the sync job on the configured instances and print a per-group summary.

The run is recorded in the Dagster instance (DAGSTER_HOME), so it shows in the UI like any other.
Progress goes to stderr while it runs (a line per model and per group, and a line at least every 10 s);
the summary to stdout. A configuration or connection problem (DAGSTER_HOME, the policy file, the state
database, either Nautobot) is one line naming the variable, the instance or URL and the status, with exit
status 2; --debug adds tracebacks and Dagster's event log.
Like every writing run, it waits for the VeritasBot's writer slot while another run writes, and says so.
Interrupted (SIGINT, SIGTERM), it marks its run FAILURE, releases the writer slot and exits with 128 + the
signal's number. Before it starts, it marks failed any run of an earlier veritas-sync left STARTED by a
process that died (kill -9, a reboot).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import sys
import threading
import time
import traceback
import uuid

import requests
from dagster import AssetCheckKey, AssetCheckSeverity, AssetKey, DagsterInstance
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .assets import ORPHANS_ASSET, SYNC_CHECKS, WRITE_FAILURES_CHECK
from .crashed_runs import fail_runs_of_dead_processes
from .engine.policy import PolicyError, load_policy_file
from .engine.run_process import this_process
from .engine.registry import GROUPS, group_dependencies
from .engine.state import StateStore
from .jobs import dry_run_config
from .metadata import COUNTERS, Key

SUMMARY_COUNTERS = COUNTERS[2:]  # in_production is shown on its own; in_veritas is not shown
SECONDS_COLUMN = "seconds"  # the summary's own column (the phases' seconds added up), not a metadata key
EXIT_FAILED, EXIT_CONFIGURATION = 1, 2
HEARTBEAT_SECONDS = 10.0
# Engine errors whose message already says, in one line, which instance, endpoint or model failed and why.
SELF_EXPLAINING_ERRORS = frozenset({"NautobotUnavailable", "ReadFailed"})
CLI_TAGS = {"veritas/trigger": "cli"}
INTERRUPTS = (signal.SIGINT, signal.SIGTERM)

log = logging.getLogger("veritas_pipeline.cli")


class ConfigurationError(Exception):
    """A setting or a connection that stops the run before it starts: one line for the operator."""


class Interrupted(Exception):
    """SIGINT or SIGTERM ended the run; it is marked FAILURE."""

    def __init__(self, run_id: str, signum: int):
        super().__init__(f"interrupted by {signal.Signals(signum).name}: run {run_id} marked FAILURE, "
                         "the writer slot released")
        self.signum = signum


# ---------------------------------------------------------------------------------------- preflight

def _connection_problem(error: Exception) -> str:
    text = str(error)
    for needle, meaning in (("Connection refused", "connection refused"),
                            ("Name or service not known", "unknown host name"),
                            ("Temporary failure in name resolution", "host name not resolved"),
                            ("timed out", "timed out"), ("No route to host", "no route to host")):
        if needle in text:
            return meaning
    return "cannot connect"


def preflight(prefixes: dict[str, str], verify_tls: bool) -> None:
    """What a run needs, checked before it starts: the local settings first, then both instances."""
    check_settings()
    check_instances(prefixes, verify_tls)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())  # a YAML error spans lines


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def check_settings() -> None:
    """DAGSTER_HOME, the policy file and the state database can be used; else one ConfigurationError line
    naming the variable (without it, each would fail every group with a message naming none)."""
    if not os.environ.get("DAGSTER_HOME"):
        raise ConfigurationError("environment variable DAGSTER_HOME not set (the Dagster instance's folder, "
                                 "holding dagster.yaml)")
    policy_file = os.environ.get("VERITAS_POLICY_FILE")
    if policy_file:
        try:
            load_policy_file(policy_file)
        except PolicyError as error:
            raise ConfigurationError(f"VERITAS_POLICY_FILE: {_one_line(error)}") from error
    state_url = os.environ.get("VERITAS_STATE_DB_URL")
    if state_url:
        try:
            shown = make_url(state_url).render_as_string(hide_password=True)
        except ArgumentError as error:
            raise ConfigurationError("VERITAS_STATE_DB_URL is not a database URL "
                                     "(e.g. postgresql://user:password@host/veritas_state)") from error
        try:
            StateStore(state_url)  # connects, and upgrades the schema as the run would
        except Exception as error:  # noqa: BLE001 - any driver's error: the operator gets its first line
            raise ConfigurationError(f"state database {shown} (VERITAS_STATE_DB_URL): cannot use it: "
                                     f"{_first_line(getattr(error, 'orig', None) or error)}") from error


def check_instances(prefixes: dict[str, str], verify_tls: bool) -> None:
    """Each instance is configured, answers, and accepts its token; else one ConfigurationError line."""
    for name, prefix in prefixes.items():
        url_var, token_var = f"{prefix}_URL", f"{prefix}_TOKEN"
        missing = [var for var in (url_var, token_var) if not os.environ.get(var)]
        if missing:
            raise ConfigurationError(f"{name} Nautobot: environment variable {' and '.join(missing)} not set")
        url = os.environ[url_var].rstrip("/")
        try:
            response = requests.get(f"{url}/api/status/", timeout=15, verify=verify_tls,
                                    headers={"Authorization": f"Token {os.environ[token_var]}",
                                             "Accept": "application/json"})
        except (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
                requests.exceptions.InvalidURL) as error:
            raise ConfigurationError(f"{name} Nautobot: {url_var}={url!r} is not an http(s) URL") from error
        except requests.exceptions.SSLError as error:
            raise ConfigurationError(f"{name} Nautobot at {url} ({url_var}): TLS certificate not accepted "
                                     "(VERITAS_VERIFY_TLS=false skips the check)") from error
        except requests.RequestException as error:
            raise ConfigurationError(f"{name} Nautobot at {url} ({url_var}): {_connection_problem(error)}") from error
        if response.status_code in (401, 403):
            raise ConfigurationError(f"{name} Nautobot at {url}: HTTP {response.status_code}, the token in "
                                     f"{token_var} was refused")
        if not response.ok:
            raise ConfigurationError(f"{name} Nautobot at {url} ({url_var}): HTTP {response.status_code} "
                                     "on /api/status/")


# ---------------------------------------------------------------------------------------- progress

class Progress(logging.Handler):
    """Prints log records as they come, and says it is still running after HEARTBEAT_SECONDS of silence."""

    def __init__(self, stream, level: int):
        super().__init__(level)
        self.stream = stream
        self.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        self.started = self.last = time.monotonic()
        self.last_message = "starting"
        self.stopped = threading.Event()
        self.heartbeat = threading.Thread(target=self._beat, name="veritas-sync-heartbeat", daemon=True)

    def emit(self, record: logging.LogRecord) -> None:
        self.last_message = record.getMessage()
        self._write(self.format(record))

    def _write(self, line: str) -> None:
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()
            self.last = time.monotonic()

    def _beat(self) -> None:
        # Printed, not logged: a run's event log should not fill with the console's heartbeat.
        while not self.stopped.wait(1.0):
            if time.monotonic() - self.last >= HEARTBEAT_SECONDS:
                self._write(f"{time.strftime('%H:%M:%S')} still running ({time.monotonic() - self.started:.0f} s "
                            f"so far); last: {self.last_message}")

    def __enter__(self) -> Progress:
        logger = logging.getLogger("veritas_pipeline")
        self.saved = (logger.level, logger.propagate)
        logger.setLevel(self.level)
        logger.addHandler(self)
        logger.propagate = False  # printed here once, not again by a root handler
        self.heartbeat.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopped.set()
        self.heartbeat.join()
        logger = logging.getLogger("veritas_pipeline")
        logger.removeHandler(self)
        logger.setLevel(self.saved[0])
        logger.propagate = self.saved[1]


def run_instance(log_level: str) -> DagsterInstance:
    """DAGSTER_HOME's instance, its runs' Python loggers at `log_level`: when a run starts, Dagster sets each
    logger dagster.yaml's python_logs manages to its python_log_level, which would undo --log-level."""
    home = DagsterInstance.get()
    python_logs = {**(home.get_settings("python_logs") or {}), "python_log_level": log_level}
    # local_temp with a folder loads that folder's dagster.yaml, as get() does, with the overrides on top.
    return DagsterInstance.local_temp(home.root_directory, overrides={"python_logs": python_logs})


# ---------------------------------------------------------------------------------------- outcome

def one_line(error) -> str:
    """The root cause of a Dagster step failure, in one line."""
    while error.cause is not None:
        error = error.cause
    message = re.sub(rf"^([\w.]+\.)?{re.escape(error.cls_name)}: ", "", (error.message or "").strip())
    first = message.splitlines()[0][:300] if message else ""
    if error.cls_name in SELF_EXPLAINING_ERRORS:
        return first
    refused = re.search(r"host='([^']+)', port=(\d+)\).*?url: (\S+)", message)
    if refused:
        return (f"{_connection_problem(Exception(message))} by {refused.group(1)}:{refused.group(2)} "
                f"(on {refused.group(3)})")
    return f"{error.cls_name}: {first}"


def group_outcomes(result, groups: list[str]) -> dict[str, tuple[str, str]]:
    """group -> (status, detail); status is one of ok, failed writes, FAILED, check failed, skipped."""
    failed_steps = {event.step_key: event.step_failure_data.error for event in result.get_step_failure_events()}
    failed_checks: dict[str, list[str]] = {}
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR:
            failed_checks.setdefault(evaluation.asset_key.path[0], []).append(evaluation.check_name)
    outcomes: dict[str, tuple[str, str]] = {}
    for group in GROUPS:
        if group not in groups:
            continue
        if group in failed_steps:
            outcomes[group] = ("FAILED", one_line(failed_steps[group]))
        elif result.asset_materializations_for_node(group):
            checks = failed_checks.get(group, [])
            if checks and set(checks) <= set(SYNC_CHECKS):
                outcomes[group] = ("failed writes" if WRITE_FAILURES_CHECK in checks else "failed identity",
                                   "see the failures table of this materialization")
            elif checks:
                outcomes[group] = ("check failed", "blocking check " + ", ".join(sorted(checks)))
            else:
                outcomes[group] = ("ok", "")
        else:
            blockers = [dep for dep in group_dependencies(group) if outcomes.get(dep, ("ok",))[0] != "ok"]
            outcomes[group] = ("skipped", "upstream " + ", ".join(
                f"{dep} {'skipped' if outcomes[dep][0] == 'skipped' else 'failed'}" for dep in blockers)
                if blockers else "not run")
    return outcomes


def print_summary(result, groups: list[str], dry_run: bool, with_orphans: bool) -> None:
    counters = (Key.PLANNED_CREATES, Key.PLANNED_UPDATES, *SUMMARY_COUNTERS[2:]) if dry_run else SUMMARY_COUNTERS
    columns = (Key.IN_PRODUCTION, *counters, SECONDS_COLUMN)
    print(f"\nveritas-sync {'dry run' if dry_run else 'run'} {result.run_id}")
    print(f"{'group':<24}" + "".join(f"{name.replace('planned_', 'would '):>14}" for name in columns))
    totals = dict.fromkeys(columns, 0.0)
    for group, (status, detail) in group_outcomes(result, groups).items():
        materializations = result.asset_materializations_for_node(group)
        if not materializations:
            print(f"{group:<24}  {status}: {detail}")
            continue
        metadata = {key: value.value for key, value in materializations[-1].metadata.items()}
        metadata[SECONDS_COLUMN] = sum(metadata.get(key, 0) for key in Key.SECONDS.values())
        for name in columns:
            totals[name] += metadata.get(name, 0)
        print(f"{group:<24}" + "".join(f"{metadata.get(name, 0):>14.4g}" for name in columns))
        if status != "ok":
            print(f"{'':<24}  {status}: {detail}")
    print(f"{'total':<24}" + "".join(f"{totals[name]:>14.4g}" for name in columns))
    read = {value.value for group in groups for materialization in result.asset_materializations_for_node(group)[-1:]
            for key, value in materialization.metadata.items() if key == Key.DATA_SOURCE}
    if read:
        print(f"synced models {read.pop()}")
    orphan_runs = result.asset_materializations_for_node(ORPHANS_ASSET) if with_orphans else []
    if orphan_runs:
        found = {key: value.value for key, value in orphan_runs[-1].metadata.items()}
        print(f"orphans: {found[Key.ORPHANS]} found, {found[Key.DELETED]} deleted"
              + (f" ({found[Key.SKIPPED]})" if found.get(Key.SKIPPED) else ""))
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.check_name not in SYNC_CHECKS:
            print(f"check {evaluation.asset_key.to_user_string()}/{evaluation.check_name} failed "
                  f"({evaluation.severity.value}): {evaluation.description or 'see the Dagster UI'}")
    print("run succeeded" if result.success else "run FAILED: see the Dagster UI (scripts/ui) for details")


# ---------------------------------------------------------------------------------------- interrupts

@contextlib.contextmanager
def interrupts_received():
    """Yields a list that holds, after the block, the SIGINT and SIGTERM numbers received in it. While a run
    executes, Dagster handles both itself (the run ends FAILURE and its resources are torn down, which
    releases the writer slot), without saying which came; the interpreter writes the number of each signal
    it handles to the wakeup fd, whatever the handler, so they are read from there."""
    read_end, write_end = os.pipe()
    for end in (read_end, write_end):
        os.set_blocking(end, False)
    previous = signal.set_wakeup_fd(write_end)
    received: list[int] = []
    try:
        yield received
    finally:
        signal.set_wakeup_fd(previous)
        with contextlib.suppress(BlockingIOError):
            received.extend(number for number in os.read(read_end, 64) if number in INTERRUPTS)
        os.close(read_end)
        os.close(write_end)


def fail_interrupted_run(instance: DagsterInstance, run_id: str, signum: int) -> Interrupted:
    run = instance.get_run_by_id(run_id)
    message = f"veritas-sync was interrupted by {signal.Signals(signum).name}"
    if run is not None and not run.is_finished:  # the signal came before or after Dagster's handlers
        instance.report_run_failed(run, message)
    elif run is not None:  # Dagster ended it FAILURE, without knowing which signal: say it in the run's log
        instance.report_engine_event(message, run)
    return Interrupted(run_id, signum)


def close_runs_of_dead_processes(instance: DagsterInstance) -> None:
    """An earlier veritas-sync killed outright left its run STARTED: nothing else would ever end it."""
    for run_id, reason in fail_runs_of_dead_processes(instance, tags=CLI_TAGS, closed_by="veritas-sync"):
        log.warning("veritas-sync: run %s of an earlier veritas-sync was left STARTED (%s): marked it failed",
                    run_id, reason)


# ---------------------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="veritas-sync", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="report the plan, write nothing")
    parser.add_argument("--groups", nargs="+", choices=GROUPS, metavar="GROUP",
                        help=f"only these groups (default: all): {', '.join(GROUPS)}")
    parser.add_argument("--log-level", default="INFO", type=str.upper,
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="progress detail (default INFO)")
    parser.add_argument("--debug", action="store_true",
                        help="tracebacks, and Dagster's own event log on the console")
    args = parser.parse_args(argv)
    # SIGTERM (a service manager's stop, `kill`) ends the run as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with Progress(sys.stderr, getattr(logging, args.log_level)):
            return run(args)
    except Interrupted as interrupted:
        print(f"veritas-sync: {interrupted}", file=sys.stderr)
        return 128 + interrupted.signum
    except KeyboardInterrupt:
        print("veritas-sync: interrupted before its run started", file=sys.stderr)
        return 128 + signal.SIGINT
    except ConfigurationError as error:
        if args.debug:
            traceback.print_exc()
        print(f"veritas-sync: {error}", file=sys.stderr)
        return EXIT_CONFIGURATION
    except Exception as error:  # noqa: BLE001 - the operator gets one line; --debug the whole story
        if args.debug:
            traceback.print_exc()
        print(f"veritas-sync: {type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
              + ("" if args.debug else " (--debug shows the traceback)"), file=sys.stderr)
        return EXIT_FAILED


def run(args) -> int:
    from .definitions import INSTANCE_ENV_PREFIXES, defs, sync_resource

    preflight(INSTANCE_ENV_PREFIXES, sync_resource.production.verify_tls)
    groups = args.groups or list(GROUPS)
    # A whole run ends with the orphans report (and the opt-in prune); a selection of groups does not.
    selected = groups if args.groups else [*groups, ORPHANS_ASSET]
    assets = {AssetKey(name) for name in selected}
    # A dry run changes nothing in VeritasBot, so only the sync's own check runs; a real run adds the
    # groups' data-quality checks.
    checks = {AssetCheckKey(AssetKey(group), check) for group in groups for check in SYNC_CHECKS} \
        if args.dry_run else None
    job = defs.resolve_job_def("full_sync")
    run_config = dry_run_config(selected) if args.dry_run else {}
    # Dagster's console event log only with --debug: progress and failures are printed here, in brief.
    run_config["loggers"] = {"console": {"config": {"log_level": "DEBUG" if args.debug else "CRITICAL"}}}
    instance = run_instance(args.log_level)
    close_runs_of_dead_processes(instance)
    run_id = str(uuid.uuid4())
    log.info("veritas-sync %s %s: %s", "dry run" if args.dry_run else "run", run_id, ", ".join(groups))
    escaped_interrupt = False
    with interrupts_received() as interrupts:
        try:
            result = job.get_subset(asset_selection=assets, asset_check_selection=checks).execute_in_process(
                instance=instance,
                run_config=run_config,
                raise_on_error=False,
                run_id=run_id,
                # This process runs the run: recorded, so that a later veritas-sync can tell if it died.
                tags={**CLI_TAGS, **this_process(run_id)},
            )
        except KeyboardInterrupt:  # one that came while Dagster's own handlers were not installed
            escaped_interrupt = True
    if interrupts or escaped_interrupt:
        raise fail_interrupted_run(instance, run_id, interrupts[0] if interrupts else signal.SIGINT)
    print_summary(result, groups, args.dry_run, ORPHANS_ASSET in selected)
    return 0 if result.success else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
