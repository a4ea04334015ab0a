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

import numpy as np

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
        digests = b"".join(hashlib.sha256(_FIELD.join(_encode(value) for value in row)).digest()
                           for row in zip(*values, strict=True))
        self.update_digests(np.frombuffer(digests, dtype=np.uint8).reshape(-1, 32))

    def update_digests(self, digests: np.ndarray) -> None:
        """Add rows given by their sha256 digests ((n, 32) uint8, as `row_digests` returns them)."""
        if not len(digests):
            return
        # the digests as big-endian 256-bit numbers, summed as eight 32-bit limbs (exact: a limb's
        # sum stays under 2**64 below 2**32 rows), then carried into one Python int
        limbs = np.ascontiguousarray(digests).view(">u4").sum(axis=0, dtype=np.uint64)
        total = sum(int(limb) << (32 * (7 - i)) for i, limb in enumerate(limbs.tolist()))
        self._sum = (self._sum + total) % _MODULUS
        self.rows += len(digests)

    def hexdigest(self) -> str:
        payload = json.dumps({"columns": self.columns, "rows": self.rows, "sum": f"{self._sum:064x}"})
        return hashlib.sha256(payload.encode()).hexdigest()


def row_digests(batch: Any, columns: Iterable[str]) -> np.ndarray:
    """The sha256 of each row of an Arrow record batch or table, as (n, 32) uint8: what `InputHasher` sums.

    The same bytes as `update_batch` over the rows' Python values (`_encode` joined by 0x1f), made
    in Arrow: string columns are used as their UTF-8 bytes with null as 0x00; any other column
    (the float `score`) goes through `_encode` value by value. Only the sha256 call is per row.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = []
    for name in columns:
        column = batch.column(name)
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            parts.append(column.cast(pa.large_binary()))
        else:
            parts.append(pa.array([_encode(value) for value in column.to_pylist()], pa.large_binary()))
    if not parts or not len(parts[0]):
        return np.zeros((0, 32), dtype=np.uint8)
    joined = pc.binary_join_element_wise(
        *parts, pa.scalar(_FIELD, pa.large_binary()), null_handling="replace", null_replacement="\x00"
    )
    _, offsets_buffer, data = joined.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64, count=len(joined) + 1, offset=joined.offset * 8)
    view = memoryview(data) if data is not None else memoryview(b"")
    sha256 = hashlib.sha256
    bounds = offsets.tolist()
    digests = b"".join([sha256(view[a:b]).digest() for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    return np.frombuffer(digests, dtype=np.uint8).reshape(-1, 32)


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
