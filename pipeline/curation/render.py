"""Markdown for the Dagster UI: the score distribution as a bar chart, and a preview of kept examples."""

from __future__ import annotations

import json
from typing import Any

from pipeline.core import markdown

BAR_WIDTH = 28
_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(count: int, largest: int, width: int = BAR_WIDTH, char: str = markdown.BAR) -> str:
    """A horizontal bar of `count / largest` of `width` cells; solid bars are drawn to an eighth of a cell."""
    if largest <= 0 or count <= 0:
        return ""
    if char != markdown.BAR:
        return char * max(1, round(count / largest * width))
    whole, part = divmod(max(1, round(count / largest * width * 8)), 8)
    return markdown.BAR * whole + (_EIGHTHS[part] if part else "")


def score_chart(scored: list[int], kept: list[int], threshold: float) -> str:
    """One row per score bucket, best first: how many scored there, how many were kept, and a bar."""
    largest = max(scored, default=0)
    rows = [
        {
            "score": f"{b}–{b + 1}",
            "scored": f"{scored[b]:,}",
            "kept": f"{kept[b]:,}",
            "distribution": bar(scored[b], largest, char=markdown.BAR if b >= threshold else "░"),
        }
        for b in range(len(scored) - 1, -1, -1)
    ]
    legend = (
        f"Scores of {sum(scored):,} interactions; {sum(kept):,} kept after dedup "
        f"({markdown.BAR} buckets at or above the export threshold {threshold:g}, ░ below)."
    )
    return legend + "\n\n" + markdown.table(rows, max_chars=BAR_WIDTH + 2)


def preview_table(rows: list[dict[str, Any]], max_chars: int = 60) -> str:
    """Kept examples: id, task, score, where the completion came from, sizes, and why.

    No text: scored examples still hold personal data, and metadata lands in Dagster's event log
    (the UI, its database). The redacted text is previewed by `anonymized_dataset`.
    """
    if not rows:
        return "_No example was kept._"
    shown = []
    for row in rows:
        messages = json.loads(row["messages"])
        shown.append({
            "example": row["example_id"],
            "task": row["task"],
            "score": f"{row['score']:g}",
            "source": row["completion_source"],
            "turns": len(messages),
            "prompt chars": sum(len(m.get("content") or "") for m in messages),
            "completion chars": len(row["completion"] or ""),
            "why": ", ".join(json.loads(row["score_reasons"])),
        })
    return (markdown.table(shown, max_chars=max_chars)
            + "\n\n_Text is previewed after redaction, in `anonymized_dataset`._")
