"""The Dagster instance settings: one machine's dagster.yaml, the production deployment's deploy/dagster.yaml
and the Kubernetes Helm values agree on the run queue, run retries, tick retention and captured Python logs;
the Helm values' K8sRunLauncher settings are valid for dagster-k8s; deploy/dagster.yaml loads as an instance
on PostgreSQL. No Nautobot involved (the syncs through that instance are in test_sync_live.py, its daemon
and every entry point's writers in test_writers_live.py)."""

from __future__ import annotations

import yaml
from dagster import DagsterInstance
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from veritas_pipeline.definitions import defs
from veritas_pipeline.jobs import SENSOR_RUN_RETRIES, WRITER_TAG

from .conftest import StackInfo, drop_postgres_database, postgres_dagster_home
from .stack_helpers import REPO

SHARED_SECTIONS = ("run_queue", "run_monitoring", "run_retries", "retention", "python_logs", "telemetry")


def load(path: str) -> dict:
    return yaml.safe_load((REPO / path).read_text())


def test_dagster_yaml_queues_one_writing_run_per_veritasbot_at_a_time():
    runs = load("dagster.yaml")["run_queue"]
    [limit] = [rule for rule in runs["tag_concurrency_limits"] if rule["key"] in WRITER_TAG]
    assert limit == {"key": "veritas/writer", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}


def test_only_the_change_sensors_runs_are_retried():
    retries = load("dagster.yaml")["run_retries"]
    assert retries == {"enabled": True, "max_retries": 0}, "runs without the retry tag must not be retried"
    for job in defs.resolve_all_job_defs():
        retried = SENSOR_RUN_RETRIES.items() <= job.tags.items()
        assert retried == (job.name == defs.resolve_sensor_def("production_changes").job_name), job.name
    assert int(SENSOR_RUN_RETRIES["dagster/max_retries"]) > 0


def test_run_monitoring_fails_dead_runs_and_never_resumes_them():
    monitoring = load("dagster.yaml")["run_monitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["max_resume_run_attempts"] == 0, "a crashed sync is failed, and the next writing run starts"
    assert monitoring["start_timeout_seconds"] + monitoring["poll_interval_seconds"] <= 300, "within a few minutes"
    assert "max_runtime_seconds" not in monitoring, "a long full sync is not a crashed one"


def test_the_change_sensors_skipped_ticks_are_purged_soonest():
    kept = load("dagster.yaml")["retention"]["sensor"]["purge_after_days"]
    assert 0 < kept["skipped"] <= min(kept["success"], kept["failure"])


def test_the_production_deployment_keeps_the_settings_of_dagster_yaml():
    local, deployed = load("dagster.yaml"), load("deploy/dagster.yaml")
    assert {name: deployed[name] for name in SHARED_SECTIONS} == {name: local[name] for name in SHARED_SECTIONS}
    assert set(deployed) == {*SHARED_SECTIONS, "storage", "run_launcher"}
    assert deployed["run_launcher"]["class"] == "DefaultRunLauncher", "each run in a process of its own"


def test_the_kubernetes_values_carry_the_settings_of_dagster_yaml():
    local, values = load("dagster.yaml"), load("deploy/kubernetes/values.yaml")
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    [code_location] = values["dagster-user-deployments"]["deployments"]
    assert code_location["dagsterApiGrpcArgs"] == ["--module-name", "veritas_pipeline.definitions"]
    queue = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert (queue["maxConcurrentRuns"], queue["tagConcurrencyLimits"], queue["dequeueIntervalSeconds"]) == \
        (local["run_queue"]["max_concurrent_runs"], local["run_queue"]["tag_concurrency_limits"],
         local["run_queue"]["dequeue_interval_seconds"])
    retries = values["dagsterDaemon"]["runRetries"]
    assert (retries["enabled"], retries["maxRetries"]) == (local["run_retries"]["enabled"],
                                                           local["run_retries"]["max_retries"])
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    assert {"enabled": monitoring["enabled"], "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "cancel_timeout_seconds": monitoring["cancelTimeoutSeconds"],
            "max_resume_run_attempts": monitoring["maxResumeRunAttempts"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"]} == local["run_monitoring"]
    assert values["retention"]["enabled"] is True
    assert values["retention"]["sensor"]["purgeAfterDays"] == local["retention"]["sensor"]["purge_after_days"]
    logs = values["pythonLogs"]
    assert (logs["managedPythonLoggers"], logs["pythonLogLevel"]) == \
        (local["python_logs"]["managed_python_loggers"], local["python_logs"]["python_log_level"])


def kubernetes_run_launcher_config() -> dict:
    """The run_launcher config the Dagster chart writes into the instance's dagster.yaml from values.yaml
    (its template helpers/instance/_run-launcher.tpl), for the keys values.yaml sets; the rest are the
    chart's own defaults."""
    k8s = load("deploy/kubernetes/values.yaml")["runLauncher"]["config"]["k8sRunLauncher"]
    return {
        "load_incluster_config": k8s.get("loadInclusterConfig", True),
        "job_namespace": k8s.get("jobNamespace", "dagster"),
        "image_pull_policy": k8s.get("imagePullPolicy", "Always"),
        "service_account_name": "dagster",
        "dagster_home": {"env": "DAGSTER_HOME"},
        "instance_config_map": {"env": "DAGSTER_K8S_INSTANCE_CONFIG_MAP"},
        "postgres_password_secret": {"env": "DAGSTER_K8S_PG_PASSWORD_SECRET"},
        "env_config_maps": [{"env": "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP"}],
        "env_secrets": [secret["name"] for secret in k8s.get("envSecrets", [])],
    }


def test_the_kubernetes_run_launcher_settings_are_valid_for_dagster_k8s(tmp_path, monkeypatch):
    """No cluster: the config is checked against K8sRunLauncher's schema, and the launcher is built from it
    with a kubeconfig of a cluster that is never called."""
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher

    config = kubernetes_run_launcher_config()
    for variable in ("DAGSTER_HOME", "DAGSTER_K8S_INSTANCE_CONFIG_MAP", "DAGSTER_K8S_PG_PASSWORD_SECRET",
                     "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP"):
        monkeypatch.setenv(variable, f"/{variable.lower()}" if variable == "DAGSTER_HOME" else variable.lower())
    processed = process_config(K8sRunLauncher.config_type(), config)
    assert processed.success, [error.message for error in processed.errors]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "none",
        "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:1"}}],
        "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
        "users": [{"name": "none", "user": {"token": "unused"}}]}))
    launcher = K8sRunLauncher(**{**processed.value, "load_incluster_config": False,
                                 "kubeconfig_file": str(kubeconfig)})
    # Each run's pod gets the Nautobot tokens and the state database URL from this secret.
    assert launcher.env_secrets == ["veritas-pipeline"]


def test_deploy_dagster_yaml_loads_as_an_instance_on_postgresql(stack: StackInfo, tmp_path, monkeypatch):
    database = "dagster_storage_load"
    for variable, value in postgres_dagster_home(tmp_path, database).items():
        monkeypatch.setenv(variable, value)
    try:
        with DagsterInstance.from_config(str(tmp_path)) as instance:
            assert isinstance(instance.run_storage, PostgresRunStorage)
            assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
            assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
            assert instance.run_retries_enabled
            assert instance.get_runs() == []
    finally:
        drop_postgres_database(database)
