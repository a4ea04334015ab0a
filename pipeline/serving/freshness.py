"""How old the model in service is, and whether it is stale: what `model_in_service_fresh` judges.

The model in service is the target's **champion** in `fw_rollouts` (a challenger on a canary serves
only its share of users and does not reset the clock: it is named, so on-call can advance it). Its
age runs from the **first** time it became the champion of the target, read from the append-only
`fw_production_history` (a model put back by a rollback keeps its old date: it is still an old model).

**The base model is judged like any other model**: its age runs from the first history row in which
it served the target (the `base` row `production_model` writes on its first decision). A target
still on its base model after `freshness_days` is a flywheel that has not turned — nothing trained
for it beat the base model, or nothing was trained — and that is worth one alert; a target meant to
stay on its base model raises its `freshness_days`. A target nothing was ever recorded for (no
rollout yet) is not judged: `state` is `unknown`, and the check passes saying so.

Pure: the clock (`now`) and the rows come in as arguments; `freshness` reads them from the store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.serving.rollout import Rollout

__all__ = ["Freshness", "FreshnessRequest", "assess", "freshness", "parse_time", "plan_requests", "serving_since"]

STALE, FRESH, UNKNOWN = "stale", "fresh", "unknown"
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class Freshness:
    """The freshness of one target's model in service at `now`."""

    target: str
    state: str  # stale | fresh | unknown
    window_days: float
    model: str | None = None
    is_base: bool = False
    since: str | None = None  # when the model first became the target's champion (RFC 3339)
    age_days: float | None = None
    challenger: str | None = None
    challenger_share: float = 0.0

    @property
    def stale(self) -> bool:
        return self.state == STALE

    def describe(self) -> str:
        """One sentence for the check's result: what serves, since when, against which window."""
        if self.state == UNKNOWN:
            return (f"{self.target}: no model was recorded serving yet (production_model never decided for it): "
                    "freshness is not judged until it does.")
        what = "its base model" if self.is_base else self.model
        head = (f"{self.target} has served {what} since {self.since}: {self.age_days:.1f} days, "
                f"window {self.window_days:g} days")
        if not self.stale:
            return f"{head}."
        why = ("no fine-tuned model has beaten the base model (or none was trained)" if self.is_base
               else "nothing newer was promoted")
        canary = (f" A challenger ({self.challenger}) serves {self.challenger_share:.0%}: advance it or roll it back."
                  if self.challenger else "")
        return f"{head}: stale, {why}.{canary}"


def parse_time(text: Any, where: str = "time") -> datetime:
    """An RFC 3339 time from the history (`…Z` or with an offset) as an aware UTC datetime."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"{where}: expected an RFC 3339 time, got {text!r}")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not an RFC 3339 time") from None
    if value.tzinfo is None:
        raise ValueError(f"{where}: {text!r} has no time zone (the history is written in UTC with a 'Z')")
    return value.astimezone(UTC)


def serving_since(champion: dict[str, Any], history: list[dict[str, Any]]) -> str | None:
    """`at` of the earliest history row whose champion is `champion` (rows in any order); None if none."""
    times = [row["at"] for row in history if row.get("champion") == champion]
    if not times:
        return None
    return min(times, key=lambda at: parse_time(at, f"history row at {at!r}"))


def assess(target: str, window_days: float, rollout: Rollout | None, history: list[dict[str, Any]],
           now: datetime) -> Freshness:
    """The freshness of `target`'s champion at `now` (aware), from its rollout and its history rows."""
    if window_days <= 0:
        raise ValueError(f"{target}: freshness_days must be > 0, not {window_days}")
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime (UTC)")
    if rollout is None:
        return Freshness(target, UNKNOWN, window_days)
    champion = rollout.champion.as_dict()
    since = serving_since(champion, history) or rollout.updated_at  # a table written before its history
    age_days = max(0.0, (now - parse_time(since, f"{target}: serving since")).total_seconds() / SECONDS_PER_DAY)
    return Freshness(
        target=target,
        state=STALE if age_days > window_days else FRESH,
        window_days=window_days,
        model=rollout.champion.model,
        is_base=rollout.champion.is_base,
        since=since,
        age_days=round(age_days, 3),
        challenger=rollout.challenger.model if rollout.challenger else None,
        challenger_share=rollout.challenger_share,
    )


def freshness(store: Any, target: Any, now: datetime | None = None) -> Freshness:
    """`assess` for `target` (a `Target`) with its rollout and history from the store, at `now` (default: now)."""
    from pipeline.serving import production

    return assess(target.name, float(target.freshness_days), production.current(store, target.name),
                  production.history(store, target.name), now or datetime.now(UTC))


@dataclass(frozen=True)
class FreshnessRequest:
    """A run that evaluates `model_in_service_fresh` for `target`, whose state became `state`."""

    target: str
    state: str
    run_key: str


def plan_requests(
    states: Mapping[str, Freshness],
    cursor: Mapping[str, Any] | None,
    recorded: Callable[[str], bool | None],
) -> tuple[list[FreshnessRequest], dict[str, Any]]:
    """Which targets need the check evaluated now, and the next cursor: one run per change of state, never two.

    The cursor keeps, per target, the last state a run was requested (or found recorded) for and a
    counter that makes each run key unique. A target whose state is what the cursor says asks for
    nothing. A changed one asks for a run, unless the latest recorded evaluation (`recorded(target)`:
    its `passed`, or None when there is none) already says the same (a `production_model`
    materialization evaluated the check itself); an `unknown` target (nothing serves yet) is only noted.
    Targets that are no longer partitions leave the cursor.
    """
    previous = dict((cursor or {}).get("targets") or {})
    requests: list[FreshnessRequest] = []
    nxt: dict[str, Any] = {}
    for target in sorted(states):
        state = states[target].state
        before = previous.get(target) or {}
        count = int(before.get("n", 0))
        if before.get("state") != state and state != UNKNOWN and recorded(target) != (state == FRESH):
            count += 1
            requests.append(FreshnessRequest(target, state, f"freshness:{target}:{count}:{state}"))
        nxt[target] = {"state": state, "n": count}
    return requests, {"targets": nxt}
