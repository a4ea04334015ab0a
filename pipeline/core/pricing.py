"""Training prices, from `prices.yaml` beside this file (or FLYWHEEL_PRICES).

Two kinds: per 1M trained tokens (OpenAI; the local backends at 0), and per hour of Hugging Face
Jobs hardware (`huggingface_jobs`: the huggingface backend with `remote: true`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

PRICES_FILE = Path(__file__).with_name("prices.yaml")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


@lru_cache(maxsize=4)
def _load(path: str) -> dict:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}


def _table() -> dict:
    return _load(os.environ.get("FLYWHEEL_PRICES", str(PRICES_FILE)))


def price_per_million(backend: str, model: str, method: str) -> float | None:
    """USD per 1M trained tokens for this backend, model and method; None when unknown."""
    table = _table().get(backend, {})
    entry = table.get(model) or table.get("*")
    if not entry or method not in entry:
        return None
    return float(entry[method])


def training_cost_usd(backend: str, model: str, method: str, trained_tokens: int) -> float | None:
    price = price_per_million(backend, model, method)
    return None if price is None else round(price * trained_tokens / 1_000_000, 4)


@dataclass(frozen=True)
class JobsFlavor:
    """A Hugging Face Jobs hardware flavour as priced in `prices.yaml` (see the comments there)."""

    name: str
    usd_per_hour: float
    tokens_per_second: float
    startup_hours: float
    method_factor: float
    source: str


def jobs_flavor(flavor: str, method: str) -> JobsFlavor | None:
    """The price and assumed training throughput of a Jobs flavour; None when the table lacks it."""
    section: dict[str, Any] = _table().get("huggingface_jobs") or {}
    entry = (section.get("flavors") or {}).get(flavor)
    if not entry:
        return None
    return JobsFlavor(
        name=flavor,
        usd_per_hour=float(entry["usd_per_hour"]),
        tokens_per_second=float(entry["tokens_per_second"]),
        startup_hours=float(section.get("startup_hours", 0.0)),
        method_factor=float((section.get("method_factor") or {}).get(method, 1.0)),
        source=f"{section.get('source', 'prices.yaml')} (checked {section.get('checked', 'unknown')})",
    )


def duration_hours(value: Any) -> float | None:
    """A Jobs timeout (`"4h"`, `"90m"`, `"1d"`, `"30s"` or seconds, as huggingface_hub's `run_job`
    reads it) in hours; None for no timeout."""
    if value is None or value == "" or value == 0:
        return None
    if isinstance(value, str) and value[-1:] in _DURATION_UNITS:
        return float(value[:-1]) * _DURATION_UNITS[value[-1]] / 3600
    return float(value) / 3600


def inference_cost_usd(backend: str, model: str, input_tokens: int, output_tokens: int) -> float | None:
    """USD for one call of `model` (a fine-tuned `ft:<base>:…` id is priced at its base's fine-tuned row); None when unknown."""
    table = (_table().get("inference") or {}).get(backend) or {}
    fine_tuned = model.startswith("ft:")
    base = model.split(":")[1] if fine_tuned and model.count(":") >= 1 else model
    entry = table.get(base) or table.get("*")
    if not entry:
        return None
    if fine_tuned and base in table:
        entry = entry.get("fine_tuned") or {}
    if "input" not in entry or "output" not in entry:
        return None
    return (float(entry["input"]) * input_tokens + float(entry["output"]) * output_tokens) / 1_000_000
