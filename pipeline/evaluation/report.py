"""What an evaluation shows a data engineer: the side-by-side table, the per-task breakdown, a picture, the items.

`comparison_dict` flattens a `stats.Comparison` into plain values (the report's JSON); the
renderers turn a report into the Markdown the Dagster UI shows.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pipeline.core import markdown

ROLES = ("base", "champion", "candidate")


def comparison_dict(comparison: Any) -> dict[str, Any]:
    """A `stats.Comparison` as JSON-ready values (per-task comparisons nested; infinite bounds None)."""
    return {} if comparison is None else _plain(comparison.as_dict())


def comparison_from_dict(data: dict[str, Any]) -> Any:
    """The `stats.Comparison` a report stored (what the checks judge again)."""
    from pipeline.evaluation.stats import Comparison

    fields = {f.name for f in dataclasses.fields(Comparison)}
    values = {k: v for k, v in data.items() if k in fields and k != "per_task"}
    for key in ("low", "high"):
        if values.get(key) is None:
            values[key] = float("-inf") if key == "low" else float("inf")
    per_task = {task: comparison_from_dict(c) for task, c in (data.get("per_task") or {}).items()}
    return Comparison(**values, per_task=per_task)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    if hasattr(value, "item"):  # numpy scalars
        return _plain(value.item())
    return value


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _bound(value: Any) -> str:
    return "?" if value is None else f"{value:+.3f}"


def _interval(cmp: dict[str, Any]) -> str:
    if not cmp:
        return "–"
    return f"{cmp['difference']:+.3f} [{_bound(cmp.get('low'))}, {_bound(cmp.get('high'))}]"


def interval_text(cmp: dict[str, Any]) -> str:
    """'+0.031 [-0.012, +0.074] (95% CI, n=40)'."""
    return f"{_interval(cmp)} ({cmp.get('confidence', 0.95):.0%} CI, n={cmp.get('n')})"


def side_by_side(report: dict[str, Any]) -> str:
    """One row per metric: base / champion / candidate means, and candidate minus champion with its interval."""
    summaries = report["summaries"]
    primary = report["primary"]
    metrics_ = list(summaries["candidate"]["overall"])
    rows = []
    for metric in [primary, *[m for m in metrics_ if m != primary]]:
        row = {"metric": f"**{metric}**" if metric == primary else metric}
        for role in ROLES:
            row[role] = _fmt(summaries[role]["overall"].get(metric))
        row["candidate − champion (95% CI)"] = _interval(report["vs_champion"]) if metric == primary else ""
        rows.append(row)
    for key, label in (("latency_mean_s", "latency per call (s)"), ("cost_per_call_usd", "cost per call (USD)")):
        row = {"metric": label}
        for role in ROLES:
            row[role] = _fmt(summaries[role]["calls"].get(key))
        row["candidate − champion (95% CI)"] = ""
        rows.append(row)
    return markdown.table(rows, ["metric", *ROLES, "candidate − champion (95% CI)"])


def per_task(report: dict[str, Any]) -> str:
    """The primary metric per task for each model, with the candidate-minus-champion interval per task."""
    primary = report["primary"]
    by_task = report["vs_champion"].get("per_task") or {}
    rows = []
    for task, n in sorted(report["summaries"]["candidate"]["n_per_task"].items()):
        row = {"task": task, "n": n}
        for role in ROLES:
            row[role] = _fmt(report["summaries"][role]["per_task"].get(task, {}).get(primary))
        row["candidate − champion (95% CI)"] = _interval(by_task.get(task) or {})
        rows.append(row)
    return markdown.table(rows) if rows else "_(one task)_"


def picture(report: dict[str, Any], width: int = 30) -> str:
    """Bars of the primary metric per model (0..1 scale), the candidate's interval against the champion beneath."""
    primary = report["primary"]
    rows = []
    for role in ROLES:
        value = report["summaries"][role]["overall"].get(primary)
        length = 0 if value is None else max(0, min(width, round(width * float(value))))
        rows.append({"model": role, primary: _fmt(value), "": markdown.BAR * length + "░" * (width - length)})
    cmp = report["vs_champion"]
    wins = f"candidate better on {cmp.get('wins', '?')}, worse on {cmp.get('losses', '?')}, tied on {cmp.get('ties', '?')} items"
    return markdown.table(rows, ["model", primary, ""], max_chars=width + 5) + f"\n\n{wins}."


def differing(report: dict[str, Any]) -> str:
    rows = report.get("differing") or []
    return markdown.table(rows, max_chars=120) if rows else "_(the models agree on every item)_"
