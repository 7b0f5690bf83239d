"""Local stack for veritas_pipeline: PostgreSQL, Redis, two Nautobot 3.2.7 servers, and the monitoring
(a Prometheus Pushgateway the pipeline pushes to, a Prometheus that scrapes it), all on loopback.

    stack up     [--seed S] [--scale N] [--discovery-scale D]   install what is missing, start, seed once
    stack down                                                  stop the servers, Redis, PostgreSQL, monitoring
    stack reset  [--seed S] [--scale N] [--discovery-scale D]   both databases back to their freshly seeded state
    stack backup  NAME [--only INSTANCE]                        copy each database to NAME_<instance>
    stack restore NAME [--only INSTANCE]                        put those copies back, as a restore from a
                                                                backup does (the copies are kept)
    stack status                                                what runs, where, with which seed and scales
    stack env                                                   print the environment the pipeline and tests use

--scale N adds about N production objects of the synced models (benchmarks), some of them cables and contact
associations on production devices that VeritasBot's discovery state mirrors. --discovery-scale D adds D
discovered devices with 50 interfaces each, D/2 virtual machines and their IP addresses to VeritasBot.

Everything lives under .stack/ (or $VERITAS_STACK_DIR). The migrated schema is kept as a template
database and every seeded state as another template, so `reset` is a database clone, not a migration
or a reseed. Without --seed (or VERITAS_STACK_SEED), `up` and `reset` keep the seed the databases hold,
and likewise for --scale (VERITAS_STACK_SCALE) and --discovery-scale (VERITAS_STACK_DISCOVERY_SCALE); switching
says so, since it replaces both databases. Standard library only: this runs before any
virtual environment exists.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

NAUTOBOT_VERSION = "3.2.7"
NAUTOBOT_REQUIREMENTS = [f"nautobot=={NAUTOBOT_VERSION}", "factory-boy~=3.3.3", "faker>=40,<41"]
DEFAULT_SEED = "veritas"
TEMPLATE_DB = "nautobot_template"
SEEDING_REDIS_DB = 4  # migrations, seeds and token scripts; the servers use 0-1 and 2-3
STACK_CODE = Path(__file__).resolve().parent
REPO = STACK_CODE.parent
ALERT_RULES = REPO / "monitoring" / "rules.yml"
# Short intervals: a local stack whose tests query right after a run.
SCRAPE_INTERVAL = "2s"


@dataclass(frozen=True)
class Instance:
    """One Nautobot server of the stack."""

    name: str  # also its database name
    port: int
    redis_db: int
    env_prefix: str  # PRODUCTION_NAUTOBOT or VERITASBOT

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Monitor:
    """A monitoring server of the stack, run as our own process (never the Debian package's service)."""

    name: str
    port: int
    package: str  # Debian package and binary name
    env_var: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Stack:
    def __init__(self) -> None:
        self.home = Path(os.environ.get("VERITAS_STACK_DIR", REPO / ".stack")).resolve()
        self.pg_port = int(os.environ.get("VERITAS_STACK_PG_PORT", "55432"))
        self.redis_port = int(os.environ.get("VERITAS_STACK_REDIS_PORT", "56379"))
        self.instances = [
            Instance("production", int(os.environ.get("VERITAS_STACK_PRODUCTION_PORT", "18081")), 0, "PRODUCTION_NAUTOBOT"),
            Instance("veritas", int(os.environ.get("VERITAS_STACK_VERITAS_PORT", "18082")), 2, "VERITASBOT"),
        ]
        self.venv = self.home / "nautobot-venv"
        self.pgdata = self.home / "pgdata"
        self.run_dir = self.home / "run"
        self.logs = self.home / "logs"
        self.secrets_file = self.home / "secrets.json"
        self.env_file = self.home / "stack.env"
        self.monitoring = [
            Monitor("pushgateway", int(os.environ.get("VERITAS_STACK_PUSHGATEWAY_PORT", "19091")),
                    "prometheus-pushgateway", "VERITAS_PUSHGATEWAY_URL"),
            Monitor("prometheus", int(os.environ.get("VERITAS_STACK_PROMETHEUS_PORT", "19090")),
                    "prometheus", "VERITAS_PROMETHEUS_URL"),
        ]

    # ------------------------------------------------------------------ helpers
    def step(self, message: str) -> None:
        print(f"[stack] {message}", flush=True)

    def run(self, cmd: list[str], *, env: dict | None = None, user: str | None = None, quiet: bool = False,
            check: bool = True, log: str | None = None) -> subprocess.CompletedProcess:
        if user and os.geteuid() == 0:
            cmd = ["runuser", "-u", user, "--", *cmd]
        stdout = None
        if log:
            stdout = open(self.logs / log, "a")
        elif quiet:
            stdout = subprocess.DEVNULL
        try:
            result = subprocess.run(cmd, env=env, stdout=stdout, stderr=subprocess.STDOUT if stdout else None,
                                    check=False, cwd=self.home)
        finally:
            if log:
                stdout.close()
        if check and result.returncode != 0:
            where = f" (see {self.logs / log})" if log else ""
            raise SystemExit(f"[stack] command failed with exit {result.returncode}: {' '.join(cmd)}{where}")
        return result

    def secret(self, key: str, factory) -> str:
        data = json.loads(self.secrets_file.read_text()) if self.secrets_file.exists() else {}
        if key not in data:
            data[key] = factory()
            self.secrets_file.write_text(json.dumps(data, indent=2))
            self.secrets_file.chmod(0o600)
        return data[key]

    # ------------------------------------------------------------------ install
    def pg_bin(self, name: str) -> str:
        found = shutil.which(name)
        if found:
            return found
        for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
            return str(candidate)
        raise SystemExit(f"[stack] PostgreSQL binary {name!r} not found")

    def apt_install(self, *packages: str) -> None:
        if os.geteuid() != 0:
            raise SystemExit(f"[stack] please install {' '.join(packages)} (needs root)")
        self.step(f"installing {' '.join(packages)} from Debian's packages")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        self.run(["apt-get", "update", "-qq"], env=env, log="apt.log")
        self.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], env=env, log="apt.log")

    def install(self) -> None:
        for folder in (self.home, self.run_dir, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        missing = []
        if not shutil.which("redis-server"):
            missing.append("redis-server")
        missing += [monitor.package for monitor in self.monitoring if not shutil.which(monitor.package)]
        try:
            self.pg_bin("initdb")
        except SystemExit:
            missing.append("postgresql")
        if missing:
            self.apt_install(*missing)
        if os.geteuid() == 0:
            if subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
                self.step("creating system user postgres")
                self.run(["useradd", "--system", "--no-create-home", "postgres"])
        marker = self.venv / f".installed-{NAUTOBOT_VERSION}"
        if not marker.exists():
            self.step(f"installing Nautobot {NAUTOBOT_VERSION} into {self.venv}")
            self.run([sys.executable, "-m", "venv", str(self.venv)])
            self.run([str(self.venv / "bin/pip"), "install", "-q", "--upgrade", "pip"], log="pip.log")
            self.run([str(self.venv / "bin/pip"), "install", "-q", *NAUTOBOT_REQUIREMENTS], log="pip.log")
            marker.touch()

    # ------------------------------------------------------------------ PostgreSQL
    def pg_user(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None

    def psql(self, sql: str, db: str = "postgres", quiet: bool = True) -> str:
        cmd = [self.pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "nautobot", "-d", db,
               "-v", "ON_ERROR_STOP=1", "-tAc", sql]
        env = {**os.environ, "PGPASSWORD": self.secret("pg_password", lambda: secrets.token_hex(16))}
        result = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"[stack] psql failed: {sql}\n{result.stderr}")
        return result.stdout.strip()

    def pg_running(self) -> bool:
        return subprocess.run([self.pg_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.pg_port)],
                              capture_output=True).returncode == 0

    def start_postgres(self) -> None:
        if self.pg_running():
            self.step(f"PostgreSQL already running on 127.0.0.1:{self.pg_port}")
            return
        user = self.pg_user()
        if not (self.pgdata / "PG_VERSION").exists():
            self.step(f"initialising PostgreSQL data directory {self.pgdata}")
            self.pgdata.mkdir(parents=True, exist_ok=True)
            pwfile = self.run_dir / "pg.pw"
            pwfile.write_text(self.secret("pg_password", lambda: secrets.token_hex(16)))
            if user:
                shutil.chown(self.pgdata, user)
                shutil.chown(pwfile, user)
            self.run([self.pg_bin("initdb"), "-D", str(self.pgdata), "-U", "nautobot", "-A", "scram-sha-256",
                      f"--pwfile={pwfile}", "-E", "UTF8"], user=user, log="postgres.log")
            pwfile.unlink()
        if user:
            shutil.chown(self.run_dir, user)
            for log in self.logs.glob("postgres*.log"):
                shutil.chown(log, user)
            if not (self.logs / "postgres-server.log").exists():
                (self.logs / "postgres-server.log").touch()
                shutil.chown(self.logs / "postgres-server.log", user)
        self.step(f"starting PostgreSQL on 127.0.0.1:{self.pg_port}")
        # A disposable test stack: durability settings off for speed.
        options = (f"-p {self.pg_port} -c listen_addresses=127.0.0.1 -k {self.run_dir} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self.run([self.pg_bin("pg_ctl"), "-D", str(self.pgdata), "-l", str(self.logs / "postgres-server.log"),
                  "-o", options, "-w", "start"], user=user, log="postgres.log")

    def stop_postgres(self) -> None:
        if self.pg_running():
            self.step("stopping PostgreSQL")
            self.run([self.pg_bin("pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"],
                     user=self.pg_user(), log="postgres.log", check=False)

    def db_exists(self, name: str) -> bool:
        return self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1"

    def db_comment(self, name: str) -> str:
        return self.psql(f"SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{name}'")

    def set_db_comment(self, name: str, comment: str) -> None:
        self.psql(f"COMMENT ON DATABASE {name} IS '{comment}'")

    def clone_db(self, source: str, target: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        self.psql(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')

    # ------------------------------------------------------------------ Redis
    def redis_running(self) -> bool:
        return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.redis_port), "ping"],
                              capture_output=True).returncode == 0

    def start_redis(self) -> None:
        if self.redis_running():
            self.step(f"Redis already running on 127.0.0.1:{self.redis_port}")
            return
        self.step(f"starting Redis on 127.0.0.1:{self.redis_port}")
        (self.home / "redis").mkdir(exist_ok=True)
        self.run(["redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port), "--daemonize", "yes",
                  "--dir", str(self.home / "redis"), "--save", "", "--appendonly", "no",
                  "--pidfile", str(self.run_dir / "redis.pid"), "--logfile", str(self.logs / "redis.log")])
        for _ in range(50):
            if self.redis_running():
                return
            time.sleep(0.1)
        raise SystemExit("[stack] Redis did not start")

    def stop_redis(self) -> None:
        if self.redis_running():
            self.step("stopping Redis")
            subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.redis_port), "shutdown", "nosave"],
                           capture_output=True)

    # ------------------------------------------------------------------ Nautobot
    def nautobot_env(self, database: str, redis_db: int = SEEDING_REDIS_DB) -> dict:
        root = self.home / "nautobot" / database
        root.mkdir(parents=True, exist_ok=True)
        return {
            **os.environ,
            "NAUTOBOT_CONFIG": str(STACK_CODE / "nautobot_config.py"),
            "NAUTOBOT_ROOT": str(root),
            "NAUTOBOT_DB_NAME": database,
            "NAUTOBOT_DB_USER": "nautobot",
            "NAUTOBOT_DB_PASSWORD": self.secret("pg_password", lambda: secrets.token_hex(16)),
            "NAUTOBOT_DB_HOST": "127.0.0.1",
            "NAUTOBOT_DB_PORT": str(self.pg_port),
            "NAUTOBOT_REDIS_HOST": "127.0.0.1",
            "NAUTOBOT_REDIS_PORT": str(self.redis_port),
            "VERITAS_STACK_REDIS_DB": str(redis_db),
            "VERITAS_STACK_SECRET_KEY": self.secret("django_secret_key", lambda: secrets.token_urlsafe(50)),
            "NAUTOBOT_INSTALLATION_METRICS_ENABLED": "false",
        }

    def nautobot(self, database: str, *args: str, log: str) -> None:
        self.run([str(self.venv / "bin/nautobot-server"), *args], env=self.nautobot_env(database), log=log)

    def nautobot_script(self, database: str, script: str, *args: str, log: str) -> None:
        self.run([str(self.venv / "bin/python"), str(STACK_CODE / script), *args],
                 env=self.nautobot_env(database), log=log)

    def ensure_template(self) -> None:
        if self.db_exists(TEMPLATE_DB) and self.db_comment(TEMPLATE_DB) == "migrated":
            return
        self.step("migrating the template database once (several minutes; later resets clone it)")
        started = time.monotonic()
        self.psql(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)')
        self.psql(f'CREATE DATABASE "{TEMPLATE_DB}"')
        self.nautobot(TEMPLATE_DB, "migrate", "--no-input", log="migrate.log")
        # Stale 1.x content types left by the 2.0 migrations break generate_test_data.
        self.nautobot(TEMPLATE_DB, "remove_stale_contenttypes", "--no-input", "--include-stale-apps",
                      log="migrate.log")
        self.set_db_comment(TEMPLATE_DB, "migrated")
        self.step(f"template migrated in {time.monotonic() - started:.0f} s")

    def seeded_template_name(self, instance: Instance, seed: str, scale: int, discovery: int) -> str:
        safe = "".join(c if c.isalnum() else "_" for c in seed.lower())[:30]
        return f"seeded_{instance.name}_{safe}_{scale}_d{discovery}"

    def state_label(self, seed: str, scale: int, discovery: int) -> str:
        return f"seed={seed} scale={scale} discovery={discovery}"

    def ensure_seeded_templates(self, seed: str, scale: int, discovery: int) -> None:
        production, veritas = self.instances
        prod_tpl = self.seeded_template_name(production, seed, scale, discovery)
        ver_tpl = self.seeded_template_name(veritas, seed, scale, discovery)
        label = self.state_label(seed, scale, discovery)
        if self.db_exists(prod_tpl) and self.db_comment(prod_tpl) == label \
                and self.db_exists(ver_tpl) and self.db_comment(ver_tpl) == label:
            return
        started = time.monotonic()
        self.flush_cache(SEEDING_REDIS_DB)
        work_prod, work_ver = f"{prod_tpl}_build", f"{ver_tpl}_build"
        self.clone_db(TEMPLATE_DB, work_prod)
        self.clone_db(TEMPLATE_DB, work_ver)
        self.step(f"seeding production with generate_test_data --seed {seed} (about a minute)")
        self.nautobot(work_prod, "generate_test_data", "--seed", seed, "--flush", "--no-input", log="seed.log")
        self.step("seeding production with the supplementary data generate_test_data leaves empty")
        plan = self.home / f"discovery-plan-{prod_tpl}.json"
        self.nautobot_script(work_prod, "seed_production.py", "--seed", seed, "--scale", str(scale),
                             "--discovery-plan", str(plan), log="seed.log")
        seeded_production = time.monotonic()
        self.step("seeding VeritasBot with the simulated discovery state"
                  + (f" (discovery scale {discovery})" if discovery else ""))
        self.nautobot_script(work_ver, "seed_discovery.py", "--seed", seed, "--discovery-plan", str(plan),
                             "--discovery-scale", str(discovery), log="seed.log")
        seeded_veritas = time.monotonic()
        for work, final in ((work_prod, prod_tpl), (work_ver, ver_tpl)):
            self.psql(f'DROP DATABASE IF EXISTS "{final}" WITH (FORCE)')
            self.psql(f'ALTER DATABASE "{work}" RENAME TO "{final}"')
            self.set_db_comment(final, label)
        self.step(f"seeded {label} in {time.monotonic() - started:.0f} s (production "
                  f"{seeded_production - started:.0f} s, VeritasBot {seeded_veritas - seeded_production:.0f} s)")

    def flush_cache(self, redis_db: int) -> None:
        """Nautobot caches custom fields and content types in Redis, not per database: a cloned database
        must not meet the cache of the one it replaced."""
        for db in (redis_db, redis_db + 1):
            subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.redis_port), "-n", str(db), "flushdb"],
                           capture_output=True, check=True)

    def restore_instances(self, seed: str, scale: int, discovery: int) -> None:
        for instance in self.instances:
            self.clone_db(self.seeded_template_name(instance, seed, scale, discovery), instance.name)
            self.set_db_comment(instance.name, self.state_label(seed, scale, discovery))
            self.flush_cache(instance.redis_db)
        self.create_tokens()

    def create_tokens(self) -> None:
        """Tokens are created per clone: the admin one writes (tests, seeding), the sync one only reads
        production, so the server itself refuses any write the pipeline might attempt there."""
        tokens = {}
        for instance in self.instances:
            for purpose, write_enabled in (("admin", True), ("sync", instance.name != "production")):
                tokens[f"{instance.name}_{purpose}"] = (
                    self.secret(f"token_{instance.name}_{purpose}", lambda: secrets.token_hex(20)), write_enabled)
        args = []
        for instance in self.instances:
            for purpose in ("admin", "sync"):
                key, write_enabled = tokens[f"{instance.name}_{purpose}"]
                args.append(f"{instance.name}:{purpose}:{key}:{int(write_enabled)}")
        for instance in self.instances:
            own = [a for a in args if a.startswith(instance.name + ":")]
            self.nautobot_script(instance.name, "create_tokens.py", *own, log="tokens.log")

    @staticmethod
    def answers(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def server_alive(self, instance: Instance) -> bool:
        return self.answers(f"{instance.url}/health/")

    def pidfile(self, instance: Instance) -> Path:
        return self.run_dir / f"nautobot-{instance.name}.pid"

    def start_server(self, instance: Instance) -> None:
        if self.server_alive(instance):
            self.step(f"Nautobot {instance.name} already running at {instance.url}")
            return
        self.step(f"starting Nautobot {instance.name} at {instance.url}")
        env = self.nautobot_env(instance.name, instance.redis_db)
        log = open(self.logs / f"nautobot-{instance.name}.log", "a")
        subprocess.Popen(
            [str(self.venv / "bin/nautobot-server"), "start", "--http", f"127.0.0.1:{instance.port}",
             "--master", "--processes", "2", "--threads", "2", "--need-app", "--die-on-term",
             "--http-keepalive", "--buffer-size", "32768", "--post-buffering", "1",
             "--pidfile", str(self.pidfile(instance))],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.home)

    def wait_servers(self) -> None:
        deadline = time.monotonic() + 180
        for instance in self.instances:
            while not self.server_alive(instance):
                if time.monotonic() > deadline:
                    raise SystemExit(f"[stack] Nautobot {instance.name} did not answer; see "
                                     f"{self.logs / ('nautobot-' + instance.name + '.log')}")
                time.sleep(0.5)
            self.step(f"Nautobot {instance.name} answers at {instance.url}")

    def stop_server(self, instance: Instance) -> None:
        self.stop_process(f"Nautobot {instance.name}", self.pidfile(instance))

    def stop_process(self, what: str, pidfile: Path) -> None:
        if not pidfile.exists():
            return
        try:
            pid = int(pidfile.read_text().strip())
            self.step(f"stopping {what}")
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.1)
        except (ProcessLookupError, ValueError):
            pass
        pidfile.unlink(missing_ok=True)

    # ------------------------------------------------------------------ monitoring
    def monitor_alive(self, monitor: Monitor) -> bool:
        return self.answers(f"{monitor.url}/-/ready")

    def prometheus_config(self) -> Path:
        pushgateway = self.monitoring[0]
        config = self.home / "prometheus" / "prometheus.yml"
        config.parent.mkdir(parents=True, exist_ok=True)
        # honor_labels: the pushed job and grouping labels are the series' own, not the scrape's.
        config.write_text(
            f"global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  evaluation_interval: {SCRAPE_INTERVAL}\n"
            f"rule_files:\n  - {ALERT_RULES}\n"
            f"scrape_configs:\n  - job_name: pushgateway\n    honor_labels: true\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{pushgateway.port}']\n")
        return config

    def monitor_command(self, monitor: Monitor) -> list[str]:
        data = self.home / monitor.name
        data.mkdir(parents=True, exist_ok=True)
        listen = f"--web.listen-address=127.0.0.1:{monitor.port}"
        if monitor.name == "pushgateway":
            # The admin API lets tests wipe the last pushes; the file keeps them across restarts.
            return [monitor.package, listen, "--web.enable-admin-api",
                    f"--persistence.file={data / 'metrics.store'}", "--persistence.interval=5s"]
        return [monitor.package, listen, f"--config.file={self.prometheus_config()}",
                f"--storage.tsdb.path={data / 'data'}", "--storage.tsdb.retention.time=15d",
                "--web.enable-lifecycle", "--web.enable-admin-api"]

    def start_monitor(self, monitor: Monitor) -> None:
        if self.monitor_alive(monitor):
            if monitor.name == "prometheus":  # pick up the current rules file
                self.prometheus_config()
                urllib.request.urlopen(urllib.request.Request(f"{monitor.url}/-/reload", method="POST"), timeout=10)
            self.step(f"{monitor.name} already running at {monitor.url}")
            return
        self.step(f"starting {monitor.name} at {monitor.url}")
        log = open(self.logs / f"{monitor.name}.log", "a")
        process = subprocess.Popen(self.monitor_command(monitor), stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=self.home)
        (self.run_dir / f"{monitor.name}.pid").write_text(str(process.pid))
        deadline = time.monotonic() + 60
        while not self.monitor_alive(monitor):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"[stack] {monitor.name} did not start; see {self.logs / (monitor.name + '.log')}")
            time.sleep(0.2)

    def stop_monitor(self, monitor: Monitor) -> None:
        self.stop_process(monitor.name, self.run_dir / f"{monitor.name}.pid")

    # ------------------------------------------------------------------ env file
    def write_env(self) -> None:
        lines = []
        for instance in self.instances:
            lines.append(f"export {instance.env_prefix}_URL={instance.url}")
            lines.append(f"export {instance.env_prefix}_TOKEN={self.secret(f'token_{instance.name}_sync', str)}")
            lines.append(f"export {instance.env_prefix}_ADMIN_TOKEN={self.secret(f'token_{instance.name}_admin', str)}")
        lines += [f"export {monitor.env_var}={monitor.url}" for monitor in self.monitoring]
        lines.append(f"export VERITAS_STACK_DIR={self.home}")
        # What the databases were seeded with, for the record (the stack manager reads the databases instead).
        held = self.held_state(self.current_state())
        for key, variable in (("seed", "VERITAS_STACK_SEEDED"), ("scale", "VERITAS_STACK_SEEDED_SCALE"),
                              ("discovery", "VERITAS_STACK_SEEDED_DISCOVERY_SCALE")):
            if key in held:
                lines.append(f"export {variable}={held[key]}")
        lines.append(f"export VERITAS_STACK_PG_URL=postgresql://nautobot:"
                     f"{self.secret('pg_password', str)}@127.0.0.1:{self.pg_port}")
        self.env_file.write_text("\n".join(lines) + "\n")
        self.env_file.chmod(0o600)

    # ------------------------------------------------------------------ commands
    def current_state(self) -> str | None:
        production = self.instances[0]
        if not self.pg_running() or not self.db_exists(production.name):
            return None
        return self.db_comment(production.name)

    @staticmethod
    def held_state(state: str | None) -> dict[str, str]:
        return dict(part.split("=", 1) for part in (state or "").split() if "=" in part)

    def wanted_state(self, seed: str | None, scale: int | None, discovery: int | None,
                     state: str | None) -> tuple[str, int, int]:
        """The seed and scales asked for (option, else environment), else those the databases hold.
        States labelled before the discovery scale existed hold discovery scale 0."""
        held = self.held_state(state)
        seed = seed or os.environ.get("VERITAS_STACK_SEED") or held.get("seed") or DEFAULT_SEED
        if scale is None:
            scale = int(os.environ.get("VERITAS_STACK_SCALE") or held.get("scale") or 0)
        if discovery is None:
            discovery = int(os.environ.get("VERITAS_STACK_DISCOVERY_SCALE") or held.get("discovery") or 0)
        if scale < 0 or discovery < 0:
            raise SystemExit("[stack] --scale and --discovery-scale cannot be negative")
        return seed, scale, discovery

    def up(self, seed: str | None, scale: int | None, discovery: int | None = None,
           force_restore: bool = False) -> None:
        started = time.monotonic()
        self.install()
        self.start_postgres()
        self.start_redis()
        state = self.current_state()
        seed, scale, discovery = self.wanted_state(seed, scale, discovery, state)
        wanted = self.state_label(seed, scale, discovery)
        if force_restore or state != wanted:
            if state and state != wanted:
                self.step(f"databases hold {state} but {wanted} was asked for: replacing both the production "
                          f"and the veritas database with {wanted} (whatever changed in them is lost)")
            elif state:
                self.step(f"resetting both the production and the veritas database to their freshly seeded "
                          f"state ({wanted}): whatever changed in them is lost")
            for instance in self.instances:
                self.stop_server(instance)
            self.ensure_template()
            self.ensure_seeded_templates(seed, scale, discovery)
            self.step(f"restoring production and veritas from the seeded templates ({wanted})")
            self.restore_instances(seed, scale, discovery)
        for instance in self.instances:
            self.start_server(instance)
        for monitor in self.monitoring:
            self.start_monitor(monitor)
        self.wait_servers()
        self.write_env()
        self.step(f"stack up in {time.monotonic() - started:.1f} s; environment in {self.env_file}")

    def chosen(self, only: str | None) -> list[Instance]:
        return [instance for instance in self.instances if only in (None, instance.name)]

    @contextlib.contextmanager
    def servers_stopped(self, instances: list[Instance]):
        """The instances' servers stopped meanwhile (a database cloned from or replaced must have no
        sessions), then started again and answering."""
        for instance in instances:
            self.stop_server(instance)
        yield
        for instance in instances:
            self.start_server(instance)
        self.wait_servers()

    def backup(self, name: str, only: str | None = None) -> None:
        """Copy the instances' databases to `<name>_<instance>`."""
        instances = self.chosen(only)
        with self.servers_stopped(instances):
            for instance in instances:
                self.step(f"copying the {instance.name} database to {name}_{instance.name}")
                self.clone_db(instance.name, f"{name}_{instance.name}")

    def restore(self, name: str, only: str | None = None) -> None:
        """Replace the instances' databases with the copies `backup` made, keeping their seeded-state label."""
        instances = self.chosen(only)
        missing = [f"{name}_{instance.name}" for instance in instances if not self.db_exists(f"{name}_{instance.name}")]
        if missing:
            raise SystemExit(f"[stack] no database copy {', '.join(missing)}: make it with `stack backup {name}`")
        with self.servers_stopped(instances):
            for instance in instances:
                label = self.db_comment(instance.name)
                self.step(f"restoring the {instance.name} database from {name}_{instance.name}")
                self.clone_db(f"{name}_{instance.name}", instance.name)
                if label:
                    self.set_db_comment(instance.name, label)
                self.flush_cache(instance.redis_db)

    def down(self) -> None:
        for instance in self.instances:
            self.stop_server(instance)
        for monitor in self.monitoring:
            self.stop_monitor(monitor)
        self.stop_redis()
        self.stop_postgres()

    def status(self) -> int:
        print(f"stack directory: {self.home}")
        print(f"PostgreSQL 127.0.0.1:{self.pg_port}: {'running' if self.pg_running() else 'stopped'}")
        print(f"Redis 127.0.0.1:{self.redis_port}: {'running' if self.redis_running() else 'stopped'}")
        if self.pg_running():
            state = self.current_state()
            print(f"databases hold: {state or 'nothing yet'}")
            if state:
                held = self.held_state(state)
                print(f"seed {held.get('seed')}, scale {held.get('scale', 0)}, "
                      f"discovery scale {held.get('discovery', 0)}")
        healthy = True
        for instance in self.instances:
            alive = self.server_alive(instance)
            healthy &= alive
            print(f"Nautobot {instance.name} {instance.url}: {'running' if alive else 'stopped'}")
        for monitor in self.monitoring:
            alive = self.monitor_alive(monitor)
            healthy &= alive
            print(f"{monitor.name} {monitor.url}: {'running' if alive else 'stopped'}")
        return 0 if healthy else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stack", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "reset"):
        command = sub.add_parser(name)
        command.add_argument("--seed", help=f"seed of the generated data (default: $VERITAS_STACK_SEED, else the "
                                            f"seed the databases hold, else {DEFAULT_SEED!r})")
        command.add_argument("--scale", type=int, help="extra production objects spread over the models "
                                                       "(benchmarks; default: $VERITAS_STACK_SCALE, else as held)")
        command.add_argument("--discovery-scale", type=int,
                             help="extra discovered devices in VeritasBot, 50 interfaces each, with D/2 VMs and "
                                  "IP addresses (default: $VERITAS_STACK_DISCOVERY_SCALE, else as held)")
    for name in ("backup", "restore"):
        command = sub.add_parser(name)
        command.add_argument("name", help="the copies' name: each instance's is <name>_<instance>")
        command.add_argument("--only", choices=("production", "veritas"),
                             help="one instance (default: both)")
    for name in ("down", "status", "env"):
        sub.add_parser(name)
    args = parser.parse_args(argv)
    stack = Stack()
    if args.command == "up":
        stack.up(args.seed, args.scale, args.discovery_scale)
    elif args.command == "reset":
        stack.up(args.seed, args.scale, args.discovery_scale, force_restore=True)
    elif args.command == "backup":
        stack.backup(args.name, args.only)
    elif args.command == "restore":
        stack.restore(args.name, args.only)
    elif args.command == "down":
        stack.down()
    elif args.command == "status":
        return stack.status()
    elif args.command == "env":
        if not stack.env_file.exists():
            raise SystemExit("[stack] no environment yet: run `scripts/stack up` first")
        print(stack.env_file.read_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
