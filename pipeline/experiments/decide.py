"""What the canary does next, from one step's tests: stop, roll back, continue, advance or promote.

In this order, at every look (the tests are anytime-valid, so looking daily and acting on the first
significant look keeps their error rates):

1. `stop` — the users per variant do not match the configured share (sample-ratio mismatch at
   `online.srm_alpha`): the assignment is broken, nothing measured can be trusted, the challenger is
   taken out of traffic until someone fixes the routing and promotes it again.
2. `rollback` — the primary metric is significantly worse (its interval lies below 0 at `alpha`), or a
   guardrail is significantly worse (its interval lies above 0 at `alpha / number of guardrails`,
   Bonferroni, so the chance of any false rollback stays at `alpha`). Harm rolls back at once, before
   the minimum sample: an anytime-valid test may stop early.
3. `continue` — the step is younger than `online.min_days_per_step`, or a variant has fewer than
   `online.min_users_per_variant` users.
4. `advance` — the next step is below 100%: the guardrails and the primary showed no harm over the
   minimum sample; the challenger's share rises to the next of `gates.canary_steps`.
5. `promote` — the next step is 100%: only when the primary metric is significantly better (interval
   above 0 at `alpha`); else `continue`. A challenger with no effect stays at its share until a
   person decides; the chance it is ever promoted is at most alpha / 2 (one side of a two-sided test).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from pipeline.experiments.statistics import Effect, RatioTest

Verdict = Literal["stop", "rollback", "continue", "advance", "promote"]


@dataclass(frozen=True)
class StepDecision:
    """The decision of one look and why; `next_share` is the challenger's share after it (1.0: champion)."""

    verdict: Verdict
    reason: str
    share: float
    next_share: float
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reason": self.reason, "share": self.share, "next_share": self.next_share,
                **self.details}


def next_step(share: float, steps: tuple[float, ...]) -> float:
    """The first canary step above the current share (1.0 when the share is past every step)."""
    for step in steps:
        if step > share + 1e-9:
            return float(step)
    return 1.0


def decide(
    *,
    share: float,
    steps: tuple[float, ...],
    srm: RatioTest,
    primary: Effect,
    guardrails: list[Effect],
    days_in_step: float,
    online: Any,
) -> StepDecision:
    """One look's decision (see the module docstring); `online` is the target's `OnlineConfig`."""
    upcoming = next_step(share, steps)
    users = min(srm.champion_users, srm.challenger_users)
    base = {"users_per_variant_min": users, "days_in_step": round(days_in_step, 2)}
    if srm.p_value <= online.srm_alpha:
        return StepDecision("stop", (
            f"sample ratio mismatch: {srm.challenger_users} challenger vs {srm.champion_users} champion users "
            f"({srm.observed_challenger_share:.1%} challenger) where the rollout routes {srm.expected_challenger_share:.1%}; "
            f"p = {srm.p_value:.2g} ≤ {online.srm_alpha:g}. The assignment is broken (users logged under the wrong "
            "variant, a cache that ignores the rollout, bots in one arm): the numbers cannot be trusted, so the "
            "challenger is taken out of traffic. Fix the routing, then `flywheel promote --share` it again."
        ), share, 0.0, base)
    if primary.high < 0:
        return StepDecision("rollback", f"the primary metric is significantly worse: {primary.describe()}", share, 0.0,
                            base)
    guard_alpha = online.alpha / max(1, len(guardrails))
    worse = [g for g in guardrails if g.low > 0]
    if worse:
        return StepDecision("rollback", "a guardrail is significantly worse (each tested at "
                            f"{guard_alpha:.3g}, Bonferroni over {len(guardrails)}): "
                            + "; ".join(g.describe() for g in worse), share, 0.0, base)
    short = []
    if days_in_step < online.min_days_per_step:
        short.append(f"{days_in_step:.1f} of {online.min_days_per_step:g} days")
    if users < online.min_users_per_variant:
        short.append(f"{users} of {online.min_users_per_variant} users in the smaller variant")
    if short:
        return StepDecision("continue", f"the step at {share:.0%} needs its minimum sample: {', '.join(short)}. "
                            f"So far {primary.describe()}", share, share, base)
    if upcoming < 1.0:
        return StepDecision("advance", (
            f"no harm over the minimum sample at {share:.0%} ({days_in_step:.1f} days, ≥ {users} users per variant): "
            f"no guardrail and not the primary is significantly worse. {primary.describe()}"
        ), share, upcoming, base)
    if primary.low > 0:
        return StepDecision("promote", f"the primary metric is significantly better at {share:.0%}: {primary.describe()}",
                            share, 1.0, base)
    verdict = "better" if math.isfinite(primary.difference) and primary.difference > 0 else "not better"
    return StepDecision("continue", (
        f"at {share:.0%} the challenger is not yet shown better ({verdict} so far): {primary.describe()}. "
        "It stays at this share; a person may `flywheel promote` or `flywheel rollback` at any time"
    ), share, share, base)
