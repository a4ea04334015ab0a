"""A backfill of every target partition of `scored_examples`, its steps on two real Celery workers.

The set-up is deploy/celery/ as shipped: the instance is `deploy/celery/dagster.yaml` (run, event-log
and schedule storage on a fresh Postgres database of the server on 127.0.0.1:5432, the interaction
store beside them), the two workers are `deploy/celery/start-worker` subprocesses (`dagster-celery
worker start -y deploy/celery/worker.yaml`, concurrency 1 each) on the broker these machines run
(RabbitMQ, else Redis), and the code location, served by `dagster api grpc`, picks the Celery
executor from `FLYWHEEL_EXECUTOR=celery` as a deployment would. The backfill is what the UI's
"materialize all partitions" creates (an asset backfill), driven by the backfill daemon's and the run
queue daemon's own iterations, run in the test's process instead of a `dagster-daemon` (which would
also tick every sensor). Each run starts in the code server (the DefaultRunLauncher) and hands its
step to Celery. The workers listen on a queue of this test's own, so nothing else on the shared
broker takes its tasks, nor the test theirs.

Under CI=true a missing broker or Postgres fails the test; elsewhere it skips with the reason.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from pipeline_tests.conftest import IN_CI
from pipeline_tests.live_dagster import _stop, free_port, listening

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEPLOY = ROOT / "deploy" / "celery"

#: the brokers these machines run, tried in order (Redis: a database out of the default one's way);
#: FLYWHEEL_TEST_CELERY_BROKER overrides
BROKERS = ("amqp://guest:guest@127.0.0.1:5672//", "redis://127.0.0.1:6379/15")
#: one partition per target, each with a few interactions of the tasks it reads
SEEDED = {"page_builder": "page_generation", "ux_review": "ux_review", "roast_voice": "roast",
          "signal_relevance": "signal_extraction"}
DEADLINE_S = 150


def _reachable(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=3):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def broker_url() -> str:
    candidates = [os.environ["FLYWHEEL_TEST_CELERY_BROKER"]] if os.environ.get("FLYWHEEL_TEST_CELERY_BROKER") else BROKERS
    for url in candidates:
        if _reachable(url):
            return url
    message = f"no Celery broker reachable at {', '.join(candidates)}"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires the Celery backfill test to run (.ci/run starts the broker)")
    pytest.skip(message)


@pytest.fixture
def fresh_database(postgres_base_url):
    """A database of its own on the real server (Dagster's storage and the interaction store), dropped after."""
    import sqlalchemy as sa

    name = f"flywheel_celery_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield sa.make_url(postgres_base_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def deployment(tmp_path, monkeypatch, fresh_database, broker_url):
    """The environment every process of the deployment shares, with deploy/celery/dagster.yaml as the instance."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((DEPLOY / "dagster.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    env = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": fresh_database,
        "DAGSTER_SHARED_STORAGE": str(tmp_path / "shared"),
        "FLYWHEEL_SOURCE_URL": fresh_database,
        "FLYWHEEL_EXECUTOR": "celery",
        "FLYWHEEL_CELERY_BROKER": broker_url,
        "FLYWHEEL_CELERY_QUEUE": f"flywheel_test_{uuid.uuid4().hex[:10]}",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # dagster-celery execs `celery`
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return tmp_path


def _delete_queue(broker: str, queue: str) -> None:
    """The test's queue (and the exchange Celery names after it) go with the test, not left on the shared broker."""
    from kombu import Connection

    with Connection(broker, connect_timeout=5) as conn:
        channel = conn.default_channel
        channel.queue_delete(queue)
        channel.exchange_delete(queue)
        if broker.startswith("redis"):  # kombu keeps a binding set per exchange that a new channel does not know of
            channel.client.delete(f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")


@pytest.fixture
def workers(deployment, request):
    """Two `dagster-celery worker start` processes, concurrency 1 each, stopped whatever the test does."""
    started: list[tuple[str, subprocess.Popen, Path]] = []
    queue = os.environ["FLYWHEEL_CELERY_QUEUE"]

    def stop_all() -> None:
        for _, proc, _ in started:  # both begin their warm shutdown at once
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        left = [p for _, proc, _ in started for p in _stop(proc, grace_s=20)]
        _delete_queue(os.environ["FLYWHEEL_CELERY_BROKER"], queue)
        assert not left, f"worker processes left after stopping: {[(p.pid, p.name()) for p in left]}"

    request.addfinalizer(stop_all)
    suffix = uuid.uuid4().hex[:6]  # unique node names: another suite may run workers on this host
    for name in (f"flywheel-a-{suffix}", f"flywheel-b-{suffix}"):
        log = deployment / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(DEPLOY / "start-worker"), "-n", name, "--", "--concurrency", "1"],  # on FLYWHEEL_CELERY_QUEUE
                cwd=deployment, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        started.append((name, proc, log))
    deadline = time.monotonic() + 60
    for name, proc, log in started:
        while b" ready." not in log.read_bytes():
            assert proc.poll() is None, f"worker {name} exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"worker {name} never became ready:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
    return started


@pytest.fixture
def code_server(deployment, request) -> int:
    """The code location served over gRPC (`dagster api grpc`), as a deployment runs it; the runs start in it.

    Started here, in its own process group, rather than by the workspace: a server the workspace
    starts can outlive the test when its shutdown races the end of the test, and keep connecting to
    the dropped database.
    """
    from dagster._grpc.client import DagsterGrpcClient

    port = free_port()
    log = deployment / "code_server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(BIN / "dagster"), "api", "grpc", "-m", "pipeline.definitions", "-h", "127.0.0.1",
                                 "-p", str(port), "--location-name", "flywheel"],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def stop() -> None:
        with contextlib.suppress(Exception):  # the server's own way out (it ignores SIGTERM); then its group
            client.shutdown_server()
            proc.wait(timeout=20)
        left = _stop(proc, grace_s=5)
        assert not left, f"code server processes left: {[(p.pid, p.name()) for p in left]}"
        assert not listening(port), f"something still listens on 127.0.0.1:{port}"

    client = DagsterGrpcClient(port=port, host="127.0.0.1")
    request.addfinalizer(stop)
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"the code server exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
        try:
            client.ping("ready?")
            return port
        except Exception:  # noqa: BLE001 - not serving yet
            assert time.monotonic() < deadline, f"the code server never served:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)


def _seed_store(url: str) -> None:
    from pipeline.core.store import Store
    from pipeline_tests.curation_helpers import insert_accepted, record

    feedback = [("thumbs", 1), ("outcome", "accepted")]
    records = [record(f"{task}-{i}", task=task, prompt=f"{task} request number {i}", response=f"answer {i} for {task}",
                      feedback=feedback, at=f"2026-03-0{i + 1}T10:00:00Z")
               for task in SEEDED.values() for i in range(3)]
    store = Store(url)
    insert_accepted(store, records)
    store.dispose()


def _run_backfill(instance, port: int) -> str:
    """Adds an asset backfill of `scored_examples` over all its partitions and drives the daemons until it ends."""
    import dagster as dg
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
    from dagster._core.utils import make_new_backfill_id
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import GrpcServerTarget
    from dagster._daemon.backfill import execute_backfill_iteration
    from dagster._daemon.daemon import get_default_daemon_logger
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    target = GrpcServerTarget(host="127.0.0.1", port=port, socket=None, location_name="flywheel")
    with WorkspaceProcessContext(instance, target) as context:
        request = context.create_request_context()
        assert not request.code_location_errors(), request.code_location_errors()
        backfill = PartitionBackfill.from_asset_partitions(
            backfill_id=make_new_backfill_id(), asset_graph=request.asset_graph, partition_names=None,
            asset_selection=[dg.AssetKey("scored_examples")], backfill_timestamp=time.time(), tags={},
            dynamic_partitions_store=instance, all_partitions=True, title="celery backfill test", description=None,
            run_config=None,
        )
        instance.add_backfill(backfill)
        backfill_logger = get_default_daemon_logger("BackfillDaemon")
        with QueuedRunCoordinatorDaemon(interval_seconds=1) as queue_daemon:
            deadline = time.monotonic() + DEADLINE_S
            while True:
                errors = [e for e in execute_backfill_iteration(context, backfill_logger) if e is not None]
                errors += [e for e in queue_daemon.run_iteration(context) if e is not None]
                assert not errors, errors
                status = instance.get_backfill(backfill.backfill_id).status
                if status not in (BulkActionStatus.REQUESTED, BulkActionStatus.CANCELING, BulkActionStatus.FAILING):
                    break
                assert time.monotonic() < deadline, f"backfill still {status} after {DEADLINE_S}s"
                time.sleep(1)
    return backfill.backfill_id


@pytest.mark.slow
@pytest.mark.celery
@pytest.mark.postgres
def test_backfill_runs_every_partition_once_on_both_workers(deployment, workers, code_server):
    import dagster as dg
    from dagster._core.execution.backfill import BulkActionStatus
    from dagster._core.storage.tags import BACKFILL_ID_TAG

    from pipeline_tests.defs_helpers import add_target_partitions

    _seed_store(os.environ["FLYWHEEL_SOURCE_URL"])
    instance = dg.DagsterInstance.get()  # DAGSTER_HOME: the deploy config, on the fresh database
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        partitions = sorted(SEEDED)
        add_target_partitions(instance, *partitions)

        started = time.monotonic()
        backfill_id = _run_backfill(instance, code_server)
        elapsed = time.monotonic() - started

        logs = "\n".join(f"--- {name}\n{log.read_text()[-2000:]}" for name, _, log in workers)
        backfill = instance.get_backfill(backfill_id)
        assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS, (backfill.status, backfill.error, logs)

        runs = instance.get_runs(filters=dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
        assert sorted(r.tags.get("dagster/partition") for r in runs) == partitions, "one run per partition"
        assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}, logs

        # every partition materialized exactly once, and only by this backfill's runs
        records = instance.fetch_materializations(dg.AssetKey("scored_examples"), limit=100).records
        assert Counter(r.partition_key for r in records) == Counter(partitions)
        assert {r.run_id for r in records} == {r.run_id for r in runs}
        read = {r.partition_key: r.asset_materialization.metadata["read"].value for r in records}
        assert read == {p: 3 for p in partitions}, read

        # each step ran in a Celery worker (the task's own engine event names it), and both took some
        by_worker: Counter[str] = Counter()
        for run in runs:
            for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
                if "in celery worker" in (entry.message or ""):
                    metadata = entry.dagster_event.engine_event_data.metadata
                    by_worker[metadata["Celery worker"].value.split("@")[0]] += 1
        assert sum(by_worker.values()) == len(partitions), by_worker
        assert set(by_worker) == {name for name, _, _ in workers}, f"steps per worker: {dict(by_worker)}"
        print(f"backfill of {len(partitions)} partitions on Celery: {elapsed:.1f}s, steps per worker {dict(by_worker)}")
    finally:
        instance.dispose()


def test_the_celery_executor_needs_its_broker(monkeypatch):
    from pipeline.definitions import executor_from_env

    monkeypatch.setenv("FLYWHEEL_EXECUTOR", "celery")
    monkeypatch.delenv("FLYWHEEL_CELERY_BROKER", raising=False)
    with pytest.raises(ValueError, match="FLYWHEEL_EXECUTOR=celery needs FLYWHEEL_CELERY_BROKER"):
        executor_from_env()
    monkeypatch.setenv("FLYWHEEL_CELERY_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
    assert executor_from_env().name == "celery"
    monkeypatch.setenv("FLYWHEEL_EXECUTOR", "selery")
    with pytest.raises(ValueError, match="'selery'"):
        executor_from_env()
    monkeypatch.delenv("FLYWHEEL_EXECUTOR")
    assert executor_from_env() is None  # Dagster's default, multiprocess


def test_a_worker_refuses_to_start_without_a_broker(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FLYWHEEL_CELERY_BROKER"} | {"DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run([str(DEPLOY / "start-worker"), "-n", "never"], env=env, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode != 0 and "set FLYWHEEL_CELERY_BROKER to the broker" in done.stderr


def test_the_worker_file_reads_the_broker_the_code_location_reads(monkeypatch):
    """deploy/celery/worker.yaml passes dagster-celery's own check; its broker is the variable the executor reads."""
    from dagster_celery.cli import get_validated_config

    from pipeline.definitions import BROKER_VARIABLE

    monkeypatch.setenv(BROKER_VARIABLE, "amqp://guest:guest@rabbitmq:5672//")
    config = get_validated_config(str(DEPLOY / "worker.yaml"))
    assert (config["broker"], config["backend"]) == ("amqp://guest:guest@rabbitmq:5672//", "rpc://")


def test_the_celery_training_tags_send_only_training_to_the_gpu_queue(monkeypatch):
    from dagster_celery.tags import DAGSTER_CELERY_QUEUE_TAG

    from pipeline.defs.fine_tune_job import training_step_tags

    monkeypatch.setenv("FLYWHEEL_TRAINING_STEP_TAGS", str(DEPLOY / "training_step_tags.yaml"))
    assert training_step_tags() == {DAGSTER_CELERY_QUEUE_TAG: "gpu"}
