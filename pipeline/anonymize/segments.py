"""Redacted scored parts: what `anonymized_dataset` redacted of each scored part, kept beside the dataset.

`scored_examples` writes a part once and later only changes its masks (`curation/parts.py`), so
the redaction of a part's rows stays valid for as long as the part, the engine and the set of
opted-out tenants do. Each part's redacted rows are kept as segment files,

    anonymized/.segments/<engine_version>/<examples|pairs>/<part digest>-<opt-out digest>/seg-<n>.parquet

holding the dataset's columns as written (texts redacted, ids hashed) plus `_pos` (the row's
index in the scored part's file), `_key` (its `cache.row_key`) and what the engine did to it
(`_entities`, `_notes` as JSON, `_words`). A run reads the masks, redacts only the rows that no
segment holds yet (a new part, or a row the dedup collapse brought back) into a new segment, and
copies the wanted rows of every segment into the dataset as Arrow tables: an unchanged part costs
a filter and a write, no row is parsed, hashed or looked up. The part digest is the SHA-256 of the
scored file's bytes, so a part rewritten under the same name is never served old redactions.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.curation.parts import schema_of

SEGMENTS = ".segments"
EXTRA = [("_pos", pa.int64()), ("_key", pa.string()), ("_entities", pa.string()), ("_notes", pa.string()),
         ("_words", pa.int64())]


def segment_schema(columns: list[str]) -> pa.Schema:
    return pa.schema(list(schema_of(columns)) + [pa.field(name, kind) for name, kind in EXTRA])


def file_digest(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def opted_out_digest(opted_out: set[str]) -> str:
    return hashlib.sha256(json.dumps(sorted(opted_out)).encode()).hexdigest()[:12]


def engine_root(root: Path, engine: str) -> Path:
    """`root/<engine>`, after removing other engines' segments (they can never be served)."""
    root.mkdir(parents=True, exist_ok=True)
    for other in root.iterdir():
        if other.name != engine:
            shutil.rmtree(other, ignore_errors=True)
    return root / engine


def removal_masks(path: Path, opted_out: set[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a scored file: no tenant (null or blank org_id), and tenant opted out."""
    org = pq.read_table(path, columns=["org_id"]).column(0)
    blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(org), ""), True)
    missing = np.asarray(pc.or_(pc.is_null(org), blank).to_numpy(zero_copy_only=False), dtype=bool)
    opted = np.asarray(pc.fill_null(pc.is_in(org, pa.array(sorted(opted_out), pa.string())), False)
                       .to_numpy(zero_copy_only=False), dtype=bool)
    return missing, opted & ~missing


class PartSegments:
    """The segments of one scored part (for one engine and one opt-out set)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def files(self) -> list[Path]:
        return sorted(self.folder.glob("seg-*.parquet")) if self.folder.exists() else []

    def positions(self) -> np.ndarray:
        """The scored rows some segment holds."""
        held = [pq.read_table(f, columns=["_pos"]).column(0).to_numpy() for f in self.files()]
        return np.concatenate(held) if held else np.empty(0, dtype=np.int64)

    @contextmanager
    def writer(self, schema: pa.Schema) -> Iterator[pq.ParquetWriter]:
        """A new segment, written in batches; it appears only when whole (atomic rename)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        files = self.files()
        number = int(files[-1].stem.split("-")[1]) + 1 if files else 1
        path = self.folder / f"seg-{number:06d}.parquet"
        tmp = self.folder / f".{path.name}.{os.getpid()}.tmp"
        writer = pq.ParquetWriter(tmp, schema, compression="zstd")
        try:
            yield writer
        except BaseException:
            writer.close()
            tmp.unlink(missing_ok=True)
            raise
        writer.close()
        os.replace(tmp, path)

    def wanted(self, wanted: np.ndarray, batch_rows: int) -> Iterator[pa.Table]:
        """The segments' rows whose position `wanted` (a mask over the scored part) is set, a row group at a time."""
        for path in self.files():
            for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
                keep = wanted[batch.column("_pos").to_numpy()]
                if keep.any():
                    yield pa.Table.from_batches([batch]).filter(pa.array(keep))


def tally(table: pa.Table, entities: Counter, notes: Counter) -> int:
    """Add a segment table's entities and notes to the counters; returns its words."""
    for column, counter in (("_entities", entities), ("_notes", notes)):
        for item in pc.value_counts(table.column(column)).to_pylist():
            for name, n in json.loads(item["values"]).items():
                counter[name] += n * item["counts"]
    return int(pc.sum(table.column("_words")).as_py() or 0)


def sweep(root: Path, used: set[Path]) -> int:
    """Remove the part folders this run did not use; returns how many."""
    removed = 0
    for kind in (root.iterdir() if root.exists() else []):
        for folder in kind.iterdir():
            if folder not in used:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
    return removed
