"""`veritas-sync`: run the sync job on the configured instances and print a per-group summary.

The run is recorded in the Dagster instance (DAGSTER_HOME), so it shows in the UI like any other.
"""

from __future__ import annotations

import argparse
import sys

from dagster import AssetCheckKey, AssetKey, DagsterInstance

from .assets import ORPHANS_ASSET, WRITE_FAILURES_CHECK
from .engine.registry import GROUPS
from .jobs import dry_run_config

SUMMARY_COUNTERS = ("created", "updated", "unchanged", "adopted", "pending", "failed", "conflicts", "orphans")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="veritas-sync", description=__doc__)
    parser.add_argument("--dry-run", action="store_true", help="report the plan, write nothing")
    parser.add_argument("--groups", nargs="+", choices=GROUPS, metavar="GROUP",
                        help=f"only these groups (default: all): {', '.join(GROUPS)}")
    parser.add_argument("--log-level", default="WARNING", help="Dagster console log level (default WARNING)")
    args = parser.parse_args(argv)

    from .definitions import defs

    groups = args.groups or list(GROUPS)
    # A whole run ends with the orphans report (and the opt-in prune); a selection of groups does not.
    selected = groups if args.groups else [*groups, ORPHANS_ASSET]
    assets = {AssetKey(name) for name in selected}
    # A dry run changes nothing in VeritasBot, so only the sync's own check runs; a real run adds the
    # groups' data-quality checks.
    checks = {AssetCheckKey(AssetKey(group), WRITE_FAILURES_CHECK) for group in groups} if args.dry_run else None
    job = defs.resolve_job_def("full_sync")
    run_config = dry_run_config(selected) if args.dry_run else {}
    run_config["loggers"] = {"console": {"config": {"log_level": args.log_level}}}
    result = job.get_subset(asset_selection=assets, asset_check_selection=checks).execute_in_process(
        instance=DagsterInstance.get(),
        run_config=run_config,
        raise_on_error=False,
        tags={"veritas/trigger": "cli"},
    )
    print_summary(result, groups, args.dry_run, ORPHANS_ASSET in selected)
    return 0 if result.success else 1


def print_summary(result, groups: list[str], dry_run: bool, with_orphans: bool) -> None:
    counters = ("planned_creates", "planned_updates", *SUMMARY_COUNTERS[2:]) if dry_run else SUMMARY_COUNTERS
    columns = ("in_production", *counters, "seconds")
    print(f"\nveritas-sync {'dry run' if dry_run else 'run'} {result.run_id}")
    print(f"{'group':<24}" + "".join(f"{name.replace('planned_', 'would '):>14}" for name in columns))
    totals = dict.fromkeys(columns, 0.0)
    for group in groups:
        materializations = result.asset_materializations_for_node(group)
        if not materializations:
            print(f"{group:<24}  not run (an upstream group or a blocking check failed)")
            continue
        metadata = {key: value.value for key, value in materializations[-1].metadata.items()}
        metadata["seconds"] = sum(metadata.get(f"seconds_{phase}", 0) for phase in ("load", "plan", "apply"))
        for name in columns:
            totals[name] += metadata.get(name, 0)
        print(f"{group:<24}" + "".join(f"{metadata.get(name, 0):>14.4g}" for name in columns))
        if metadata.get("failed"):
            print(f"{'':<24}  {WRITE_FAILURES_CHECK}: see the failures table of this materialization")
    print(f"{'total':<24}" + "".join(f"{totals[name]:>14.4g}" for name in columns))
    orphan_runs = result.asset_materializations_for_node(ORPHANS_ASSET) if with_orphans else []
    if orphan_runs:
        found = {key: value.value for key, value in orphan_runs[-1].metadata.items()}
        print(f"orphans: {found['orphans']} found, {found['deleted']} deleted"
              + (f" ({found['skipped']})" if found.get("skipped") else ""))
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed:
            print(f"check {evaluation.asset_key.to_user_string()}/{evaluation.check_name} failed "
                  f"({evaluation.severity.value}): {evaluation.description or 'see the Dagster UI'}")
    print("run succeeded" if result.success else "run FAILED: see the Dagster UI (scripts/ui) for details")


if __name__ == "__main__":
    sys.exit(main())
