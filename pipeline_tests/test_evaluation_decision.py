"""The promotion gates and the decision: thresholds, readable failures, every path of `decide`."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.gates import GateResult
from pipeline.core.targets import GateConfig
from pipeline.evaluation.decision import (
    GATE_NAMES,
    beats_champion,
    decide,
    json_validity_meets_floor,
    no_task_regresses,
    run_gates,
    upstream_gates_passed,
)
from pipeline.evaluation.metrics import score_json
from pipeline.evaluation.stats import compare


def _comparison(lift: float, n: int = 120, tasks: int = 2, seed: int = 0, task_lifts: dict | None = None):
    rng = np.random.default_rng(seed)
    labels = [f"task_{i % tasks}" for i in range(n)]
    champion = rng.uniform(0.3, 0.7, n)
    shift = np.array([(task_lifts or {}).get(t, lift) for t in labels])
    candidate = champion + shift + rng.normal(0, 0.05, n)
    return compare(candidate, champion, labels, metric="section_accuracy", seed=seed)


@pytest.mark.parametrize(
    "lift, margin, passed, says",
    [
        (0.10, 0.02, True, "at or above the margin +0.020"),
        (0.03, 0.02, False, "not shown to be better"),  # better, but the interval reaches below the margin
        (0.00, 0.02, False, "not shown to be better"),
        (-0.10, 0.02, False, "worse than the champion"),
        (0.10, 0.20, False, "below the margin +0.200"),
    ],
)
def test_beats_champion(lift, margin, passed, says):
    comparison = _comparison(lift)
    gate = beats_champion(comparison, margin)
    assert gate.passed is passed
    assert gate.passed == (comparison.low >= margin)
    assert says in gate.description
    text = gate.description
    assert text.startswith("section_accuracy: candidate − champion = ") and "95% CI [" in text
    assert "task_0" in text and "task_1" in text and "wins" in text
    assert ("Try:" in text) is (not passed)
    assert gate.metadata["low"] == comparison.low and gate.metadata["margin"] == margin


def test_beats_champion_refuses_too_few_items_even_when_all_win():
    comparison = compare([1.0] * 5, [0.0] * 5, metric="chrf")
    assert comparison.low == 1.0  # five identical wins: a degenerate interval
    gate = beats_champion(comparison, 0.02, min_items=10)
    assert not gate.passed and "only 5 evaluation items" in gate.description and "eval_set" in gate.description
    assert beats_champion(comparison, 0.02, min_items=5).passed


def test_shuffled_labels_are_refused_with_a_readable_reason():
    """A candidate that learned nothing (its scores are the champion's, shuffled across items)."""
    rng = np.random.default_rng(3)
    champion = (rng.random(80) < 0.6).astype(float)
    candidate = rng.permutation(champion)
    gate = beats_champion(compare(candidate, champion, ["page_generation"] * 80, metric="section_accuracy"), 0.02)
    assert not gate.passed
    assert "below the margin" in gate.description and "label" in gate.description and "epochs" in gate.description


@pytest.mark.parametrize(
    "task_lifts, tolerance, regressed",
    [
        ({"task_0": 0.1, "task_1": 0.1}, 0.0, []),
        ({"task_0": 0.2, "task_1": -0.1}, 0.0, ["task_1"]),
        ({"task_0": 0.2, "task_1": -0.1}, 0.2, []),  # within the tolerance
        ({"task_0": -0.1, "task_1": -0.1}, 0.0, ["task_0", "task_1"]),
        ({"task_0": 0.2, "task_1": -0.005}, 0.0, []),  # looks a little worse, not surely worse
    ],
)
def test_no_task_regresses(task_lifts, tolerance, regressed):
    comparison = _comparison(0.0, task_lifts=task_lifts)
    gate = no_task_regresses(comparison, tolerance)
    assert gate.passed is (not regressed)
    assert gate.metadata["regressed_tasks"] == regressed
    for task in regressed:
        assert task in gate.description and "wholly below the tolerance" in gate.description
    if regressed:
        assert "Try:" in gate.description and "max_task_regression" in gate.description


def test_no_task_regresses_without_tasks_judges_all_items():
    comparison = compare([0.0] * 20, [1.0] * 20)
    gate = no_task_regresses(comparison, 0.0)
    assert not gate.passed and "(all items)" in gate.description


def test_json_validity_floor_names_counts_and_problems():
    ref = '{"type": "cta", "content": {"headline": "Ready?", "button": {"label": "Go", "href": "#c"}}}'
    outputs = [ref] * 45 + ['{"type": "cta"'] * 3 + ['{"type": "cta", "content": {}}'] * 2
    scores = score_json(outputs, [ref] * 50)
    rate = float(np.mean(scores["schema_valid"]))
    gate = json_validity_meets_floor(rate, 0.98, n=scores.n, problems=scores.problems)
    assert not gate.passed
    assert "JSON validity 90.0% (45 of 50 answers parse and match the page schema) is below the floor 98.0%" in gate.description
    assert "not JSON (3)" in gate.description and "schema (2)" in gate.description and "Try:" in gate.description
    assert json_validity_meets_floor(0.98, 0.98).passed
    with pytest.raises(ValueError, match="share"):
        json_validity_meets_floor(1.5, 0.98)


@pytest.mark.parametrize(
    "checks, passed, says",
    [
        ({"training_file.format": True, "anonymized_dataset.residual_pii_zero": True}, True, "all 2 blocking checks"),
        ({"training_file.format": True, "anonymized_dataset.residual_pii_zero": GateResult(False, "3 emails left")},
         False, "anonymized_dataset.residual_pii_zero failed: 3 emails left"),
        ({"training_file.format": None}, False, "training_file.format was never evaluated"),
        ({}, False, "no upstream check results"),
    ],
)
def test_upstream_gates_passed(checks, passed, says):
    gate = upstream_gates_passed(checks)
    assert gate.passed is passed and says in gate.description


def _gates(*failed: str) -> dict[str, GateResult]:
    return {name: GateResult(name not in failed, f"{name} said so") for name in GATE_NAMES}


@pytest.mark.parametrize(
    "failed, canary, champion_is_base, action, share",
    [
        ((), True, False, "promote_challenger", 0.1),
        ((), True, True, "promote_challenger", 0.1),
        ((), False, False, "promote_champion", None),
        (("beats_champion",), True, False, "keep", None),
        (("beats_champion", "json_validity_meets_floor"), False, False, "keep", None),
        (("upstream_gates_passed",), True, True, "base", None),
    ],
)
def test_decide(failed, canary, champion_is_base, action, share):
    decision = decide(_gates(*failed), canary, 0.1, champion_is_base=champion_is_base)
    assert (decision.action, decision.challenger_share) == (action, share)
    assert decision.failed == failed
    for name in failed:
        assert f"[{name}] {name} said so" in decision.reason
    if not failed:
        assert "every gate passed" in decision.reason


def test_decide_refuses_no_gates_and_bad_shares():
    with pytest.raises(ValueError, match="never promoted without its gates"):
        decide({}, True, 0.1)
    with pytest.raises(ValueError, match="canary_share"):
        decide(_gates(), True, 1.0)


def test_run_gates_uses_the_targets_thresholds():
    comparison = _comparison(0.05)
    upstream = {"training_file.format": True}
    assert not run_gates(GateConfig(margin=0.2), comparison=comparison, upstream=upstream)["beats_champion"].passed
    gates = run_gates(GateConfig(margin=0.0), comparison=comparison, upstream=upstream, json_validity=0.96)
    assert set(gates) == set(GATE_NAMES) and all(g.passed for g in gates.values())
    floor = run_gates(GateConfig(json_validity_floor=0.98), comparison=comparison, upstream=upstream, json_validity=0.96)
    assert not floor["json_validity_meets_floor"].passed
    few = run_gates(GateConfig(min_eval_items=500, max_eval_items=500), comparison=comparison, upstream=upstream)
    assert "json_validity_meets_floor" not in few and not few["beats_champion"].passed
