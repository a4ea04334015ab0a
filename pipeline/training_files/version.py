"""Dataset versions: a content hash of what went in plus the formatting config.

The same anonymized rows (in any order: the input hash is order-independent) with the same config
give the same version, and `build.py` writes the same bytes for it: records are written in the
order of a hash of their id, JSON keys are sorted, and no file holds a timestamp. Changing a row, the
split share or seed, the token limit, the base model's encoding, or this module's
`FORMAT_REVISION` gives a new version.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from typing import Any

#: Bump when a builder changes what it writes for the same input (new field, other layout).
FORMAT_REVISION = 1

_FIELD = b"\x1f"
_MODULUS = 1 << 256


class InputHasher:
    """An order-independent hash of a multiset of rows: the sum of per-row sha256s (mod 2**256).

    The same rows in any order (and any batching) give the same digest; a changed, added, removed
    or duplicated row changes it.
    """

    def __init__(self, columns: Iterable[str]):
        self.columns = list(columns)
        self._sum = 0
        self.rows = 0

    def update_batch(self, columns: dict[str, list[Any]]) -> None:
        """Add a batch given as {column: values} (same length, columns as declared)."""
        values = [columns[c] for c in self.columns]
        total = self._sum
        for row in zip(*values, strict=True):
            digest = hashlib.sha256(_FIELD.join(_encode(value) for value in row)).digest()
            total += int.from_bytes(digest, "big")
            self.rows += 1
        self._sum = total % _MODULUS

    def hexdigest(self) -> str:
        payload = json.dumps({"columns": self.columns, "rows": self.rows, "sum": f"{self._sum:064x}"})
        return hashlib.sha256(payload.encode()).hexdigest()


def _encode(value: Any) -> bytes:
    if value is None:
        return b"\x00"
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, float) and math.isnan(value):
        return b"\x00nan"
    return repr(value).encode("utf-8")


def formatting_config(
    *, method: str, backend: str, base_model: str, encoding: str, validation_share: float, seed: int, max_tokens: int
) -> dict[str, Any]:
    """The settings that change the written files (budget and push target do not)."""
    return {
        "format_revision": FORMAT_REVISION,
        "method": method,
        "backend": backend,
        "base_model": base_model,
        "encoding": encoding,
        "validation_share": validation_share,
        "seed": seed,
        "max_tokens_per_example": max_tokens,
    }


def dataset_version(input_digests: dict[str, str], config: dict[str, Any]) -> str:
    """`v` + 16 hex digits of sha256(input digests, config)."""
    payload = json.dumps({"inputs": input_digests, "config": config}, sort_keys=True)
    return "v" + hashlib.sha256(payload.encode()).hexdigest()[:16]
