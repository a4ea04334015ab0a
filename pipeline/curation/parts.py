"""`scored_examples` on disk: parts written once, and masks that say which of their rows count now.

A target's scored folder holds one part per run that scored something, oldest first:

    scored/manifest.json                 format, fingerprint, watermark, clock, the parts, the masks' generation
    scored/masks-<generation>.npz        per part: rows still live, candidates kept, pairs written
    scored/parts/<name>/candidates.parquet   every exportable example the run scored (EXAMPLE_COLUMNS), by id
    scored/parts/<name>/pairs.parquet        every pair the run built (PAIR_COLUMNS)
    scored/parts/<name>/rows.parquet         one row per interaction read: id, its status and small keys
    scored/parts/<name>/keys.npz             the candidates' dedup keys (exact key, signature, score, …)
    scored/parts/<name>/pairs.npz            the pairs' content key and the two interactions they join

A run after new data scores only what the data changed (`incremental.plan`) into a new part; the
rows it re-scored are masked out of the older parts (superseded), and duplicates are collapsed
again over every live candidate from the small keys alone, so no older part is read or rewritten.
A part's files never change after it is written; only the masks do, written as a new generation
and swapped in by replacing the manifest (atomic), so a failed run leaves the last state whole.

`kept_example_tables` / `live_pair_tables` read the result in batches; `anonymized_dataset` reads
the parts under their masks itself (`parts.filtered`), part by part.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.artifacts import EXAMPLE_COLUMNS, PAIR_COLUMNS

FORMAT = 1
MANIFEST = "manifest.json"
PARTS = "parts"
CANDIDATES, PAIRS, ROWS, KEYS, PAIR_KEYS = "candidates.parquet", "pairs.parquet", "rows.parquet", "keys.npz", "pairs.npz"

def schema_of(columns: list[str]) -> pa.Schema:
    """Every column a string but `score` (a float): the scored and anonymized tables alike."""
    return pa.schema([(c, pa.float64() if c == "score" else pa.string()) for c in columns])


EXAMPLE_SCHEMA = schema_of(EXAMPLE_COLUMNS)
PAIR_SCHEMA = schema_of(PAIR_COLUMNS)

#: rows.parquet: every interaction a part read, in id order
ROW_SCHEMA = pa.schema([
    ("id", pa.string()),
    ("id_hash", pa.int64()),  # `id_hash(id)`: what candidates and pairs refer to
    ("conversation", pa.int64()),  # `curate.conversation_key`, 0 outside a conversation
    ("group", pa.int64()),  # the pair group (regeneration / saved-vs-skipped key), 0 for none
    ("time", pa.int64()),  # `curate.time_micros` of occurred_at, 0 when unreadable
    ("status", pa.int8()),  # STATUS
    ("bucket", pa.int8()),  # score bucket 0..9, -1 when unreadable
    ("outcome", pa.int8()),  # OUTCOME
])
#: what became of a row read: a candidate (then dedup decides), or dropped for a reason
STATUS = ("candidate", "unreadable_record", "empty_completion", "below_threshold")
OUTCOME = (None, "explicit", "inferred_abandoned", "inferred_regenerated")
#: what became of a pair built: written, or skipped for a reason (`duplicate_pair` is decided across parts)
PAIR_STATUS = ("written", "identical_sides", "missing_record")
PAIR_SOURCES = ("edit", "regenerated", "saved_vs_skipped")
KEY_ARRAYS = ("exact", "namespace", "score", "rank", "time", "id_hash", "signature")


def id_hash(value: str) -> int:
    """A signed 64-bit hash of an interaction id: the masks' and pairs' handle on a row."""
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "little", signed=True)


@dataclass
class Manifest:
    """The state of one target's scored folder (`manifest.json`)."""

    fingerprint: str
    source_seq_through: int
    implicit_as_of: str | None
    parts: list[str] = field(default_factory=list)
    generation: int = 0
    format: int = FORMAT

    def as_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True)


@dataclass
class Masks:
    """Per part: `rows` (not superseded), `keep` (candidates kept after dedup), `pairs` (pairs written)."""

    rows: dict[str, np.ndarray] = field(default_factory=dict)
    keep: dict[str, np.ndarray] = field(default_factory=dict)
    pairs: dict[str, np.ndarray] = field(default_factory=dict)


def part_dir(folder: Path, name: str) -> Path:
    return folder / PARTS / name


def load(folder: Path) -> tuple[Manifest, Masks] | None:
    """The folder's manifest and masks; None when there is none, it is of another format or incomplete."""
    path = folder / MANIFEST
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
        if raw.get("format") != FORMAT:
            return None
        manifest = Manifest(**raw)
        masks = Masks()
        if manifest.parts:
            with np.load(folder / f"masks-{manifest.generation}.npz") as data:
                for part in manifest.parts:
                    masks.rows[part] = data[f"{part}/rows"]
                    masks.keep[part] = data[f"{part}/keep"]
                    masks.pairs[part] = data[f"{part}/pairs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable: the next run rebuilds from the store
    return manifest, masks


def save(folder: Path, manifest: Manifest, masks: Masks) -> None:
    """Write the masks as a new generation, then the manifest (the atomic step), then drop what nothing names."""
    manifest.generation += 1
    arrays = {}
    for part in manifest.parts:
        arrays[f"{part}/rows"] = masks.rows[part]
        arrays[f"{part}/keep"] = masks.keep[part]
        arrays[f"{part}/pairs"] = masks.pairs[part]
    masks_path = folder / f"masks-{manifest.generation}.npz"
    tmp = folder / f".masks-{manifest.generation}.{os.getpid()}.npz"
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, masks_path)
    tmp = folder / f".{MANIFEST}.{os.getpid()}"
    tmp.write_text(manifest.as_json())
    os.replace(tmp, folder / MANIFEST)
    _sweep(folder, manifest)


def _sweep(folder: Path, manifest: Manifest) -> None:
    """Remove masks of other generations, parts the manifest no longer lists and files of the old layout."""
    for path in folder.glob("masks-*.npz"):
        if path.name != f"masks-{manifest.generation}.npz":
            path.unlink(missing_ok=True)
    parts = folder / PARTS
    if parts.exists():
        for path in parts.iterdir():
            if path.name not in manifest.parts:
                shutil.rmtree(path, ignore_errors=True)
    for name in ("examples.parquet", "pairs.parquet"):  # the single files of format 0
        (folder / name).unlink(missing_ok=True)


# ------------------------------------------------------------------ the arrays of a part
def read_rows_table(folder: Path, part: str, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(part_dir(folder, part) / ROWS, columns=columns)


def read_keys(folder: Path, part: str) -> dict[str, np.ndarray]:
    with np.load(part_dir(folder, part) / KEYS) as data:
        return {name: data[name] for name in KEY_ARRAYS}


def read_pair_keys(folder: Path, part: str) -> dict[str, np.ndarray]:
    with np.load(part_dir(folder, part) / PAIR_KEYS) as data:
        return {name: data[name] for name in data.files}


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


# ------------------------------------------------------------------ readers
def filtered(path: Path, mask: np.ndarray, batch_rows: int) -> Iterator[pa.Table]:
    """The rows of a part's file under a mask, a batch at a time, in file order."""
    if not mask.any():
        return
    offset = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        part = mask[offset : offset + batch.num_rows]
        offset += batch.num_rows
        if part.any():
            yield pa.Table.from_batches([batch]).filter(pa.array(part))


def loaded(folder: Path) -> tuple[Manifest, Masks]:
    """`load`, or a clear error for a folder no `scored_examples` run has finished."""
    state = load(folder)
    if state is None:
        raise FileNotFoundError(f"{folder} holds no scored examples (no {MANIFEST}): materialize scored_examples first")
    return state


def kept_tables(folder: Path, manifest: Manifest, masks: Masks, batch_rows: int = 2_048,
                kind: str = "examples") -> Iterator[tuple[str, pa.Table]]:
    """(part, table) of kept examples (or written pairs, `kind="pairs"`) under these masks, part by part."""
    name, chosen = (CANDIDATES, masks.keep) if kind == "examples" else (PAIRS, masks.pairs)
    for part in manifest.parts:
        for table in filtered(part_dir(folder, part) / name, chosen[part], batch_rows):
            yield part, table


def kept_example_tables(folder: Path, batch_rows: int = 2_048) -> Iterator[tuple[str, pa.Table]]:
    """(part, table) of kept examples, part by part in order, a batch at a time."""
    yield from kept_tables(folder, *loaded(folder), batch_rows)


def live_pair_tables(folder: Path, batch_rows: int = 2_048) -> Iterator[tuple[str, pa.Table]]:
    """(part, table) of the pairs written, part by part in order."""
    yield from kept_tables(folder, *loaded(folder), batch_rows, kind="pairs")


def read_examples(folder: Path) -> pa.Table:
    """Every kept example in one table (for small targets, tests and notebooks)."""
    tables = [t for _p, t in kept_example_tables(folder)]
    return pa.concat_tables(tables) if tables else EXAMPLE_SCHEMA.empty_table()


def read_pairs(folder: Path) -> pa.Table:
    """Every pair written in one table."""
    tables = [t for _p, t in live_pair_tables(folder)]
    return pa.concat_tables(tables) if tables else PAIR_SCHEMA.empty_table()


def write_plain(folder: Path, examples: pa.Table | list[dict], pairs: pa.Table | list[dict] | None = None,
                name: str = "part-000001") -> None:
    """A one-part folder that keeps every example and pair given: scored data made by hand (tests, imports).

    Rows are written as given (no scoring, no dedup); the arrays are what a reader needs, no more.
    """
    folder.mkdir(parents=True, exist_ok=True)
    examples = examples if isinstance(examples, pa.Table) else pa.Table.from_pylist(examples, schema=EXAMPLE_SCHEMA)
    pairs = pairs if isinstance(pairs, pa.Table) else pa.Table.from_pylist(pairs or [], schema=PAIR_SCHEMA)
    out = part_dir(folder, name)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(examples, out / CANDIDATES, compression="zstd")
    pq.write_table(pairs, out / PAIRS, compression="zstd")
    masks = Masks(rows={name: np.ones(0, bool)}, keep={name: np.ones(examples.num_rows, bool)},
                  pairs={name: np.ones(pairs.num_rows, bool)})
    save(folder, Manifest("plain", 0, None, [name]), masks)
