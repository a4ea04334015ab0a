"""Training prices per model, from `prices.yaml` beside this file (or FLYWHEEL_PRICES)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import yaml

PRICES_FILE = Path(__file__).with_name("prices.yaml")


@lru_cache(maxsize=4)
def _load(path: str) -> dict:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}


def price_per_million(backend: str, model: str, method: str) -> float | None:
    """USD per 1M trained tokens for this backend, model and method; None when unknown."""
    table = _load(os.environ.get("FLYWHEEL_PRICES", str(PRICES_FILE))).get(backend, {})
    entry = table.get(model) or table.get("*")
    if not entry or method not in entry:
        return None
    return float(entry[method])


def training_cost_usd(backend: str, model: str, method: str, trained_tokens: int) -> float | None:
    price = price_per_million(backend, model, method)
    return None if price is None else round(price * trained_tokens / 1_000_000, 4)
