"""Declarative automation: evaluation follows a succeeded job only, promotion follows passed gates only.

Dagster's `AutomationCondition.eager()` does not wait for blocking checks by itself; these tests run
the code location's real conditions (`dg.evaluate_automation_conditions`) on a real instance.
"""

from __future__ import annotations

import dagster as dg
import pytest

from pipeline.backends.base import FineTuneRequest, JobState, JobStatus
from pipeline.core.resources import StoreResource
from pipeline.core.store import Store
from pipeline.defs.fine_tune_job import fine_tune_job_succeeded
from pipeline.defs.partitions import TARGET_PARTITIONS, target_partitions
from pipeline.finetune import registry
from pipeline_tests.gate_helpers import record_materialization

KEY = "signal_relevance"
EVALUATED, PRODUCTION = dg.AssetKey("evaluated_model"), dg.AssetKey("production_model")


@pytest.fixture(scope="module")
def defs():
    from pipeline.definitions import defs

    return defs


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(TARGET_PARTITIONS, [KEY])
        yield instance


class Automation:
    """Successive ticks of the automation sensor, its cursor carried from one to the next."""

    def __init__(self, defs, instance):
        self.defs, self.instance, self.cursor = defs, instance, None

    def tick(self) -> dict[dg.AssetKey, set[str]]:
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.cursor)
        self.cursor = result.cursor
        return {key: set(result.get_requested_partitions(key)) for key in (EVALUATED, PRODUCTION)}


def job_row(store: Store, state: JobState, job_id: str = "ftjob-1") -> None:
    request = FineTuneRequest(target=KEY, dataset_version="v1", method="embedding", base_model="m", train_file="x",
                              validation_file=None)
    registry.record_job(store, JobStatus(job_id=job_id, state=state, backend="openai", result_model="ft:m"), request)


def materialize_job(instance, store_url: str, job_id: str = "ftjob-1") -> dg.AssetCheckEvaluation:
    """A fine_tune_job materialization naming `job_id`, judged by the real fine_tune_job_succeeded check."""

    @dg.asset(name="fine_tune_job", partitions_def=target_partitions)
    def job_stand_in():
        return dg.MaterializeResult(metadata={"job_id": job_id})

    result = dg.materialize([job_stand_in, fine_tune_job_succeeded], partition_key=KEY, instance=instance,
                            resources={"store": StoreResource(url=store_url)}, raise_on_error=False)
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def test_evaluation_follows_a_job_only_once_it_succeeded(defs, instance, tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    automation = Automation(defs, instance)
    assert automation.tick() == {EVALUATED: set(), PRODUCTION: set()}

    job_row(store, JobState.RUNNING)  # a hosted job submitted: the check warns, automation waits
    running = materialize_job(instance, url)
    assert not running.passed and running.severity == dg.AssetCheckSeverity.WARN and "is running" in running.description
    assert automation.tick() == {EVALUATED: set(), PRODUCTION: set()}

    job_row(store, JobState.FAILED)  # it failed: an error, still nothing to evaluate
    failed = materialize_job(instance, url)
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert automation.tick() == {EVALUATED: set(), PRODUCTION: set()}

    job_row(store, JobState.SUCCEEDED, "ftjob-2")  # the next job succeeded: evaluated once, not promoted yet
    assert materialize_job(instance, url, "ftjob-2").passed
    assert automation.tick() == {EVALUATED: {KEY}, PRODUCTION: set()}
    assert automation.tick()[EVALUATED] == set()  # requested once, not on every tick


def evaluation(instance, checks_pass) -> None:
    record_materialization(instance, "evaluated_model", KEY, "eval-1", {"report_path": "/nonexistent.json"},
                           checks_pass=checks_pass)


def test_a_failed_gate_stops_promotion_and_passed_gates_start_it(defs, instance):
    automation = Automation(defs, instance)
    automation.tick()
    evaluation(instance, {"candidate_beats_champion": False})
    assert automation.tick() == {EVALUATED: set(), PRODUCTION: set()}
    assert automation.tick()[PRODUCTION] == set()  # it stays refused on later ticks
    evaluation(instance, True)
    assert automation.tick() == {EVALUATED: set(), PRODUCTION: {KEY}}


def test_the_automation_sensor_evaluates_what_follows_training(defs):
    repo = defs.get_repository_def()
    sensor = repo.get_sensor_def("evaluate_and_promote")
    assert sensor.asset_selection.resolve(repo.asset_graph) == {EVALUATED, PRODUCTION}
    job = defs.resolve_job_def("train_target_job")
    assert {EVALUATED, PRODUCTION}.isdisjoint(job.asset_layer.selected_asset_keys)
    assert dg.AssetKey("fine_tune_job") in job.asset_layer.selected_asset_keys
