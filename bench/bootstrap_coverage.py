"""How often the paired bootstrap interval of `compare` covers the true difference, and what it costs.

    .venv/bin/python bench/bootstrap_coverage.py --runs 1000

Simulated evaluations with a known mean difference: champion scores drawn from Beta(2, 2), the
candidate = champion + Gamma(1, 0.1) − 0.05 (skewed per-item differences, true mean 0.05), and,
for 0/1 metrics, items of a shared difficulty in 0.2..0.9 with a lift of 0.08. Prints, per item
count, the share of 95% intervals that contain the truth (nominal 0.95), the mean interval width
and the time per `compare` call.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pipeline.evaluation.stats import compare


def _continuous(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, float]:
    champion = rng.beta(2, 2, n)
    return champion + rng.gamma(1.0, 0.1, n) - 0.05, champion, 0.05


def _binary(rng: np.random.Generator, n: int, lift: float = 0.08) -> tuple[np.ndarray, np.ndarray, float]:
    difficulty = rng.uniform(0.2, 0.9, n)
    champion = (rng.random(n) < difficulty).astype(float)
    candidate = (rng.random(n) < np.clip(difficulty + lift, 0, 1)).astype(float)
    grid = np.linspace(0.2, 0.9, 100_001)
    return candidate, champion, float(np.mean(np.clip(grid + lift, 0, 1) - grid))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--items", type=int, nargs="+", default=[10, 30, 120, 400])
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    compare([0.0, 1.0], [1.0, 0.0])  # imports out of the timing
    print(f"{'data':<11}{'items':>6}{'coverage':>10}{'width':>8}{'ms/call':>9}")
    for name, simulate in (("continuous", _continuous), ("binary", _binary)):
        for n in args.items:
            rng = np.random.default_rng(n)
            covered, widths, seconds = 0, [], 0.0
            for run in range(args.runs):
                candidate, champion, truth = simulate(rng, n)
                start = time.perf_counter()
                result = compare(candidate, champion, seed=run, n_resamples=args.resamples)
                seconds += time.perf_counter() - start
                covered += result.low <= truth <= result.high
                widths.append(result.high - result.low)
            print(f"{name:<11}{n:>6}{covered / args.runs:>10.3f}{np.mean(widths):>8.3f}{1000 * seconds / args.runs:>9.1f}")


if __name__ == "__main__":
    main()
