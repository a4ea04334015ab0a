"""The paired bootstrap: honest coverage, identical models around 0, tiny samples wide, deterministic."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from pipeline.evaluation.stats import Comparison, compare


def _paired(rng: np.random.Generator, n: int, lift: float) -> tuple[np.ndarray, np.ndarray]:
    """0/1 item scores with an item difficulty both models share (the point of pairing) and a true lift."""
    difficulty = rng.uniform(0.2, 0.9, n)
    champion = (rng.random(n) < difficulty).astype(float)
    candidate = (rng.random(n) < np.clip(difficulty + lift, 0, 1)).astype(float)
    return candidate, champion


@pytest.mark.parametrize("n_items", [30, 120])
def test_interval_covers_the_true_difference_at_about_the_nominal_rate(n_items):
    """Simulated evaluations with a known mean difference (skewed per-item differences, mean 0.05):
    about 95% of the 95% intervals contain it (binomial test against 0.95)."""
    rng = np.random.default_rng(20261202 + n_items)
    runs, covered = 300, 0
    for run in range(runs):
        champion = rng.beta(2, 2, n_items)
        candidate = champion + rng.gamma(1.0, 0.1, n_items) - 0.05  # E[difference] = 0.1 - 0.05
        result = compare(candidate, champion, seed=run, n_resamples=999)
        covered += result.low <= 0.05 <= result.high
    assert binomtest(covered, runs, 0.95).pvalue > 0.001, covered / runs
    assert 0.90 <= covered / runs <= 0.99


def test_coverage_on_binary_metrics_with_shared_difficulty():
    rng = np.random.default_rng(7)
    runs, n = 300, 80
    covered = 0
    lift = 0.08
    for run in range(runs):
        candidate, champion = _paired(rng, n, lift)
        # the true mean difference of this simulation's process, given the drawn difficulties, is not
        # simply `lift` (clipping); estimate it from a large sample of the same process
        result = compare(candidate, champion, seed=run, n_resamples=999)
        covered += result.low <= _true_lift(lift) <= result.high
    assert binomtest(covered, runs, 0.95).pvalue > 0.001, covered / runs


def _true_lift(lift: float) -> float:
    d = np.linspace(0.2, 0.9, 100_001)
    return float(np.mean(np.clip(d + lift, 0, 1) - d))


def test_identical_models_give_an_interval_around_zero():
    values = np.random.default_rng(1).random(50)
    result = compare(values, values, seed=3)
    assert (result.difference, result.low, result.high) == (0.0, 0.0, 0.0)
    assert (result.wins, result.losses, result.ties) == (0, 0, 50)
    assert result.method == "degenerate"
    # two equally good models that differ item by item: an interval that straddles 0
    a, b = _paired(np.random.default_rng(2), 200, 0.0)
    result = compare(a, b, seed=3)
    assert result.low < 0 < result.high
    assert result.method == "BCa"


def test_a_tiny_sample_gives_a_wide_interval():
    rng = np.random.default_rng(4)
    small = compare(*_paired(rng, 8, 0.1), seed=0)
    large = compare(*_paired(rng, 800, 0.1), seed=0)
    assert (small.high - small.low) > 4 * (large.high - large.low)
    one = compare([1.0], [0.0])
    assert (one.low, one.high, one.method) == (-math.inf, math.inf, "too_few")
    assert one.as_dict()["low"] is None and "-inf" in one.describe()


def test_deterministic_for_a_seed_and_seed_matters():
    a, b = _paired(np.random.default_rng(5), 60, 0.1)
    tasks = ["x" if i % 3 else "y" for i in range(60)]
    first = compare(a, b, tasks, seed=11, metric="section_accuracy")
    again = compare(a, b, tasks, seed=11, metric="section_accuracy")
    other = compare(a, b, tasks, seed=12, metric="section_accuracy")
    assert first == again and first.as_dict() == again.as_dict()
    assert (first.low, first.high) != (other.low, other.high)


def test_pairing_narrows_the_interval():
    """Shared item difficulty cancels in a paired comparison: narrower than two unpaired intervals."""
    from scipy.stats import bootstrap

    a, b = _paired(np.random.default_rng(6), 200, 0.1)
    paired = compare(a, b, seed=0)
    rng = np.random.default_rng(0)
    unpaired = bootstrap((a, b), lambda x, y, axis=-1: x.mean(axis) - y.mean(axis), rng=rng, n_resamples=2000)
    ci = unpaired.confidence_interval
    assert paired.high - paired.low < ci.high - ci.low


def test_per_task_intervals_and_counts():
    candidate = [1, 1, 1, 0, 1, 1, 0, 0, 0, 1, 0, 0]
    champion = [0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 1, 1]
    tasks = ["a"] * 6 + ["b"] * 6
    result = compare(candidate, champion, tasks, seed=0, n_resamples=500)
    assert (result.wins, result.losses, result.ties) == (3, 4, 5)
    assert set(result.per_task) == {"a", "b"}
    a, b = result.per_task["a"], result.per_task["b"]
    assert (a.n, a.wins, a.losses, a.ties) == (6, 3, 0, 3) and a.difference == pytest.approx(0.5)
    assert (b.n, b.wins, b.losses, b.ties) == (6, 0, 4, 2) and b.difference == pytest.approx(-4 / 6)
    assert b.high < 0 < a.high
    assert result.difference == pytest.approx((3 - 4) / 12)
    # a task's interval does not depend on the other tasks
    alone = compare(candidate[:6], champion[:6], seed=0, n_resamples=500)
    assert (alone.low, alone.high) == (a.low, a.high)
    assert set(result.as_dict()["per_task"]) == {"a", "b"}


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (([1.0, 0.0], [1.0]), {}, "one value per item"),
        (([], []), {}, "no evaluation items"),
        (([1.0, math.nan], [1.0, 0.0]), {}, "items 1 have NaN"),
        (([1.0, 0.0], [1.0, 0.0], ["a"]), {}, "task labels"),
        (([1.0, 0.0], [1.0, 0.0]), {"confidence": 1.5}, "confidence"),
    ],
)
def test_bad_input_is_refused(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compare(*args, **kwargs)


def test_comparison_is_frozen():
    result = compare([1.0, 0.0], [0.0, 0.0])
    assert isinstance(result, Comparison)
    with pytest.raises(AttributeError):
        result.low = 0.0  # type: ignore[misc]
