"""The parts of a scored folder combined: duplicates collapsed over every live candidate, pairs, the counts.

Reads only each part's small arrays (rows.parquet, keys.npz, pairs.npz), never its examples, so it
costs the same whether one part changed or none: a few bytes and a 256-byte signature a candidate.

* Rows superseded by a later part (`Masks.rows`) drop out with their candidates and pairs.
* Exact and near duplicates are collapsed over all live candidates at once, in one best-first
  order (`curate.best_first`), so the result is the one a full run over the same log keeps.
* A pair is written once: the first live pair of its content (prompt, chosen, rejected), in
  part order, is kept; later ones are `duplicate_pair`.
* The counts are over live rows: `read == kept + dropped` for the whole target, not the run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from pipeline.core.targets import Target
from pipeline.curation import dedup, parts
from pipeline.curation.scoring import SOURCE_RANK

_SOURCE_OF_RANK = {rank: source for source, rank in SOURCE_RANK.items()}


def combine(folder: Path, manifest: parts.Manifest, masks: parts.Masks, target: Target, report,
            lap: Callable[[str], None] = lambda _phase: None) -> None:
    """Set `masks.keep` and `masks.pairs` for every part and fill the report's counts (a `CurationReport`)."""
    from pipeline.curation.curate import PREVIEW_ROWS, bucket, collapse_keys

    live_keys: list[dict[str, np.ndarray]] = []
    sizes: dict[str, int] = {}
    live_of: dict[str, np.ndarray] = {}
    pair_info: list[tuple[str, dict[str, np.ndarray], np.ndarray]] = []
    for part in manifest.parts:
        rows = parts.read_rows_table(folder, part, ["id_hash", "status", "bucket", "outcome"])
        alive = masks.rows[part]
        status = rows.column("status").to_numpy()
        _tally_rows(report, status[alive], rows.column("bucket").to_numpy()[alive],
                    rows.column("outcome").to_numpy()[alive])
        candidate_alive = alive[status == 0]
        keys = parts.read_keys(folder, part)
        sizes[part] = len(candidate_alive)
        live_of[part] = candidate_alive
        # no copy where every candidate is live (a full run's one part): a signature is 256 bytes
        live_keys.append(keys if candidate_alive.all() else {name: values[candidate_alive] for name, values in keys.items()})
        del keys
        dead = rows.column("id_hash").to_numpy()[~alive]
        info = parts.read_pair_keys(folder, part)
        pair_alive = ~(np.isin(info["a"], dead) | np.isin(info["b"], dead)) if len(dead) else np.ones(len(info["key"]), bool)
        pair_info.append((part, info, pair_alive))

    if len(live_keys) == 1:
        merged = live_keys.pop()
    elif live_keys:
        merged = {name: np.concatenate([k[name] for k in live_keys]) for name in parts.KEY_ARRAYS}
    else:
        merged = {name: np.zeros(0) for name in parts.KEY_ARRAYS}
        merged["signature"] = dedup.prompt_signatures([], [])
    del live_keys
    collapsed = collapse_keys(merged, target.scoring.near_duplicate_threshold)
    report.duplicates = {"exact": collapsed.exact, "near": collapsed.near}
    if collapsed.exact + collapsed.near:
        report.dropped["duplicate_prompt"] += collapsed.exact + collapsed.near
    report.kept = int(collapsed.keep.sum())
    offset = 0
    for part in manifest.parts:
        keep = np.zeros(sizes[part], dtype=bool)
        n = int(live_of[part].sum())
        keep[live_of[part]] = collapsed.keep[offset : offset + n]
        offset += n
        masks.keep[part] = keep
    kept = {name: values[collapsed.keep] for name, values in merged.items() if name != "signature"}
    for score in kept["score"].tolist():
        report.kept_histogram[bucket(score)] += 1
    report.kept_sources.update(_SOURCE_OF_RANK[r] for r in kept["rank"].tolist())
    tasks = {dedup.namespace(t): t for t in target.tasks}
    report.kept_tasks.update(tasks.get(int(ns), "?") for ns in kept["namespace"].tolist())
    lap("dedup")

    _pairs(report, masks, pair_info)
    report.preview = _preview(folder, manifest, masks, PREVIEW_ROWS)
    lap("pairs")


def _tally_rows(report, status: np.ndarray, buckets: np.ndarray, outcome: np.ndarray) -> None:
    report.read += len(status)
    for code, reason in enumerate(parts.STATUS):
        n = int((status == code).sum()) if code else 0
        if n:
            report.dropped[reason] += n
    for b in buckets[buckets >= 0].tolist():
        report.scored_histogram[b] += 1
    for code, name in enumerate(parts.OUTCOME):
        n = int((outcome == code).sum()) if name else 0
        if name == "explicit":
            report.outcomes_explicit += n
        elif n:
            report.outcomes_inferred[name.removeprefix("inferred_")] += n


def _pairs(report, masks: parts.Masks, pair_info: list[tuple[str, dict[str, np.ndarray], np.ndarray]]) -> None:
    """Which written pairs are live and first of their content; the skipped ones by reason."""
    written = parts.PAIR_STATUS.index("written")
    keys, owners = [], []
    for part, info, alive in pair_info:
        status = info["status"]
        for code, reason in enumerate(parts.PAIR_STATUS):
            if code != written:
                n = int((alive & (status == code)).sum())
                if n:
                    report.pairs_skipped[reason] += n
        rows = np.flatnonzero(status == written)  # pairs.parquet rows, in order
        live = alive[rows]
        keys.append(info["key"][rows])
        owners.append((part, live, info["source"][rows]))
    flat = np.concatenate(keys) if keys else np.zeros(0, np.int64)
    live_flat = np.concatenate([live for _p, live, _s in owners]) if owners else np.zeros(0, bool)
    first = np.zeros(len(flat), dtype=bool)
    candidates = np.flatnonzero(live_flat)
    _, at = np.unique(flat[candidates], return_index=True)
    first[candidates[at]] = True
    duplicates = int(live_flat.sum() - first.sum())
    if duplicates:
        report.pairs_skipped["duplicate_pair"] += duplicates
    offset = 0
    for part, live, sources in owners:
        mask = first[offset : offset + len(live)]
        offset += len(live)
        masks.pairs[part] = mask
        for code in sources[mask].tolist():
            report.pairs[parts.PAIR_SOURCES[code]] += 1


def _preview(folder: Path, manifest: parts.Manifest, masks: parts.Masks, rows: int) -> list[dict]:
    """The first kept examples, part by part (under the new masks: the manifest is not saved yet)."""
    out: list[dict] = []
    for _part, table in parts.kept_tables(folder, manifest, masks, batch_rows=max(rows, 64)):
        out.extend(table.slice(0, rows - len(out)).to_pylist())
        if len(out) >= rows:
            break
    return out
