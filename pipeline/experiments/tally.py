"""Per-user totals of one canary step: what the experiment's tests are computed from.

Users are randomised, so users are the unit: each user's interactions are summed per metric and
the tests compare the variants' per-user averages. A user the log shows in both variants of one
step (a product that logged the wrong arm, a share that shrank) is set aside and counted, never
silently mixed in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from pipeline.experiments.metrics import METRICS

VARIANTS = ("champion", "challenger")
_INDEX = {m: i for i, m in enumerate(METRICS)}


@dataclass
class _User:
    variant: str
    interactions: int = 0
    sums: np.ndarray = field(default_factory=lambda: np.zeros(len(METRICS)))
    counts: np.ndarray = field(default_factory=lambda: np.zeros(len(METRICS)))


@dataclass
class StepTally:
    """Running totals of one step (one rollout id); `add` one attributed interaction at a time."""

    users: dict[str, _User] = field(default_factory=dict)
    crossed: set[str] = field(default_factory=set)
    interactions: Counter = field(default_factory=Counter)
    #: (day, variant) -> [sum, count] of every metric, for the metric-over-time plot
    daily: dict[tuple[int, str], np.ndarray] = field(default_factory=dict)
    _cache: tuple | None = field(default=None, repr=False)

    def add(self, user_id: str, variant: str, values: dict[str, float | None], day: int = 0) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
        self.interactions[variant] += 1
        self._cache = None
        user = self.users.get(user_id)
        if user is None:
            user = self.users[user_id] = _User(variant)
        elif user.variant != variant:
            self.crossed.add(user_id)
        user.interactions += 1
        row = self.daily.setdefault((day, variant), np.zeros((2, len(METRICS))))
        for metric, value in values.items():
            if value is None:
                continue
            i = _INDEX[metric]
            user.sums[i] += value
            user.counts[i] += 1
            row[0, i] += value
            row[1, i] += 1

    def users_per_variant(self) -> dict[str, int]:
        counts = Counter(u.variant for uid, u in self.users.items() if uid not in self.crossed)
        return {v: counts.get(v, 0) for v in VARIANTS}

    def per_user(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """(each user's mean of `metric`, 1 if the challenger served them) over users with a value."""
        if self._cache is None:
            kept = [u for uid, u in self.users.items() if uid not in self.crossed]
            sums = np.array([u.sums for u in kept]).reshape(len(kept), len(METRICS))
            counts = np.array([u.counts for u in kept]).reshape(len(kept), len(METRICS))
            arms = np.array([u.variant == "challenger" for u in kept], dtype=bool)
            self._cache = (sums, counts, arms)
        sums, counts, arms = self._cache
        i = _INDEX[metric]
        has = counts[:, i] > 0
        return sums[has, i] / counts[has, i], arms[has]

    def daily_means(self, metric: str) -> list[dict[str, object]]:
        """Per day of the step: each variant's mean of `metric` that day and cumulatively (None without data)."""
        i = _INDEX[metric]
        days = sorted({d for d, _ in self.daily})
        out, cum = [], {v: np.zeros(2) for v in VARIANTS}
        for day in days:
            row: dict[str, object] = {"day": day}
            for v in VARIANTS:
                got = self.daily.get((day, v))
                s, c = (got[0, i], got[1, i]) if got is not None else (0.0, 0.0)
                cum[v] += (s, c)
                row[v] = round(s / c, 4) if c else None
                row[f"{v}_cumulative"] = round(cum[v][0] / cum[v][1], 4) if cum[v][1] else None
            out.append(row)
        return out
