"""One target's accepted interactions → scored examples and pairs (the body of `scored_examples`).

Streaming, in bounded memory: one pass over the target's accepted interactions (SQL-filtered by
task and tenant) scores each record, writes every exportable example to a candidates file and
keeps only small keys in memory (dedup hash, 256-byte signature, score); edit pairs are written on
the way. Then the duplicates are collapsed by those keys, the candidates file is copied to
`examples.parquet` without the dropped rows, and the two-interaction pairs (regenerated,
saved vs skipped) are joined by fetching only their records by id. Before the pass, outcomes the
log implies (`implicit`: abandoned, regenerated) are inferred conversation by conversation
(`store_inferred`) and weighed where a record has no explicit outcome.

Every record read ends in exactly one place: kept, or dropped with a reason in `DROP_REASONS`;
`CurationReport.counts_add_up` holds or the run fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from pipeline.core import store as st
from pipeline.core.artifacts import EXAMPLE_COLUMNS, PAIR_COLUMNS, scored_dir
from pipeline.core.canonical import sha1
from pipeline.core.contract import latest_feedback
from pipeline.core.targets import ScoringConfig, Target
from pipeline.curation import dedup, pairs
from pipeline.curation.implicit import (
    ImplicitWindows,
    Inferred,
    effective_outcome,
    infer_conversation,
    parse_time,
)
from pipeline.curation.scoring import SOURCE_RANK, Scored, score_interaction

STAGE = "scored_examples"
DROP_REASONS = ("unreadable_record", "empty_completion", "below_threshold", "duplicate_prompt")
PAIR_SOURCES = ("edit", "regenerated", "saved_vs_skipped")
EXAMPLES_FILE = "examples.parquet"
PAIRS_FILE = "pairs.parquet"
CANDIDATES_FILE = ".candidates.parquet"
BUCKETS = 10  # score buckets 0–1 … 9–10 for the distribution
PREVIEW_ROWS = 10

EXAMPLE_SCHEMA = pa.schema([(c, pa.float64() if c == "score" else pa.string()) for c in EXAMPLE_COLUMNS])
PAIR_SCHEMA = pa.schema([(c, pa.float64() if c == "score" else pa.string()) for c in PAIR_COLUMNS])


@dataclass
class CurationReport:
    """What one run did; `read == kept + sum(dropped.values())` always holds."""

    target: str
    read: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    duplicates: dict[str, int] = field(default_factory=lambda: {"exact": 0, "near": 0})
    pairs: Counter = field(default_factory=Counter)
    #: pairs not written: duplicate_pair, identical_sides, missing_record
    pairs_skipped: Counter = field(default_factory=Counter)
    scored_histogram: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    kept_histogram: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    kept_sources: Counter = field(default_factory=Counter)
    kept_tasks: Counter = field(default_factory=Counter)
    excluded_tenants: list[str] = field(default_factory=list)
    preview: list[dict[str, Any]] = field(default_factory=list)
    examples_path: Path | None = None
    pairs_path: Path | None = None
    #: wall seconds per phase: score (read, score, write candidates), dedup, write (kept examples), pairs
    seconds: dict[str, float] = field(default_factory=dict)
    #: the store's `accepted_seq` this run read through: what the retraining sensor counts new examples from
    source_seq_through: int = 0
    #: records read whose outcome is explicit / inferred from the log (`implicit`), by inferred outcome
    outcomes_explicit: int = 0
    outcomes_inferred: Counter = field(default_factory=Counter)
    #: the log's clock the inference judged silences by (newest accepted `occurred_at`); None: nothing inferred
    implicit_as_of: str | None = None

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    @property
    def counts_add_up(self) -> bool:
        return self.read == self.kept + self.dropped_total

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "read": self.read,
            "kept": self.kept,
            "dropped": {reason: self.dropped.get(reason, 0) for reason in DROP_REASONS},
            "duplicates": dict(self.duplicates),
            "pairs": {source: self.pairs.get(source, 0) for source in PAIR_SOURCES},
            "pairs_skipped": dict(sorted(self.pairs_skipped.items())),
            "kept_by_completion_source": dict(sorted(self.kept_sources.items())),
            "kept_by_task": dict(sorted(self.kept_tasks.items())),
            "outcomes": {
                "explicit": self.outcomes_explicit,
                **{f"inferred_{o}": self.outcomes_inferred.get(o, 0) for o in ("abandoned", "regenerated")},
            },
            "implicit_as_of": self.implicit_as_of,
            "seconds": {phase: round(s, 3) for phase, s in self.seconds.items()},
        }


def bucket(score: float) -> int:
    return min(int(score), BUCKETS - 1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NO_TURN = -(2**63)


def time_micros(occurred_at: str) -> int:
    """A contract timestamp as microseconds since 1970 (UTC): what the in-memory indexes hold, 8 bytes a row."""
    return (parse_time(occurred_at) - _EPOCH) // timedelta(microseconds=1)


def conversation_key(org: str, conversation: str) -> int:
    """A 64-bit key for (tenant, conversation): the last-turn index keeps it instead of two strings."""
    digest = hashlib.blake2b(f"{org}\x1f{conversation}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def _conversational(query: sa.Select, tenants: Iterable[str] | None, exclude: Iterable[str]) -> sa.Select:
    """The query limited to accepted rows with a conversation, within these tenants, without the excluded."""
    acc = st.accepted
    query = query.where(acc.c.conversation_id.is_not(None))
    if tenants is not None:
        query = query.where(acc.c.org_id.in_(list(tenants)))
    excluded = list(exclude)
    if excluded:
        query = query.where(acc.c.org_id.not_in(excluded))
    return query


def conversation_last_turns(
    store: st.Store, tenants: Iterable[str] | None, exclude: Iterable[str]
) -> dict[int, int]:
    """`conversation_key` → `time_micros` of its latest accepted turn, any task, for multi-turn conversations.

    Read in SQL within the target's tenants only, so a per-tenant target reads no other tenant;
    one sorted scan (no self-join), grouped here, keeping only conversations of two turns or more.
    """
    acc = st.accepted
    query = _conversational(sa.select(acc.c.org_id, acc.c.conversation_id, acc.c.occurred_at), tenants, exclude)
    with store.engine.connect() as conn:
        rows = conn.execution_options(yield_per=10_000).execute(query.order_by(acc.c.org_id, acc.c.conversation_id))
        return _last_turns(rows)


def last_turns_query(org: str, conversations: list[str]) -> sa.Select:
    """The turns of some of one tenant's conversations: an index search each (ix_fw_accepted_interactions_conversation)."""
    acc = st.accepted
    return (sa.select(acc.c.org_id, acc.c.conversation_id, acc.c.occurred_at)
            .where(acc.c.org_id == org, acc.c.conversation_id.in_(conversations))
            .order_by(acc.c.org_id, acc.c.conversation_id))


def last_turns_of(store: st.Store, records: Iterable[dict[str, Any]]) -> dict[int, int]:
    """`conversation_last_turns` for the conversations of these records only (any task, any time).

    What a tick that scores only the new rows needs: it reads their conversations, not every
    conversation of the store. The records' tenants already passed the target's tenant filters.
    """
    wanted: dict[str, set[str]] = {}
    for record in records:
        if record.get("conversation_id"):
            wanted.setdefault(record["org_id"], set()).add(record["conversation_id"])
    last: dict[int, int] = {}
    with store.engine.connect() as conn:
        for org, conversations in sorted(wanted.items()):
            for chunk in st.chunks(sorted(conversations), 900):
                last.update(_last_turns(conn.execute(last_turns_query(org, chunk))))
    return last


def _last_turns(rows: Iterable[tuple[str, str, str]]) -> dict[int, int]:
    """`conversation_key` → latest `time_micros`, for conversations of two turns or more; rows sorted by both.

    Two ints a conversation (not two strings and a timestamp string): at a million interactions this
    index is a few tens of MB, not a few hundred.
    """
    last: dict[int, int] = {}
    current, turns, latest = None, 0, _NO_TURN
    for org, conversation, occurred in rows:
        if (org, conversation) != current:
            if turns > 1:
                last[conversation_key(*current)] = latest
            current, turns, latest = (org, conversation), 0, _NO_TURN
        turns += 1
        latest = max(latest, time_micros(occurred))
    if turns > 1:
        last[conversation_key(*current)] = latest
    return last


def store_clock(store: st.Store) -> str | None:
    """The log's own clock: the newest `occurred_at` among accepted interactions (None for an empty store).

    Computed in SQL on the timestamp with a zero fraction written out, so text order is time order; re-runs
    and backfills of the same log infer the same outcomes whatever the wall clock says.
    """
    occurred = st.accepted.c.occurred_at
    key = sa.case((occurred.contains("."), occurred), else_=sa.func.substr(occurred, 1, 19) + ".000000Z")
    with store.engine.connect() as conn:
        newest = conn.execute(sa.select(sa.func.max(key))).scalar()
    return newest.replace(".000000Z", "Z") if newest else None  # in the contract's form again


def store_inferred(
    store: st.Store, target: Target, as_of: str | None, *, tenants: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None, batch_size: int = 2_000,
) -> dict[str, Inferred]:
    """id -> `Inferred` for the target's accepted interactions, one conversation in memory at a time.

    Reads the conversational rows (any task: a later turn of another task still continues the
    conversation) of the target's tenants — `tenants` / `exclude` override the target's, e.g. with
    the opted-out tenants added — sorted by (org, conversation, occurred_at) in SQL, `yield_per`,
    and keeps only the inferences for the target's tasks. Nothing when `scoring.infer_implicit` is
    off, for embedding targets (a retrieval session surfaces several items under one query: a
    repeated prompt there is the next item, not a regeneration, and items are judged by their
    actions), or without a clock.
    """
    if not target.scoring.infer_implicit or target.method == "embedding" or as_of is None:
        return {}
    windows = ImplicitWindows.from_scoring(target.scoring)
    tenants = target.tenants if tenants is None else tenants
    exclude = target.exclude_tenants if exclude is None else exclude
    tasks = set(target.tasks)
    acc = st.accepted
    query = _conversational(sa.select(acc.c.org_id, acc.c.conversation_id, acc.c.record), tenants, exclude)
    query = query.order_by(acc.c.org_id, acc.c.conversation_id, acc.c.occurred_at)
    out: dict[str, Inferred] = {}
    current, turns = None, []

    def flush() -> None:
        ours = {t["id"] for t in turns if t.get("task") in tasks}
        if ours:
            out.update((rid, inf) for rid, inf in infer_conversation(turns, windows, as_of).items() if rid in ours)
        turns.clear()

    with store.engine.connect() as conn:
        for org, conversation, raw in conn.execution_options(yield_per=batch_size).execute(query):
            if (org, conversation) != current:
                flush()
                current = (org, conversation)
            turns.append(json.loads(raw))
    flush()
    return out


def continuation(last_turn: dict[int, int]) -> Callable[[dict[str, Any]], bool]:
    """`record -> bool`: whether a later turn of the record's conversation exists (from `conversation_last_turns`)."""

    def continued(record: dict[str, Any]) -> bool:
        conversation = record.get("conversation_id")
        if not conversation:
            return False
        latest = last_turn.get(conversation_key(record["org_id"], conversation), _NO_TURN)
        return time_micros(record["occurred_at"]) < latest

    return continued


def prompt_key(record: dict[str, Any], embedding: bool) -> tuple[bytes, str, str]:
    """(exact dedup key, normalised said, normalised context) of a record's prompt, as dedup compares them."""
    said, context = dedup.prompt_parts(record["messages"], record.get("context"), record["response"] if embedding else None)
    said, context = dedup.normalize_text(said), dedup.normalize_text(context)
    return dedup.exact_key(record["task"], said, context), said, context


def fetch_records(store: st.Store, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Accepted records by id (for the partners of two-interaction pairs)."""
    out: dict[str, dict[str, Any]] = {}
    wanted = sorted(set(ids))
    with store.engine.connect() as conn:
        for start in range(0, len(wanted), 900):
            chunk = wanted[start : start + 900]
            for row in conn.execute(sa.select(st.accepted.c.id, st.accepted.c.record).where(st.accepted.c.id.in_(chunk))):
                out[row.id] = json.loads(row.record)
    return out


def example_row(record: dict[str, Any], scored: Scored) -> dict[str, Any]:
    """One row of EXAMPLE_COLUMNS."""
    return {
        "example_id": record["id"],
        "org_id": record["org_id"],
        "user_id": record.get("user_id"),
        "conversation_id": record.get("conversation_id"),
        "group_id": pairs.group_id(record),
        "task": record["task"],
        "occurred_at": record["occurred_at"],
        "system_prompt": record.get("system_prompt"),
        "messages": pairs.messages_json(record["messages"]),
        "response_format": record.get("response_format") or "text",
        "response": record["response"],
        "completion": scored.completion,
        "completion_source": scored.completion_source,
        "score": float(scored.score),
        "score_reasons": json.dumps(scored.reasons, ensure_ascii=False),
        "context": json.dumps(record.get("context") or {}, ensure_ascii=False, sort_keys=True),
    }


class _ParquetOut:
    """Rows appended in batches to a hidden temp file, moved into place by `commit` (atomic)."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.schema = schema
        self.writer = pq.ParquetWriter(self.tmp, schema, compression="zstd")
        self.rows = 0
        self.done = False

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.write_table(pa.Table.from_pylist(rows, schema=self.schema))

    def write_table(self, table: pa.Table) -> None:
        if table.num_rows:
            self.writer.write_table(table)
            self.rows += table.num_rows

    def commit(self) -> Path:
        self.writer.close()
        os.replace(self.tmp, self.path)
        self.done = True
        return self.path

    def abort(self) -> None:
        if self.done:
            return
        try:
            self.writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)


@dataclass
class Candidates:
    """The small per-example keys dedup needs, for every exportable example, in file order.

    `add` one example at a time, `seal_batch` after each batch (signatures are computed per batch,
    in numpy), then `collapse`: what `scored_examples` keeps, and what a family counts per tenant.
    """

    # typed arrays, 8 bytes or less a value (a list of Python objects costs 30-100 bytes an entry)
    exact: array = field(default_factory=lambda: array("q"))  # the first 8 bytes of the 20-byte exact key
    namespaces: array = field(default_factory=lambda: array("Q"))
    scores: array = field(default_factory=lambda: array("d"))
    ranks: array = field(default_factory=lambda: array("b"))
    times: array = field(default_factory=lambda: array("q"))  # time_micros
    signatures: list[np.ndarray] = field(default_factory=list)
    _near_said: list[str] = field(default_factory=list)
    _near_context: list[str] = field(default_factory=list)

    def add(self, record: dict[str, Any], scored: Scored, exact: bytes, said: str, context: str) -> None:
        self._near_said.append(dedup.near_text(said))
        self._near_context.append(dedup.near_text(context))
        self.exact.append(int.from_bytes(exact[:8], "little", signed=True))
        self.namespaces.append(dedup.namespace(record["task"]))
        self.scores.append(scored.score)
        self.ranks.append(SOURCE_RANK[scored.completion_source])
        self.times.append(time_micros(record["occurred_at"]))

    def seal_batch(self) -> None:
        self.signatures.append(dedup.prompt_signatures(self._near_said, self._near_context))
        self._near_said, self._near_context = [], []

    def best_first(self) -> list[int]:
        """Higher score, then label > edit > response, then newest, then file (id) order."""
        order = sorted(range(len(self.scores)), key=self.times.__getitem__, reverse=True)
        order.sort(key=lambda i: (-self.scores[i], self.ranks[i]))
        return order

    def collapse(self, threshold: float) -> dedup.Collapsed:
        """Exact and near duplicates collapsed to the best of each (see `dedup.collapse`)."""
        if self._near_said:
            self.seal_batch()
        sigs = np.concatenate(self.signatures) if self.scores else dedup.prompt_signatures([], [])
        return dedup.collapse(self.exact, sigs, np.array(self.namespaces, dtype=np.uint64), self.best_first(), threshold)


def curate_target(
    store: st.Store, target: Target, *, batch_size: int = 1_000, log: Callable[[str], None] | None = None
) -> CurationReport:
    """Score, label, dedup and pair one target's accepted interactions; write examples and pairs."""
    log = log or (lambda _msg: None)
    weights = target.scoring
    report = CurationReport(target.name)
    clock = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        report.seconds[phase] = now - clock
        clock = now

    out_dir = scored_dir(target.name)
    opted_out = store.opted_out_orgs()
    exclude = sorted(set(target.exclude_tenants) | opted_out)
    report.excluded_tenants = sorted(opted_out - set(target.exclude_tenants))
    last_turn = conversation_last_turns(store, target.tenants, exclude)
    embedding = target.method == "embedding"
    regenerations = pairs.PairIndex("regenerated")
    saved_skipped = pairs.PairIndex("saved_vs_skipped")
    seen_pairs: set[int] = set()
    candidates = Candidates()
    cand_path = out_dir / CANDIDATES_FILE
    cand_out = _ParquetOut(cand_path, EXAMPLE_SCHEMA)
    pairs_out = _ParquetOut(out_dir / PAIRS_FILE, PAIR_SCHEMA)
    unreadable: list[st.QuarantineRow] = []

    continued = continuation(last_turn)
    report.source_seq_through = store.accepted_through()  # rows accepted meanwhile wait for the next run
    if target.scoring.infer_implicit and not embedding:
        report.implicit_as_of = store_clock(store)
    inferred = store_inferred(store, target, report.implicit_as_of, exclude=exclude)

    try:
        for batch in store.iter_accepted(target.tasks, target.tenants, exclude, batch_size=batch_size,
                                         through_seq=report.source_seq_through):
            rows: list[dict[str, Any]] = []
            pair_rows: list[dict[str, Any]] = []
            for record in batch:
                report.read += 1
                try:
                    latest = latest_feedback(record.get("feedback") or [])
                    implied = inferred.get(record["id"])
                    scored = score_interaction(record, weights, conversation_continued=continued(record), latest=latest,
                                               inferred=implied)
                    exportable = scored.completion.strip() and scored.score >= weights.export_threshold
                    if exportable:  # only these need their row and dedup keys
                        row = example_row(record, scored)
                        exact, said, context = prompt_key(record, embedding)
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    report.dropped["unreadable_record"] += 1
                    rid = str(record.get("id", "?")) if isinstance(record, dict) else "?"
                    unreadable.append(st.QuarantineRow(
                        STAGE, "interaction", rid, "unreadable_record",
                        f"target {target.name}: cannot score the accepted record: {type(exc).__name__}: {exc}",
                        json.dumps(record, default=str)[: st.RAW_PREVIEW_CHARS]))
                    continue
                report.scored_histogram[bucket(scored.score)] += 1
                outcome, outcome_source = effective_outcome(latest, implied)
                if outcome_source == "explicit":
                    report.outcomes_explicit += 1
                elif outcome_source == "inferred":
                    report.outcomes_inferred[outcome] += 1
                _index_pairs(record, latest, scored, embedding, regenerations, saved_skipped, pair_rows, outcome)
                if not scored.completion.strip():
                    report.dropped["empty_completion"] += 1
                elif not exportable:
                    report.dropped["below_threshold"] += 1
                else:
                    rows.append(row)
                    candidates.add(record, scored, exact, said, context)
            cand_out.write_rows(rows)
            candidates.seal_batch()
            _write_pairs(pairs_out, pair_rows, seen_pairs, report)
            log(f"{target.name}: read {report.read:,} interactions")
        cand_out.commit()
        if unreadable:
            with store.engine.begin() as conn:
                store.quarantine_rows(conn, unreadable)
        lap("score")

        # ------------------------------------------------------------ collapse duplicates
        collapsed = candidates.collapse(weights.near_duplicate_threshold)
        report.duplicates = {"exact": collapsed.exact, "near": collapsed.near}
        report.dropped["duplicate_prompt"] += collapsed.exact + collapsed.near
        del candidates
        lap("dedup")
        report.examples_path = _copy_kept(cand_path, out_dir / EXAMPLES_FILE, collapsed.keep, report, batch_size)
        lap("write")

        # ------------------------------------------------------------ two-interaction pairs
        for index in (regenerations, saved_skipped):
            _join_pairs(store, index, weights, continued, inferred, pairs_out, seen_pairs, report)
        report.pairs_path = pairs_out.commit()
        lap("pairs")
    except BaseException:
        cand_out.abort()
        pairs_out.abort()
        raise
    finally:
        cand_path.unlink(missing_ok=True)
    if not report.counts_add_up:
        raise RuntimeError(
            f"scored_examples for {target.name}: counts do not add up: read {report.read} != kept {report.kept} "
            f"+ dropped {dict(report.dropped)}"
        )
    return report


def _index_pairs(
    record: dict[str, Any], latest: dict[str, Any], scored: Scored, embedding: bool,
    regenerations: pairs.PairIndex, saved_skipped: pairs.PairIndex, pair_rows: list[dict[str, Any]],
    outcome: str | None,
) -> None:
    """Emit the record's edit pair; remember it as a side of a two-interaction pair.

    `outcome` is the effective one (`implicit.effective_outcome`): an inferred regeneration followed
    by an accepted turn makes the same pair an explicit one does.
    """
    if embedding:
        action = latest.get("action")
        if action in pairs.POSITIVE_ACTIONS or action in pairs.NEGATIVE_ACTIONS:
            key = pairs.saved_skipped_key(record)
            if key is not None:
                saved_skipped.add(key, record["id"], chosen=action in pairs.POSITIVE_ACTIONS)
        return
    row = pairs.edit_pair(record, latest, scored.score)
    if row is not None:
        pair_rows.append(row)
    if outcome == "regenerated" or outcome in pairs.ACCEPTED_OUTCOMES:
        key = pairs.regeneration_key(record)
        if key is not None:
            regenerations.add(key, record["id"], chosen=outcome != "regenerated")


def _write_pairs(out: _ParquetOut, rows: list[dict[str, Any]], seen: set[int], report: CurationReport) -> None:
    fresh = []
    for row in rows:
        if not pairs.differs(row["chosen"], row["rejected"]):
            report.pairs_skipped["identical_sides"] += 1
            continue
        key = int(sha1(f"{row['messages']}\x1f{row['chosen']}\x1f{row['rejected']}")[:16], 16)  # 64 bits
        if key in seen:
            report.pairs_skipped["duplicate_pair"] += 1
            continue
        seen.add(key)
        report.pairs[row["source"]] += 1
        fresh.append(row)
    out.write_rows(fresh)


def _join_pairs(
    store: st.Store, index: pairs.PairIndex, weights: ScoringConfig, continued: Callable[[dict[str, Any]], bool],
    inferred: dict[str, Inferred], out: _ParquetOut, seen: set[int], report: CurationReport, chunk: int = 1_000,
) -> None:
    plan = index.plan()
    index.groups.clear()
    for start in range(0, len(plan), chunk):
        part = plan[start : start + chunk]
        records = fetch_records(store, [i for pair in part for i in pair])
        rows = []
        for chosen_id, rejected_id in part:
            chosen, rejected = records.get(chosen_id), records.get(rejected_id)
            if chosen is None or rejected is None:  # removed since it was read (e.g. a tenant opted out)
                report.pairs_skipped["missing_record"] += 1
                continue
            scored = score_interaction(chosen, weights, conversation_continued=continued(chosen),
                                       inferred=inferred.get(chosen_id))
            if index.source == "regenerated":
                rows.append(pairs.regenerated_pair(chosen, scored.completion, scored.score, rejected))
            else:
                rows.append(pairs.saved_skipped_pair(chosen, scored.score, rejected))
        _write_pairs(out, rows, seen, report)


def _copy_kept(cand_path: Path, path: Path, keep: np.ndarray, report: CurationReport, batch_size: int) -> Path:
    """Copy the kept candidate rows to the examples file; tally what was kept."""
    out = _ParquetOut(path, EXAMPLE_SCHEMA)
    try:
        offset = 0
        for batch in pq.ParquetFile(cand_path).iter_batches(batch_size=batch_size):
            mask = keep[offset : offset + batch.num_rows]
            offset += batch.num_rows
            table = pa.Table.from_batches([batch]).filter(pa.array(mask))
            out.write_table(table)
            for score in table.column("score").to_pylist():
                report.kept_histogram[bucket(score)] += 1
            report.kept_sources.update(table.column("completion_source").to_pylist())
            report.kept_tasks.update(table.column("task").to_pylist())
            if len(report.preview) < PREVIEW_ROWS:
                report.preview.extend(table.slice(0, PREVIEW_ROWS - len(report.preview)).to_pylist())
        report.kept = out.rows
        return out.commit()
    except BaseException:
        out.abort()
        raise
