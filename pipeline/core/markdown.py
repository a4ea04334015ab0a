"""Small Markdown renderers for asset metadata (the Dagster UI renders `MetadataValue.md`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

BAR = "█"


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, max_chars: int = 80) -> str:
    """A Markdown table of `rows`; cells are cut to `max_chars` and pipes escaped."""
    if not rows:
        return "_(no rows)_"
    cols = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c), max_chars) for c in cols) + " |")
    return "\n".join(lines)


def counts(pairs: Iterable[tuple[str, int]] | Mapping[str, int], key: str = "reason", value: str = "count") -> str:
    """A two-column table of counts, largest first."""
    items = sorted((pairs.items() if isinstance(pairs, Mapping) else pairs), key=lambda kv: (-kv[1], kv[0]))
    return table([{key: k, value: f"{v:,}"} for k, v in items]) if items else "_(none)_"


def bars(buckets: Sequence[tuple[str, int]], width: int = 30, label: str = "bucket") -> str:
    """A horizontal bar chart as a Markdown table: one row per bucket, bars scaled to the largest."""
    peak = max((n for _, n in buckets), default=0)
    rows = []
    for name, n in buckets:
        length = 0 if peak == 0 else max(1 if n else 0, round(width * n / peak))
        rows.append({label: name, "count": f"{n:,}", "": BAR * length})
    return table(rows, [label, "count", ""], max_chars=width + 5)


def _cell(value: Any, max_chars: int) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"
