"""The experiment's tests, from savvi (anytime-valid inference, Lindon et al.): valid at every look.

A fixed-horizon test (a t-test at the end of a planned sample) loses its error rate when people
look every day and stop as soon as it is significant. The tests here are anytime-valid: the chance
that the p-value *ever* drops below alpha under the null, however often it is looked at, is at
most alpha, and the confidence sequences cover the true effect at every look at once.

- `sample_ratio`: savvi's `Multinomial` test (Lindon & Malek 2022) of the users each variant got
  against the shares the rollout configured; a broken assignment shows as a tiny p-value.
- `effect`: savvi's `LinearRegression` coefficient t-test (Lindon, Ham, Tingley & Bojinov 2024) of
  `y = b0 + b1 * challenger` over users, `y` the user's average of the metric: b1 is the challenger's
  difference in the per-user mean, with its anytime-valid interval and p-value. The sufficient
  statistics (X'X, X'y, y'y) are computed with numpy in one pass and given to savvi's object,
  which is what its recursive least squares arrives at user by user (checked in the tests).

savvi (and cvxpy, matplotlib under it) is imported inside these functions, never at load time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RatioTest:
    """Users per variant against the configured split."""

    champion_users: int
    challenger_users: int
    expected_challenger_share: float
    p_value: float

    @property
    def observed_challenger_share(self) -> float:
        total = self.champion_users + self.challenger_users
        return self.challenger_users / total if total else float("nan")


@dataclass(frozen=True)
class Effect:
    """Challenger − champion in the per-user mean of one metric, with its anytime-valid interval."""

    metric: str
    champion_mean: float
    challenger_mean: float
    difference: float
    low: float
    high: float
    p_value: float
    champion_users: int
    challenger_users: int
    alpha: float

    @property
    def relative(self) -> float:
        return self.difference / self.champion_mean if self.champion_mean else float("nan")

    @property
    def decided(self) -> bool:
        return self.low > 0 or self.high < 0

    def describe(self) -> str:
        def f(x: float) -> str:
            return f"{x:+.4f}" if math.isfinite(x) else ("+inf" if x > 0 else "-inf")

        rel = f" ({self.relative:+.1%})" if math.isfinite(self.relative) else ""
        return (f"{self.metric}: challenger {self.challenger_mean:.4f} vs champion {self.champion_mean:.4f}, "
                f"difference {f(self.difference)}{rel}, {1 - self.alpha:.0%} anytime-valid interval "
                f"[{f(self.low)}, {f(self.high)}], p = {self.p_value:.3g}")


def sample_ratio(champion_users: int, challenger_users: int, challenger_share: float, alpha: float) -> RatioTest:
    """savvi's sequential sample-ratio-mismatch test of the users per variant against `challenger_share`."""
    from savvi.multinomial import Multinomial

    if not 0 < challenger_share < 1:
        raise ValueError(f"challenger_share must be in (0, 1), not {challenger_share}")
    theta = np.array([1.0 - challenger_share, challenger_share])
    test = Multinomial(alpha, theta / theta.sum() if theta.sum() != 1 else theta)
    counts = np.array([champion_users, challenger_users], dtype=np.int64)
    if counts.sum() > 0:
        test.update(counts)
    p = float(min(1.0, test.calculate_p_value()))
    return RatioTest(int(champion_users), int(challenger_users), float(challenger_share), p)


def regression(y: np.ndarray, challenger: np.ndarray, alpha: float, prior_scale: float):
    """savvi's `LinearRegression` of y on [1, challenger], filled with the batch sufficient statistics."""
    from savvi.linear_regression import LinearRegression

    x = np.column_stack([np.ones(len(y)), challenger.astype(float)])
    model = LinearRegression(alpha, 2, phi=prior_scale)
    model.n = len(y)
    model.yty = float(y @ y)
    model.Xty = x.T @ y
    xtx = x.T @ x + np.eye(2) * 1e-6  # savvi's recursive least squares starts from covariance 1e6 * I
    model.covariance = np.linalg.inv(xtx)
    model.beta = model.covariance @ model.Xty
    return model


def effect(metric: str, y: np.ndarray, challenger: np.ndarray, alpha: float, prior_scale: float = 1.0) -> Effect:
    """Challenger − champion in the per-user mean of `y`, anytime-valid (see the module docstring).

    `y` has one value per user, `challenger` is 1 for users the challenger served, 0 otherwise.
    With fewer than two users per variant, or no variation at all, the interval is infinite.
    """
    y = np.asarray(y, dtype=float)
    challenger = np.asarray(challenger, dtype=bool)
    n1, n0 = int(challenger.sum()), int((~challenger).sum())
    m1 = float(y[challenger].mean()) if n1 else float("nan")
    m0 = float(y[~challenger].mean()) if n0 else float("nan")
    diff = m1 - m0 if n0 and n1 else float("nan")
    if n0 < 2 or n1 < 2 or float(np.var(y)) == 0.0:
        return Effect(metric, m0, m1, diff, -math.inf, math.inf, 1.0, n0, n1, alpha)
    with np.errstate(all="ignore"):
        model = regression(y, challenger, alpha, prior_scale)
        if model.nu() <= 0 or model.sse() <= 0:
            return Effect(metric, m0, m1, diff, -math.inf, math.inf, 1.0, n0, n1, alpha)
        low, high = (float(v) for v in model.calculate_conf_int()[1])
        p = float(np.asarray(model.calculate_p_value())[1])
    if not math.isfinite(low):
        low = -math.inf
    if not math.isfinite(high):
        high = math.inf
    return Effect(metric, m0, m1, diff, low, high, min(1.0, p) if math.isfinite(p) else 1.0, n0, n1, alpha)
