"""One target's accepted interactions → scored examples and pairs (the body of `scored_examples`).

Streaming, in bounded memory: one pass over the interactions to score (SQL-filtered by task and
tenant) scores each record, writes every exportable example to the run's part (`parts`) and keeps
only small keys in memory (dedup hash, 256-byte signature, score); pairs are written on the way
and the two-interaction pairs (regenerated, saved vs skipped) are joined by fetching only their
records by id. Before the pass, outcomes the log implies (`implicit`: abandoned, regenerated) are
inferred conversation by conversation (`store_inferred`) and weighed where a record has no
explicit outcome.

Which interactions a run scores is `incremental.plan`'s call: all of them the first time, then
only what new data changed. `combine` collapses duplicates over every live candidate of every
part and tallies the counts.

Every record read ends in exactly one place: kept, or dropped with a reason in `DROP_REASONS`;
`CurationReport.counts_add_up` holds or the run fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
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
from pipeline.core.artifacts import scored_dir
from pipeline.core.canonical import sha1
from pipeline.core.contract import latest_feedback
from pipeline.core.targets import ScoringConfig, Target
from pipeline.curation import dedup, incremental, pairs, parts
from pipeline.curation.implicit import (
    ImplicitWindows,
    Inferred,
    effective_outcome,
    infer_conversation,
    parse_time,
)
from pipeline.curation.parts import EXAMPLE_SCHEMA, PAIR_SCHEMA, id_hash
from pipeline.curation.scoring import SOURCE_RANK, Scored, score_interaction

STAGE = "scored_examples"
DROP_REASONS = ("unreadable_record", "empty_completion", "below_threshold", "duplicate_prompt")
PAIR_SOURCES = parts.PAIR_SOURCES
BUCKETS = 10  # score buckets 0–1 … 9–10 for the distribution
PREVIEW_ROWS = 10


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
    #: the scored folder (`parts`): read it with `parts.kept_example_tables` / `parts.live_pair_tables`
    scored_path: Path | None = None
    #: wall seconds per phase: score (read, score, write candidates), dedup, write (kept examples), pairs
    seconds: dict[str, float] = field(default_factory=dict)
    #: the store's `accepted_seq` this run read through: what the retraining sensor counts new examples from
    source_seq_through: int = 0
    #: records read whose outcome is explicit / inferred from the log (`implicit`), by inferred outcome
    outcomes_explicit: int = 0
    outcomes_inferred: Counter = field(default_factory=Counter)
    #: the log's clock the inference judged silences by (newest accepted `occurred_at`); None: nothing inferred
    implicit_as_of: str | None = None
    #: what this run did: `full`, `incremental` or `unchanged` (`incremental.plan`), and why
    mode: str = "full"
    mode_reason: str = ""
    #: interactions this run read and scored (all of them in a full run, what changed in an incremental one)
    scored_now: int = 0
    #: rows of earlier runs scored again by this one (their earlier rows are masked out)
    superseded: int = 0
    #: parts the result is made of (one per run that scored something, since the last full run)
    parts: int = 0

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
            "run": {"mode": self.mode, "reason": self.mode_reason, "scored_now": self.scored_now,
                    "superseded": self.superseded, "parts": self.parts},
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
    return last_turns_in(store, wanted)


def last_turns_in(store: st.Store, wanted: dict[str, set[str]]) -> dict[int, int]:
    """`conversation_last_turns` for these conversations (org -> conversation ids) only."""
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


def store_clock(store: st.Store, since_seq: int | None = None) -> str | None:
    """The log's own clock: the newest `occurred_at` among accepted interactions (None for an empty store).

    Computed in SQL on the timestamp with a zero fraction written out, so text order is time order; re-runs
    and backfills of the same log infer the same outcomes whatever the wall clock says. `since_seq`
    looks at rows accepted after it only (an index search): what moved the clock since a run.
    """
    occurred = st.accepted.c.occurred_at
    key = sa.case((occurred.contains("."), occurred), else_=sa.func.substr(occurred, 1, 19) + ".000000Z")
    query = sa.select(sa.func.max(key))
    if since_seq is not None:
        query = query.where(st.accepted.c.accepted_seq > since_seq)
    with store.engine.connect() as conn:
        newest = conn.execute(query).scalar()
    return newest.replace(".000000Z", "Z") if newest else None  # in the contract's form again


def clock_since(store: st.Store, earlier: str, since_seq: int) -> str:
    """The clock now, from the clock of an earlier run and the rows accepted since (no scan of the whole log).

    Rows only join the log or change (and a changed row is accepted again); one that left it, an
    opted-out tenant's, changes the fingerprint and with it makes the next run a full one.
    """
    newer = store_clock(store, since_seq)
    return newer if newer is not None and time_micros(newer) > time_micros(earlier) else earlier


def store_inferred(
    store: st.Store, target: Target, as_of: str | None, *, tenants: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None, batch_size: int = 2_000,
    conversations: dict[str, set[str]] | None = None,
) -> dict[str, Inferred]:
    """id -> `Inferred` for the target's accepted interactions, one conversation in memory at a time.

    Reads the conversational rows (any task: a later turn of another task still continues the
    conversation) of the target's tenants — `tenants` / `exclude` override the target's, e.g. with
    the opted-out tenants added — sorted by (org, conversation, occurred_at) in SQL, `yield_per`,
    and keeps only the inferences for the target's tasks; `conversations` (org -> ids) reads only
    those (an index search each: what an incremental run needs). Nothing when `scoring.infer_implicit` is
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
    columns = sa.select(acc.c.org_id, acc.c.conversation_id, acc.c.record)
    order = (acc.c.org_id, acc.c.conversation_id, acc.c.occurred_at)
    if conversations is None:
        queries = [_conversational(columns, tenants, exclude).order_by(*order)]
    else:
        queries = [columns.where(acc.c.org_id == org, acc.c.conversation_id.in_(chunk)).order_by(*order)
                   for org, ids in sorted(conversations.items()) for chunk in st.chunks(sorted(ids), 900)]
    out: dict[str, Inferred] = {}
    current, turns = None, []

    def flush() -> None:
        ours = {t["id"] for t in turns if t.get("task") in tasks}
        if ours:
            out.update((rid, inf) for rid, inf in infer_conversation(turns, windows, as_of).items() if rid in ours)
        turns.clear()

    with store.engine.connect() as conn:
        for query in queries:
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


def iter_records(store: st.Store, ids: list[str], batch_size: int) -> Iterable[list[dict[str, Any]]]:
    """Accepted records by id, in the order given, a batch at a time (a row deleted meanwhile is skipped)."""
    for start in range(0, len(ids), batch_size):
        page = ids[start : start + batch_size]
        found = fetch_records(store, page)
        batch = [found[i] for i in page if i in found]
        if batch:
            yield batch


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
    id_hashes: array = field(default_factory=lambda: array("q"))  # parts.id_hash: the last tie-break
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
        self.id_hashes.append(id_hash(record["id"]))

    def seal_batch(self) -> None:
        self.signatures.append(dedup.prompt_signatures(self._near_said, self._near_context))
        self._near_said, self._near_context = [], []

    def arrays(self) -> dict[str, np.ndarray]:
        """The keys as numpy arrays (`parts.KEY_ARRAYS`): what a part keeps in keys.npz."""
        if self._near_said:
            self.seal_batch()
        return {
            "exact": np.array(self.exact, dtype=np.int64),
            "namespace": np.array(self.namespaces, dtype=np.uint64),
            "score": np.array(self.scores, dtype=np.float64),
            "rank": np.array(self.ranks, dtype=np.int8),
            "time": np.array(self.times, dtype=np.int64),
            "id_hash": np.array(self.id_hashes, dtype=np.int64),
            "signature": self._signatures(),
        }

    def _signatures(self) -> np.ndarray:
        """The batches' signatures as one array, each batch let go once copied (no second copy of them all)."""
        if not self.scores:
            return dedup.prompt_signatures([], [])
        out = np.empty((sum(len(s) for s in self.signatures), self.signatures[0].shape[1]), self.signatures[0].dtype)
        at = 0
        while self.signatures:
            chunk = self.signatures.pop(0)
            out[at : at + len(chunk)] = chunk
            at += len(chunk)
        self.signatures = [out]
        return out

    def collapse(self, threshold: float) -> dedup.Collapsed:
        """Exact and near duplicates collapsed to the best of each (see `collapse_keys`)."""
        return collapse_keys(self.arrays(), threshold)


def best_first(keys: dict[str, np.ndarray]) -> np.ndarray:
    """Higher score, then label > edit > response, then newest, then by id hash: one order, however the rows were split into parts."""
    return np.lexsort((keys["id_hash"], -keys["time"], keys["rank"], -keys["score"]))


def collapse_keys(keys: dict[str, np.ndarray], threshold: float) -> dedup.Collapsed:
    """`dedup.collapse` over candidates' key arrays (`Candidates.arrays`, or the live ones of every part)."""
    return dedup.collapse(keys["exact"], keys["signature"], keys["namespace"], best_first(keys), threshold)


def curate_target(
    store: st.Store, target: Target, *, batch_size: int = 1_000, log: Callable[[str], None] | None = None,
    full_refresh: bool = False, folder: Path | None = None,
) -> CurationReport:
    """Score, label, dedup and pair one target's accepted interactions; only what changed after the first run.

    The state lives in `folder` (default: the target's `scored/`).
    """
    from pipeline.curation.combine import combine

    log = log or (lambda _msg: None)
    report = CurationReport(target.name)
    clock = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        report.seconds[phase] = now - clock
        clock = now

    folder = scored_dir(target.name) if folder is None else folder
    folder.mkdir(parents=True, exist_ok=True)
    opted_out = store.opted_out_orgs()
    exclude = sorted(set(target.exclude_tenants) | opted_out)
    report.excluded_tenants = sorted(opted_out - set(target.exclude_tenants))
    embedding = target.method == "embedding"
    report.source_seq_through = store.accepted_through()  # rows accepted meanwhile wait for the next run
    fingerprint = incremental.fingerprint(target, exclude)
    state = None if full_refresh else parts.load(folder)
    if target.scoring.infer_implicit and not embedding:
        earlier = state[0] if state is not None and state[0].fingerprint == fingerprint else None
        if earlier is not None and earlier.implicit_as_of and report.source_seq_through >= earlier.source_seq_through:
            report.implicit_as_of = clock_since(store, earlier.implicit_as_of, earlier.source_seq_through)
        else:
            report.implicit_as_of = store_clock(store)
    plan = incremental.plan(store, target, folder, state, fingerprint, exclude, report.source_seq_through,
                            report.implicit_as_of, full_refresh=full_refresh)
    report.mode, report.mode_reason = plan.mode, plan.reason
    log(f"{target.name}: {plan.mode} run: {plan.reason}")
    if plan.mode == "full" or state is None:
        manifest, masks = parts.Manifest(fingerprint, 0, None), parts.Masks()
    else:
        manifest, masks = state
    lap("plan")

    if plan.mode != "unchanged":
        name = _next_part(manifest)
        out = parts.part_dir(folder, name)
        if plan.mode == "full":
            continued = continuation(conversation_last_turns(store, target.tenants, exclude))
            inferred = store_inferred(store, target, report.implicit_as_of, exclude=exclude)
            batches = store.iter_accepted(target.tasks, target.tenants, exclude, batch_size=batch_size,
                                          through_seq=report.source_seq_through)
        else:
            conversations = _conversations_of(store, plan.ids)
            continued = continuation(last_turns_in(store, conversations))
            inferred = store_inferred(store, target, report.implicit_as_of, exclude=exclude, conversations=conversations)
            batches = iter_records(store, plan.ids, batch_size)
        rows = _score_part(store, target, batches, out, continued, inferred, report, log)
        if plan.mode == "full":
            manifest.parts = []
            masks = parts.Masks()
        else:
            for old in manifest.parts:  # the rows scored again live on in the new part only
                hashes = parts.read_rows_table(folder, old, ["id_hash"]).column("id_hash").to_numpy()
                masks.rows[old] = masks.rows[old] & ~np.isin(hashes, plan.superseded)
            report.superseded = len(plan.superseded)
        manifest.parts.append(name)
        masks.rows[name] = np.ones(rows, dtype=bool)
    lap("score")

    manifest.fingerprint = fingerprint
    manifest.source_seq_through = report.source_seq_through
    manifest.implicit_as_of = report.implicit_as_of
    combine(folder, manifest, masks, target, report, lap)
    parts.save(folder, manifest, masks)
    report.parts = len(manifest.parts)
    report.scored_path = folder
    lap("save")
    if not report.counts_add_up:
        raise RuntimeError(
            f"scored_examples for {target.name}: counts do not add up: read {report.read} != kept {report.kept} "
            f"+ dropped {dict(report.dropped)}"
        )
    return report


def _next_part(manifest: parts.Manifest) -> str:
    """`part-<n>`: one more than the newest (a full run starts again from the number after the last)."""
    last = max((int(p.rsplit("-", 1)[1]) for p in manifest.parts), default=0)
    return f"part-{last + 1:06d}"


def _conversations_of(store: st.Store, ids: list[str]) -> dict[str, set[str]]:
    """org -> conversation ids of these rows (the conversations an incremental run reads turns of)."""
    out: dict[str, set[str]] = {}
    acc = st.accepted
    with store.engine.connect() as conn:
        for chunk in st.chunks(ids, 900):
            query = sa.select(acc.c.org_id, acc.c.conversation_id).where(acc.c.id.in_(chunk),
                                                                          acc.c.conversation_id.is_not(None))
            for org, conversation in conn.execute(query):
                out.setdefault(org, set()).add(conversation)
    return out


class _RowLog:
    """rows.parquet of a part, built a row at a time in typed arrays."""

    #: ids are moved into Arrow arrays this many at a time: a Python str per id costs about 60 bytes
    #: more, and long-lived small objects among each batch's decoded records keep the heap from shrinking
    ID_CHUNK = 4_096

    def __init__(self) -> None:
        self._ids: list[str] = []
        self._id_chunks: list[pa.Array] = []
        self.arrays = {name: array("q") for name in ("id_hash", "conversation", "group", "time")}
        self.codes = {name: array("b") for name in ("status", "bucket", "outcome")}

    def add(self, rid: str, conversation: int, group: int, at: int, status: int, bucket_: int, outcome: int) -> None:
        self._ids.append(rid)
        if len(self._ids) >= self.ID_CHUNK:
            self._flush_ids()
        for name, value in (("id_hash", id_hash(rid)), ("conversation", conversation), ("group", group), ("time", at)):
            self.arrays[name].append(value)
        for name, value in (("status", status), ("bucket", bucket_), ("outcome", outcome)):
            self.codes[name].append(value)

    def _flush_ids(self) -> None:
        self._id_chunks.append(pa.array(self._ids, pa.string()))
        self._ids = []

    def table(self) -> pa.Table:
        self._flush_ids()
        columns = {"id": pa.chunked_array(self._id_chunks, pa.string()).combine_chunks()}
        columns.update({name: pa.array(np.array(a, dtype=np.int64)) for name, a in self.arrays.items()})
        columns.update({name: pa.array(np.array(a, dtype=np.int8)) for name, a in self.codes.items()})
        return pa.table(columns, schema=parts.ROW_SCHEMA)


class _PairLog:
    """pairs.npz of a part: every pair built, written or skipped, with the two rows it joins."""

    def __init__(self) -> None:
        self.arrays = {name: array("q") for name in ("key", "a", "b")}
        self.codes = {name: array("b") for name in ("source", "status")}

    def add(self, key: int, a: str, b: str, source: str, status: str) -> None:
        for name, value in (("key", key), ("a", id_hash(a)), ("b", id_hash(b))):
            self.arrays[name].append(value)
        self.codes["source"].append(PAIR_SOURCES.index(source))
        self.codes["status"].append(parts.PAIR_STATUS.index(status))

    def as_arrays(self) -> dict[str, np.ndarray]:
        out = {name: np.array(a, dtype=np.int64) for name, a in self.arrays.items()}
        out.update({name: np.array(a, dtype=np.int8) for name, a in self.codes.items()})
        return out

OUTCOME_CODE = {name: i for i, name in enumerate(parts.OUTCOME)}


def outcome_code(outcome: str | None, source: str | None) -> int:
    """rows.parquet's `outcome` (`parts.OUTCOME`): explicit, inferred abandoned / regenerated, or 0 for none."""
    name = "explicit" if source == "explicit" else f"inferred_{outcome}" if source == "inferred" else None
    return OUTCOME_CODE.get(name, 0)


def _score_part(
    store: st.Store, target: Target, batches: Iterable[list[dict[str, Any]]], out: Path,
    continued: Callable[[dict[str, Any]], bool], inferred: dict[str, Inferred], report: CurationReport,
    log: Callable[[str], None],
) -> int:
    """Score these records into a new part folder `out` (written whole or not at all); returns the rows read."""
    weights = target.scoring
    embedding = target.method == "embedding"
    regenerations = pairs.PairIndex("regenerated")
    saved_skipped = pairs.PairIndex("saved_vs_skipped")
    candidates = Candidates()
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cand_out = _ParquetOut(tmp / parts.CANDIDATES, EXAMPLE_SCHEMA)
    pairs_out = _ParquetOut(tmp / parts.PAIRS, PAIR_SCHEMA)
    row_log, pair_log = _RowLog(), _PairLog()
    unreadable: list[st.QuarantineRow] = []
    try:
        for batch in batches:
            rows: list[dict[str, Any]] = []
            pair_rows: list[tuple[dict[str, Any], str, str]] = []
            for record in batch:
                report.scored_now += 1
                try:
                    latest = latest_feedback(record.get("feedback") or [])
                    implied = inferred.get(record["id"])
                    scored = score_interaction(record, weights, conversation_continued=continued(record), latest=latest,
                                               inferred=implied)
                    exportable = scored.completion.strip() and scored.score >= weights.export_threshold
                    if exportable:  # only these need their row and dedup keys
                        row = example_row(record, scored)
                        exact, said, context = prompt_key(record, embedding)
                    at = time_micros(record["occurred_at"])
                    conversation = record.get("conversation_id")
                    conv_key = conversation_key(record["org_id"], conversation) if conversation else 0
                    outcome, outcome_source = effective_outcome(latest, implied)
                    group = _index_pairs(record, latest, scored, embedding, regenerations, saved_skipped, pair_rows,
                                         outcome)
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    rid = str(record.get("id", "?")) if isinstance(record, dict) else "?"
                    row_log.add(rid, 0, 0, 0, STATUS_CODE["unreadable_record"], -1, 0)
                    unreadable.append(st.QuarantineRow(
                        STAGE, "interaction", rid, "unreadable_record",
                        f"target {target.name}: cannot score the accepted record: {type(exc).__name__}: {exc}",
                        json.dumps(record, default=str)[: st.RAW_PREVIEW_CHARS]))
                    continue
                code = outcome_code(outcome, outcome_source)
                if not scored.completion.strip():
                    status = "empty_completion"
                elif not exportable:
                    status = "below_threshold"
                else:
                    status = "candidate"
                    rows.append(row)
                    candidates.add(record, scored, exact, said, context)
                row_log.add(record["id"], conv_key, group, at, STATUS_CODE[status], bucket(scored.score), code)
            cand_out.write_rows(rows)
            candidates.seal_batch()
            _write_pairs(pairs_out, pair_rows, pair_log)
            log(f"{target.name}: read {report.scored_now:,} interactions")
        cand_out.commit()
        parts.write_arrays(tmp / parts.KEYS, candidates.arrays())
        del candidates
        for index in (regenerations, saved_skipped):
            _join_pairs(store, index, weights, continued, inferred, pairs_out, pair_log)
        pairs_out.commit()
        parts.write_arrays(tmp / parts.PAIR_KEYS, pair_log.as_arrays())
        pq.write_table(row_log.table(), tmp / parts.ROWS, compression="zstd")
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    except BaseException:
        cand_out.abort()
        pairs_out.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if unreadable:
        with store.engine.begin() as conn:
            store.quarantine_rows(conn, unreadable)
    return len(row_log.arrays["id_hash"])


STATUS_CODE = {name: i for i, name in enumerate(parts.STATUS)}


def _index_pairs(
    record: dict[str, Any], latest: dict[str, Any], scored: Scored, embedding: bool,
    regenerations: pairs.PairIndex, saved_skipped: pairs.PairIndex, pair_rows: list[tuple[dict[str, Any], str, str]],
    outcome: str | None,
) -> int:
    """Emit the record's edit pair; remember it as a side of a two-interaction pair; returns its group hash (0: none).

    `outcome` is the effective one (`implicit.effective_outcome`): an inferred regeneration followed
    by an accepted turn makes the same pair an explicit one does.
    """
    if embedding:
        action = latest.get("action")
        if action in pairs.POSITIVE_ACTIONS or action in pairs.NEGATIVE_ACTIONS:
            key = pairs.saved_skipped_key(record)
            if key is not None:
                saved_skipped.add(key, record["id"], chosen=action in pairs.POSITIVE_ACTIONS)
                return pairs.group_hash(key)
        return 0
    row = pairs.edit_pair(record, latest, scored.score)
    if row is not None:
        pair_rows.append((row, record["id"], record["id"]))
    if outcome == "regenerated" or outcome in pairs.ACCEPTED_OUTCOMES:
        key = pairs.regeneration_key(record)
        if key is not None:
            regenerations.add(key, record["id"], chosen=outcome != "regenerated")
            return pairs.group_hash(key)
    return 0


def pair_key(row: dict[str, Any]) -> int:
    """A pair's content as 64 bits (prompt, chosen, rejected): equal keys are the same pair, written once."""
    return int(sha1(f"{row['messages']}\x1f{row['chosen']}\x1f{row['rejected']}")[:16], 16) - 2**63


def _write_pairs(out: _ParquetOut, rows: list[tuple[dict[str, Any], str, str]], log_: _PairLog) -> None:
    fresh = []
    for row, a, b in rows:
        if not pairs.differs(row["chosen"], row["rejected"]):
            log_.add(0, a, b, row["source"], "identical_sides")
            continue
        log_.add(pair_key(row), a, b, row["source"], "written")
        fresh.append(row)
    out.write_rows(fresh)


def _join_pairs(
    store: st.Store, index: pairs.PairIndex, weights: ScoringConfig, continued: Callable[[dict[str, Any]], bool],
    inferred: dict[str, Inferred], out: _ParquetOut, log_: _PairLog, chunk: int = 1_000,
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
                log_.add(0, chosen_id, rejected_id, index.source, "missing_record")
                continue
            scored = score_interaction(chosen, weights, conversation_continued=continued(chosen),
                                       inferred=inferred.get(chosen_id))
            if index.source == "regenerated":
                rows.append((pairs.regenerated_pair(chosen, scored.completion, scored.score, rejected), chosen_id,
                             rejected_id))
            else:
                rows.append((pairs.saved_skipped_pair(chosen, scored.score, rejected), chosen_id, rejected_id))
        _write_pairs(out, rows, log_)
