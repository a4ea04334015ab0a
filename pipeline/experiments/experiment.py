"""One look at a target's online experiment: read the step from the log, test, decide, record.

`look(store, target)` is what `online_experiment` and the simulator call; `apply(store, target, look)`
records the decision as a `production_model` history row (advance, promote_champion, rollback, stop)
and rewrites the rollout file, unless the rollout changed since the look (a person's `flywheel
promote` / `rollback` always wins over the experiment).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.experiments.decide import StepDecision, decide
from pipeline.experiments.exposure import ExposureCounts, log_clock, parse_time, step_records, tally_records
from pipeline.experiments.metrics import HIGHER_IS_BETTER
from pipeline.experiments.statistics import Effect, RatioTest, effect, sample_ratio
from pipeline.experiments.tally import VARIANTS, StepTally

#: what each verdict records in the production history
HISTORY_ACTION = {"advance": "advance", "promote": "promote_champion", "rollback": "rollback", "stop": "stop"}


@dataclass
class Look:
    """What one look saw and decided."""

    target: str
    as_of: str | None
    rollout_id: str | None
    share: float
    decision: StepDecision | None
    srm: RatioTest | None = None
    primary: Effect | None = None
    guardrails: list[Effect] = field(default_factory=list)
    counts: ExposureCounts = field(default_factory=ExposureCounts)
    variants: list[dict[str, Any]] = field(default_factory=list)
    daily: list[dict[str, Any]] = field(default_factory=list)
    crossed_users: int = 0
    days_in_step: float = 0.0

    @property
    def verdict(self) -> str:
        return self.decision.verdict if self.decision else "none"

    def summary(self) -> dict[str, Any]:
        def eff(e: Effect | None) -> dict[str, Any] | None:
            if e is None:
                return None
            fin = lambda x: round(x, 6) if math.isfinite(x) else None  # noqa: E731
            return {"metric": e.metric, "champion": fin(e.champion_mean), "challenger": fin(e.challenger_mean),
                    "difference": fin(e.difference), "low": fin(e.low), "high": fin(e.high),
                    "p_value": round(e.p_value, 6), "champion_users": e.champion_users,
                    "challenger_users": e.challenger_users}

        return {
            "target": self.target, "as_of": self.as_of, "rollout_id": self.rollout_id, "share": self.share,
            "decision": self.decision.as_dict() if self.decision else None,
            "srm": None if self.srm is None else {
                "champion_users": self.srm.champion_users, "challenger_users": self.srm.challenger_users,
                "expected_challenger_share": self.srm.expected_challenger_share, "p_value": self.srm.p_value},
            "primary": eff(self.primary), "guardrails": [eff(g) for g in self.guardrails],
            "counts": self.counts.as_dict(), "crossed_users": self.crossed_users,
            "days_in_step": round(self.days_in_step, 3),
        }


def _variant_rows(tally: StepTally, metrics: list[str], alpha: float) -> list[dict[str, Any]]:
    """Per variant: users, interactions and each metric's per-user mean with its (fixed-horizon) t interval."""
    from scipy import stats

    users = tally.users_per_variant()
    rows = []
    for variant in VARIANTS:
        row: dict[str, Any] = {"variant": variant, "users": users[variant], "interactions": tally.interactions[variant]}
        for metric in metrics:
            y, arm = tally.per_user(metric)
            v = y[arm] if variant == "challenger" else y[~arm]
            if len(v) == 0:
                row[metric] = "no data"
                continue
            mean = float(v.mean())
            if len(v) > 1 and float(v.std()) > 0:
                low, high = stats.t.interval(1 - alpha, len(v) - 1, loc=mean, scale=stats.sem(v))
                row[metric] = f"{mean:.4f} [{low:.4f}, {high:.4f}]"
            else:
                row[metric] = f"{mean:.4f}"
        rows.append(row)
    return rows


def analyse(tally: StepTally, counts: ExposureCounts, rollout: Any, target: Any, as_of: str, *,
            test: Callable[..., Effect] = effect) -> Look:
    """Tests and decision over a step's tally (pure: no store).

    `test` is the effect test (savvi's anytime-valid one); the benchmark swaps in a fixed-horizon
    t-test looked at daily to show what peeking does to it.
    """
    from pipeline.serving.routing import BUCKETS, threshold

    online = target.online
    share = float(rollout.challenger_share)
    users = tally.users_per_variant()
    srm = sample_ratio(users["champion"], users["challenger"], threshold(share) / BUCKETS, online.srm_alpha)
    y, arm = tally.per_user(online.primary)
    primary = test(online.primary, y, arm, online.alpha, online.prior_scale)
    guard_alpha = online.alpha / max(1, len(online.guardrails))
    guardrails = []
    for metric in online.guardrails:
        gy, garm = tally.per_user(metric)
        if len(gy):
            guardrails.append(test(metric, gy, garm, guard_alpha, online.prior_scale))
    days = max(0.0, (parse_time(as_of) - parse_time(rollout.updated_at)).total_seconds() / 86_400)
    decision = decide(share=share, steps=tuple(target.gates.canary_steps), srm=srm, primary=primary,
                      guardrails=guardrails, days_in_step=days, online=online)
    assert online.primary in HIGHER_IS_BETTER
    return Look(target.name, as_of, rollout.rollout_id, share, decision, srm, primary, guardrails, counts,
                _variant_rows(tally, [online.primary, *online.guardrails], online.alpha),
                tally.daily_means(online.primary), len(tally.crossed), days)


def look(store: Any, target: Any, *, as_of: str | None = None) -> Look:
    """Read the current step of `target`'s experiment from the store and decide; no challenger: nothing to judge."""
    from pipeline.curation.implicit import ImplicitWindows
    from pipeline.serving import production

    rollout = production.current(store, target)
    as_of = as_of or log_clock(store)
    if rollout is None or rollout.challenger is None or as_of is None:
        share = 0.0 if rollout is None else float(rollout.challenger_share)
        return Look(target.name, as_of, None if rollout is None else rollout.rollout_id, share, None)
    windows = ImplicitWindows.from_scoring(target.scoring)
    tally, counts = tally_records(step_records(store, target, rollout.updated_at, store.opted_out_orgs()),
                                  rollout, windows, as_of, infer=target.scoring.infer_implicit)
    if not counts.add_up:
        raise RuntimeError(f"online_experiment {target.name}: counts do not add up: {counts.as_dict()}")
    return analyse(tally, counts, rollout, target, as_of)


def apply(store: Any, target: Any, result: Look, *, by: str = "online_experiment", at: str | None = None) -> Any:
    """Record the look's decision (advance / promote / rollback / stop) in the history; None when nothing changes."""
    from pipeline.serving import production

    if result.decision is None or result.decision.verdict not in HISTORY_ACTION:
        return None
    evaluation = {"online_experiment": result.summary()}
    return production.experiment_step(
        store, target, HISTORY_ACTION[result.decision.verdict], expect_rollout_id=str(result.rollout_id),
        share=result.decision.next_share, by=by, reason=result.decision.reason, evaluation=evaluation, at=at,
    )

