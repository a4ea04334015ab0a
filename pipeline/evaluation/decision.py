"""The blocking promotion gates as pure functions, and the decision they lead to.

Each gate returns the project's one `GateResult`; its description names the metric, the
difference with its interval, the tasks concerned and what to try. `evaluated_model`'s asset
checks wrap them (`pipeline/defs/gate_results.check_result`); `decide` turns the results into
what `production_model` records. Thresholds come from the target's `gates` (`GateConfig`).

| gate                        | passes when                                                              |
|-----------------------------|---------------------------------------------------------------------------|
| `beats_champion`            | n ≥ min_eval_items and the interval's lower bound ≥ margin                |
| `no_task_regresses`         | no task's interval lies wholly below −max_task_regression                |
| `json_validity_meets_floor` | the share of answers that parse and match the schema ≥ json_validity_floor |
| `upstream_gates_passed`     | every blocking check of the candidate's dataset version passed           |
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.core.gates import GateResult
from pipeline.core.targets import DEFAULT_MIN_EVAL_ITEMS, GateConfig
from pipeline.evaluation.stats import Comparison

GATE_NAMES = ("beats_champion", "no_task_regresses", "json_validity_meets_floor", "upstream_gates_passed")
Action = Literal["promote_challenger", "promote_champion", "keep", "base"]

_TRY_MODEL = (
    "Try: more evaluation items (gates.max_eval_items, or a frozen gates.eval_set) to narrow the interval; "
    "more training data or more epochs/steps; and check the labels' quality (noisy or shuffled labels teach nothing)."
)


def _fmt(value: float) -> str:
    return f"{value:+.3f}" if math.isfinite(value) else ("-inf" if value < 0 else "+inf")


def _tasks_line(comparison: Comparison, only: Sequence[str] | None = None) -> str:
    names = [t for t in comparison.per_task if only is None or t in only]
    return "; ".join(f"{t} {comparison.per_task[t].describe()}" for t in names)


def beats_champion(comparison: Comparison, margin: float, *, min_items: int = DEFAULT_MIN_EVAL_ITEMS) -> GateResult:
    """The candidate is better than the champion by at least `margin`, with the uncertainty accounted for.

    Passes when the evaluation has at least `min_items` items and the lower bound of the paired
    bootstrap interval of candidate − champion is at or above `margin`.
    """
    c = comparison
    head = f"{c.metric}: candidate − champion = {c.describe()}"
    meta: dict[str, Any] = {
        "metric": c.metric, "difference": c.difference, "low": c.low if math.isfinite(c.low) else None,
        "high": c.high if math.isfinite(c.high) else None, "margin": margin, "n": c.n, "min_items": min_items,
        "wins": c.wins, "losses": c.losses, "ties": c.ties, "candidate_mean": c.candidate_mean,
        "champion_mean": c.champion_mean,
    }
    tasks = f" Per task: {_tasks_line(c)}." if c.per_task else ""
    if c.n < min_items:
        return GateResult(False, (
            f"{head}: only {c.n} evaluation items, fewer than the {min_items} needed to judge a model "
            f"(gates.min_eval_items).{tasks} Try: more held-out data (more examples, a larger "
            "training_file.validation_share) or a frozen gates.eval_set."
        ), meta)
    if c.low >= margin:
        return GateResult(True, f"{head}; the lower bound {_fmt(c.low)} is at or above the margin {margin:+.3f}.{tasks}", meta)
    verdict = (
        "the candidate is worse than the champion" if c.high < 0
        else "the candidate is not shown to be better by the margin (it may be luck)"
    )
    return GateResult(False, (
        f"{head}; the lower bound {_fmt(c.low)} is below the margin {margin:+.3f}: {verdict}.{tasks} {_TRY_MODEL}"
    ), meta)


def no_task_regresses(comparison: Comparison, tolerance: float) -> GateResult:
    """No task is worse for the candidate beyond `tolerance`, with the uncertainty accounted for.

    A task regresses when its whole interval lies below −tolerance (its upper bound < −tolerance):
    a task that only looks worse by chance does not block, one that is surely worse does. Without
    per-task results the overall comparison is judged as one task.
    """
    per_task = dict(comparison.per_task) or {"(all items)": comparison}
    regressed = [t for t, c in per_task.items() if c.high < -tolerance]
    meta: dict[str, Any] = {
        "metric": comparison.metric, "tolerance": tolerance, "regressed_tasks": regressed,
        "per_task": {t: {"difference": c.difference, "low": c.low if math.isfinite(c.low) else None,
                         "high": c.high if math.isfinite(c.high) else None, "n": c.n} for t, c in per_task.items()},
    }
    lines = "; ".join(f"{t} {per_task[t].describe()}" for t in (regressed or list(per_task)))
    if not regressed:
        return GateResult(True, (
            f"{comparison.metric}: no task regresses beyond −{tolerance:.3f} (candidate − champion per task: {lines})."
        ), meta)
    return GateResult(False, (
        f"{comparison.metric} regresses on {len(regressed)} of {len(per_task)} tasks ({', '.join(regressed)}): "
        f"candidate − champion {lines}; each interval lies wholly below the tolerance −{tolerance:.3f}. "
        "Try: more training examples of these tasks (or check their share after curation), check these tasks' "
        "labels, more epochs/steps; or raise gates.max_task_regression if the trade is acceptable."
    ), meta)


def json_validity_meets_floor(
    rate: float, floor: float, *, n: int | None = None, problems: Sequence[str | None] | None = None
) -> GateResult:
    """The share of answers that parse and match the page schema is at or above `floor`.

    `n` and `problems` (from `ItemScores.problems`) make the description say how many items and
    what went wrong most often.
    """
    if not 0 <= rate <= 1 or math.isnan(rate):
        raise ValueError(f"a validity rate is a share in 0..1, not {rate}")
    count = f" ({round(rate * n)} of {n} answers parse and match the page schema)" if n else ""
    kinds = Counter(p.split(":", 1)[0] for p in (problems or ()) if p and p.startswith(("not JSON", "schema")))
    examples = [p for p in (problems or ()) if p and p.startswith(("not JSON", "schema"))][:3]
    meta: dict[str, Any] = {"json_validity": rate, "floor": floor, "n": n, "problems": dict(kinds.most_common())}
    if rate >= floor:
        return GateResult(True, f"JSON validity {rate:.1%}{count} is at or above the floor {floor:.1%}.", meta)
    detail = ""
    if kinds:
        detail = " Problems: " + ", ".join(f"{k} ({v})" for k, v in kinds.most_common()) + "; e.g. " + " | ".join(examples) + "."
    return GateResult(False, (
        f"JSON validity {rate:.1%}{count} is below the floor {floor:.1%} (gates.json_validity_floor), "
        f"{floor - rate:.1%} short.{detail} Try: more epochs/steps so the model learns the format, more JSON "
        "examples in the training data, a larger cap on new tokens if answers are cut off, and check that the "
        "accepted answers themselves parse."
    ), meta)


def upstream_gates_passed(check_results: Mapping[str, GateResult | bool | None]) -> GateResult:
    """Every blocking check of the candidate's dataset version passed (`None`: it was never evaluated).

    Keys name the checks (`"training_file.training_file_format"`); values are the checks' own
    results, or just whether they passed. An empty mapping fails: no evidence is not a pass.
    """
    if not check_results:
        return GateResult(False, (
            "no upstream check results were found for the candidate's dataset version: it cannot be shown to "
            "have passed its data gates. Re-materialize training_file (with its checks) for this target."
        ), {"checks": {}})
    status = {name: (r.passed if isinstance(r, GateResult) else r) for name, r in check_results.items()}
    failed = [name for name, ok in status.items() if ok is False]
    missing = [name for name, ok in status.items() if ok is None]
    meta = {"checks": status, "failed": failed, "never_evaluated": missing}
    if not failed and not missing:
        return GateResult(True, f"all {len(status)} blocking checks of the dataset version passed: {', '.join(status)}.", meta)
    parts = []
    for name in failed:
        result = check_results[name]
        own = f": {result.description}" if isinstance(result, GateResult) and result.description else ""
        parts.append(f"{name} failed{own}")
    parts += [f"{name} was never evaluated on this version" for name in missing]
    return GateResult(False, (
        f"{len(failed) + len(missing)} of {len(status)} upstream blocking checks did not pass: " + "; ".join(parts)
        + ". A dataset version that failed a gate is never promoted. Try: fix the data as the failing check says "
        "and re-materialize from that asset with its checks; then train and evaluate the new version."
    ), meta)


def run_gates(
    config: GateConfig,
    *,
    comparison: Comparison,
    upstream: Mapping[str, GateResult | bool | None],
    json_validity: float | None = None,
    json_n: int | None = None,
    json_problems: Sequence[str | None] | None = None,
) -> dict[str, GateResult]:
    """Every gate that applies, by name, with the thresholds of a target's `gates` (`GateConfig`).

    `json_validity` is given for json targets only; without it that gate does not apply.
    """
    gates = {
        "upstream_gates_passed": upstream_gates_passed(upstream),
        "beats_champion": beats_champion(comparison, config.margin, min_items=config.min_eval_items),
        "no_task_regresses": no_task_regresses(comparison, config.max_task_regression),
    }
    if json_validity is not None:
        gates["json_validity_meets_floor"] = json_validity_meets_floor(
            json_validity, config.json_validity_floor, n=json_n, problems=json_problems
        )
    return gates


@dataclass(frozen=True)
class Decision:
    """What `production_model` does with a candidate, and why.

    `action`: `promote_challenger` (serves `challenger_share` of users beside the champion),
    `promote_champion` (serves everyone), `keep` (the champion stays), `base` (nothing passed and
    no fine-tuned champion exists: the base model serves).
    """

    action: Action
    reason: str
    challenger_share: float | None = None
    passed: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "reason": self.reason, "challenger_share": self.challenger_share,
                "passed": list(self.passed), "failed": list(self.failed)}


def decide(
    gates: Mapping[str, GateResult], canary: bool, canary_share: float, *, champion_is_base: bool = False
) -> Decision:
    """The decision from the gates' results: promote (as challenger or champion) only when every gate passed.

    `canary` and `canary_share` come from the target's `gates`; `champion_is_base` says no
    fine-tuned model serves yet (the base model is the champion), so a refusal means the base serves.
    """
    if not gates:
        raise ValueError("no gate results: a candidate is never promoted without its gates")
    if canary and not 0 < canary_share < 1:
        raise ValueError(f"canary_share must be in (0, 1), not {canary_share}")
    passed = tuple(name for name, g in gates.items() if g.passed)
    failed = tuple(name for name, g in gates.items() if not g.passed)
    if not failed:
        if canary:
            return Decision("promote_challenger", (
                f"every gate passed ({', '.join(passed)}): the candidate becomes the challenger for "
                f"{canary_share:.0%} of users beside the champion."
            ), canary_share, passed, failed)
        return Decision("promote_champion", (
            f"every gate passed ({', '.join(passed)}) and the target has canary: false: the candidate becomes the champion."
        ), None, passed, failed)
    why = " ".join(f"[{name}] {gates[name].description}" for name in failed)
    if champion_is_base:
        return Decision("base", f"{len(failed)} gate(s) failed, no fine-tuned champion exists, the base model serves. {why}",
                        None, passed, failed)
    return Decision("keep", f"{len(failed)} gate(s) failed, the champion stays. {why}", None, passed, failed)
