"""Which interactions a `scored_examples` run must score: all of them, or only what new data changed.

An example's score depends on more than its own row: a later turn of its conversation (any task)
continues it, the turns around it imply abandoned or regenerated, a pair joins two interactions of
one group, and the log's clock decides when a silence is long enough to mean abandoned. So a run
after new data (rows with `accepted_seq` past the last run's watermark) scores again:

* every new or updated row of the target;
* every earlier row of a conversation that any new row (of any task) belongs to;
* every earlier row of a pair group (same user and query: saved vs skipped) a new row joins;
* when the clock moved on, every earlier row younger than the abandon window at the last clock
  (the only turns a later clock can turn from undecided to abandoned).

The rest keeps its score: re-scoring it would give the same result. Everything is scored again
(a full run) when there is no earlier state, when the target's scoring, tasks or tenants, the
opted-out tenants or the curation code changed, when the watermark or the clock went back, or
after `MAX_PARTS` runs (compaction).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from pipeline.core import store as st
from pipeline.core.targets import Target
from pipeline.curation import parts

#: a full run once this many parts exist: reads stay a handful of files, superseded rows are dropped
MAX_PARTS = 48
#: the modules whose code decides a score, a dedup or a pair: a change to any of them re-scores everything
CODE = ("curate.py", "scoring.py", "dedup.py", "pairs.py", "implicit.py", "incremental.py", "parts.py")


@dataclass
class Plan:
    """What this run scores: `full` (everything), `incremental` (`ids`), or `unchanged` (nothing)."""

    mode: str
    reason: str
    ids: list[str] = field(default_factory=list)
    #: `parts.id_hash` of the earlier rows scored again (their old rows are masked out)
    superseded: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    new_rows: int = 0  # rows past the watermark among `ids`


def code_digest() -> str:
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in CODE:
        h.update(name.encode())
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def fingerprint(target: Target, exclude: Iterable[str]) -> str:
    """What every score of the target depends on besides the log: its filters, weights, method, the code."""
    what = {
        "tasks": list(target.tasks),
        "tenants": None if target.tenants is None else sorted(target.tenants),
        "exclude": sorted(set(exclude)),  # the target's exclusions and the opted-out tenants
        "method": target.method,
        "scoring": target.scoring.model_dump(mode="json"),
        "code": code_digest(),
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def plan(
    store: st.Store, target: Target, folder: Path, state: tuple[parts.Manifest, parts.Masks] | None,
    fingerprint_now: str, exclude: list[str], through: int, as_of: str | None, *, full_refresh: bool = False,
) -> Plan:
    """Decide between a full, an incremental and no run; for an incremental one, which ids."""
    from pipeline.curation.curate import conversation_key, time_micros
    from pipeline.curation.implicit import ImplicitWindows

    if full_refresh:
        return Plan("full", "full_refresh was asked for")
    if state is None:
        return Plan("full", "no earlier scored state")
    manifest, masks = state
    if manifest.fingerprint != fingerprint_now:
        return Plan("full", "the target's scoring, tasks or tenants, the opted-out tenants or the curation code changed")
    if through < manifest.source_seq_through:
        return Plan("full", f"the store's watermark went back ({manifest.source_seq_through} -> {through})")
    old_clock = manifest.implicit_as_of
    if (as_of is None) != (old_clock is None) or (as_of and old_clock and time_micros(as_of) < time_micros(old_clock)):
        return Plan("full", f"the log's clock went back or appeared ({old_clock} -> {as_of})")
    if len(manifest.parts) >= MAX_PARTS:
        return Plan("full", f"compaction: {len(manifest.parts)} parts")

    since = manifest.source_seq_through
    fresh, touched = _fresh(store, target, exclude, since, through)
    clock_moved = as_of is not None and as_of != old_clock
    if not fresh and not touched and not clock_moved:
        return Plan("unchanged", f"nothing new since accepted_seq {since}")

    old = _live_rows(folder, manifest, masks)
    pull = np.zeros(old.num_rows, dtype=bool)
    conversation = old.column("conversation").to_numpy()
    if touched:
        wanted = np.fromiter((conversation_key(o, c) for o, c in touched), np.int64, len(touched))
        pull |= np.isin(conversation, wanted) & (conversation != 0)
    if target.method == "embedding" and fresh:
        groups = _groups(store, fresh)
        if len(groups):
            group = old.column("group").to_numpy()
            pull |= np.isin(group, groups) & (group != 0)
    if clock_moved and old_clock is not None:
        window = ImplicitWindows.from_scoring(target.scoring).abandon_after_s
        undecided_after = time_micros(old_clock) - int(window * 1_000_000)
        pull |= (old.column("time").to_numpy() > undecided_after) & (conversation != 0)
    again = set(old.column("id").filter(pa.array(pull)).to_pylist())
    ids = sorted(set(fresh) | again)
    hashes = np.fromiter((parts.id_hash(i) for i in ids), np.int64, len(ids))
    superseded = hashes[np.isin(hashes, old.column("id_hash").to_numpy())]
    reason = (f"{len(fresh):,} new or updated rows since accepted_seq {since}, {len(touched):,} conversations "
              f"they touch{', the clock moved on' if clock_moved else ''}: {len(ids):,} rows to score, "
              f"{len(superseded):,} of them scored before")
    return Plan("incremental", reason, ids, superseded, len(fresh))


def _fresh(store: st.Store, target: Target, exclude: list[str], since: int, through: int) -> tuple[list[str], set]:
    """Ids of the target's rows in (since, through], and the conversations of any task's rows in that range."""
    acc = st.accepted
    query = sa.select(acc.c.id, acc.c.task, acc.c.org_id, acc.c.conversation_id).where(
        acc.c.accepted_seq > since, acc.c.accepted_seq <= through)
    if target.tenants is not None:
        query = query.where(acc.c.org_id.in_(list(target.tenants)))
    if exclude:
        query = query.where(acc.c.org_id.not_in(exclude))
    tasks = set(target.tasks)
    fresh, touched = [], set()
    with store.engine.connect() as conn:
        for rid, task, org, conversation in conn.execution_options(yield_per=10_000).execute(query):
            if task in tasks:
                fresh.append(rid)
            if conversation:
                touched.add((org, conversation))
    return sorted(fresh), touched


def _live_rows(folder: Path, manifest: parts.Manifest, masks: parts.Masks) -> pa.Table:
    columns = ["id", "id_hash", "conversation", "group", "time"]
    tables = [parts.read_rows_table(folder, p, columns).filter(pa.array(masks.rows[p])) for p in manifest.parts]
    return pa.concat_tables(tables) if tables else parts.ROW_SCHEMA.empty_table().select(columns)


def _groups(store: st.Store, ids: list[str]) -> np.ndarray:
    """The saved-vs-skipped group hashes of these rows (embedding targets pair across conversations)."""
    from pipeline.curation.curate import fetch_records
    from pipeline.curation.pairs import group_hash, saved_skipped_key

    out = []
    for chunk in st.chunks(ids, 2_000):
        for record in fetch_records(store, chunk).values():
            try:
                key = saved_skipped_key(record)
            except (KeyError, TypeError, AttributeError):
                continue
            if key is not None:
                out.append(group_hash(key))
    return np.array(out, dtype=np.int64)
