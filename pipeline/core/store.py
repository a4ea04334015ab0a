"""The interaction store: the contract's three record kinds in SQL, plus Flywheel's own tables.

SQLite under `FLYWHEEL_HOME` by default, Postgres in production; the same SQLAlchemy Core code
serves both. Each source row keeps the record exactly as it arrived (`record`, JSON text) beside a
few key columns, so a record that breaks the contract can still be stored, counted and quarantined
later by `raw_interactions` with its reason.

Incremental reads use `seq`: every insert or update takes the next value of one counter
(`fw_counters`), so "what is new since the last materialization" is `seq > cursor`. Writers that
update rows in place must bump `seq` too (`flywheel import` does).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pipeline.core.canonical import canonical_json, now_iso, sha1
from pipeline.core.contract import Rejection, record_key
from pipeline.core.settings import mask_url, normalize_url

metadata = sa.MetaData()

# ------------------------------------------------------------------ source tables (the contract)
interactions = sa.Table(
    "interactions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("org_id", sa.Text, index=True),
    sa.Column("task", sa.Text, index=True),
    sa.Column("occurred_at", sa.Text),
    sa.Column("record", sa.Text, nullable=False),
    sa.Column("record_hash", sa.String(40), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False, index=True),
)
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("key", sa.String(40), primary_key=True),
    sa.Column("interaction_id", sa.Text, index=True),
    sa.Column("kind", sa.Text),
    sa.Column("occurred_at", sa.Text),
    sa.Column("record", sa.Text, nullable=False),
    sa.Column("record_hash", sa.String(40), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False, index=True),
)
organizations = sa.Table(
    "organizations",
    metadata,
    sa.Column("org_id", sa.Text, primary_key=True),
    sa.Column("record", sa.Text, nullable=False),
    sa.Column("record_hash", sa.String(40), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False, index=True),
)
counters = sa.Table(
    "fw_counters",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

# ------------------------------------------------------------------ Flywheel's own tables
accepted = sa.Table(
    "fw_accepted_interactions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("org_id", sa.Text, nullable=False),  # indexed first in ix_…_conversation
    sa.Column("task", sa.Text, nullable=False),  # indexed first in ix_…_task_seq
    sa.Column("user_id", sa.Text),
    sa.Column("conversation_id", sa.Text),
    sa.Column("occurred_at", sa.Text, nullable=False),
    sa.Column("response_format", sa.String(8), nullable=False),
    # the validated interaction with its validated feedback events under "feedback"
    sa.Column("record", sa.Text, nullable=False),
    sa.Column("accepted_seq", sa.BigInteger, nullable=False, index=True),
    # what is new for some tasks: `task IN (…) AND accepted_seq > watermark` is an index search per task
    # (with the task index alone SQLite visited every row of the tasks, each tick of the retraining sensor)
    sa.Index("ix_fw_accepted_interactions_task_seq", "task", "accepted_seq"),
    # the turns of a tenant's conversations, read from the index alone (no record text) and in order
    sa.Index("ix_fw_accepted_interactions_conversation", "org_id", "conversation_id", "occurred_at"),
)
quarantine = sa.Table(
    "fw_quarantine",
    metadata,
    sa.Column("stage", sa.String(40), primary_key=True),
    sa.Column("record_type", sa.String(20), primary_key=True),
    sa.Column("record_key", sa.Text, primary_key=True),
    sa.Column("reason", sa.String(60), nullable=False, index=True),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("raw", sa.Text),
    sa.Column("run_id", sa.Text),
    sa.Column("quarantined_at", sa.Text, nullable=False),
)

#: Every fine-tune job, any backend: the basis for evaluation and promotion.
model_registry = sa.Table(
    "fw_model_registry",
    metadata,
    sa.Column("job_id", sa.Text, primary_key=True),  # backend job id ("ftjob-…", "local-…", "hfjob-…")
    sa.Column("target", sa.Text, nullable=False, index=True),
    sa.Column("dataset_version", sa.Text, nullable=False, index=True),
    sa.Column("backend", sa.String(40), nullable=False),
    sa.Column("method", sa.String(20), nullable=False),
    sa.Column("base_model", sa.Text, nullable=False),
    sa.Column("hyperparameters", sa.Text, nullable=False),  # JSON
    sa.Column("status", sa.String(20), nullable=False, index=True),  # see backends.base.JobState
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    sa.Column("finished_at", sa.Text),
    sa.Column("trained_tokens", sa.BigInteger),
    sa.Column("cost_usd", sa.Float),
    sa.Column("result_model", sa.Text),  # provider model id or local path
    sa.Column("error", sa.Text),  # JSON {code, message, param}
    sa.Column("metrics", sa.Text),  # JSON: last train/valid loss, token accuracy, steps
    sa.Column("details", sa.Text),  # JSON: events, checkpoints, provider-specific fields
    # set when the model's tenant left its family (opted out, left the plan): never served or trained again
    sa.Column("retired_at", sa.Text),
    sa.Column("retired_reason", sa.Text),
)

#: Every change of what serves a target, and every decision not to change it: append-only.
#: `model` … `dataset_version` name the model the action is about (the promoted one, the refused
#: candidate of a `keep`, the model a `rollback` removed, the base model of `base`); `champion`,
#: `challenger`, `challenger_share` and `rollout_id` are the state after the action.
production_history = sa.Table(
    "fw_production_history",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("target", sa.Text, nullable=False, index=True),
    sa.Column("action", sa.String(24), nullable=False),  # promote_challenger|promote_champion|rollback|keep|base
    sa.Column("model", sa.Text),
    sa.Column("backend", sa.String(40)),
    sa.Column("job_id", sa.Text),
    sa.Column("dataset_version", sa.Text),
    sa.Column("evaluation", sa.Text),  # JSON: the comparison, gates and decision summary
    sa.Column("metrics", sa.Text),  # JSON: per-model metrics
    sa.Column("rollout_id", sa.Text, nullable=False),
    sa.Column("champion", sa.Text, nullable=False),  # JSON ModelRef
    sa.Column("challenger", sa.Text),  # JSON ModelRef or NULL
    sa.Column("challenger_share", sa.Float, nullable=False),
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("by", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)
#: What serves each target now (one row per target); the rollout file mirrors it.
rollouts = sa.Table(
    "fw_rollouts",
    metadata,
    sa.Column("target", sa.Text, primary_key=True),
    sa.Column("rollout_id", sa.Text, nullable=False),
    sa.Column("champion", sa.Text, nullable=False),  # JSON ModelRef
    sa.Column("challenger", sa.Text),  # JSON ModelRef or NULL
    sa.Column("challenger_share", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    sa.Column("history_id", sa.BigInteger, nullable=False),  # the history row that set this state
)
#: Columns added to a table after its first release: `create_schema` adds them to an older store.
ADDED_COLUMNS = {"fw_model_registry": ("retired_at", "retired_reason")}
#: Indexes of fw_accepted_interactions added after its first release: `create_schema` creates them in an older store (once;
#: minutes on a large Postgres table, which `CREATE INDEX` locks against writes meanwhile).
ADDED_INDEXES = ("ix_fw_accepted_interactions_task_seq", "ix_fw_accepted_interactions_conversation")

RAW_PREVIEW_CHARS = 2_000
SOURCE_TABLES = {"interaction": interactions, "feedback": feedback, "organization": organizations}
_KEY_COLUMN = {"interaction": "id", "feedback": "key", "organization": "org_id"}


@dataclass
class ImportCounts:
    """What an import did; `read == inserted + updated + unchanged + quarantined` always holds."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    blank_lines: int = 0  # not records: counted, otherwise ignored
    by_type: dict[str, int] = field(default_factory=dict)
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "quarantined": self.quarantined,
            "blank_lines": self.blank_lines,
            "by_type": dict(sorted(self.by_type.items())),
            "quarantined_by_reason": dict(sorted(self.quarantined_by_reason.items())),
        }


@dataclass(frozen=True)
class OrgProfile:
    """What the source says about one tenant: its plan and whether it opted out of training."""

    org_id: str
    plan: str | None
    training_opt_out: bool
    #: the organization record is not a JSON object (it then counts as opted out)
    malformed: bool = False


@dataclass(frozen=True)
class QuarantineRow:
    stage: str
    record_type: str
    record_key: str
    reason: str
    detail: str
    raw: str | None = None


class Store:
    """One SQL database holding the interaction log and Flywheel's tables."""

    def __init__(self, url: str, *, create: bool = True):
        self.url = normalize_url(url)
        kwargs: dict[str, Any] = {"future": True}
        if self.url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 60}
        self.engine = sa.create_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        if create:
            self.create_schema()

    # -------------------------------------------------------------- basics
    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)

    def create_schema(self) -> None:
        """Create every table that is missing; safe to call any number of times, concurrently."""
        try:
            metadata.create_all(self.engine, checkfirst=True)
        except sa.exc.IntegrityError:  # another process created it between check and create
            metadata.create_all(self.engine, checkfirst=True)
        self._add_missing_columns()
        self._add_missing_indexes()
        with self.engine.begin() as conn:
            exists = conn.execute(sa.select(counters.c.value).where(counters.c.name == "seq")).first()
            if exists is None:
                try:
                    conn.execute(counters.insert().values(name="seq", value=0))
                except sa.exc.IntegrityError:
                    pass

    def _add_missing_columns(self) -> None:
        """`ALTER TABLE … ADD COLUMN` for the columns of `ADDED_COLUMNS` that an older store lacks (nullable text)."""
        for table_name, names in ADDED_COLUMNS.items():
            have = {c["name"] for c in sa.inspect(self.engine).get_columns(table_name)}
            for name in names:
                if name in have:
                    continue
                column = metadata.tables[table_name].c[name]
                ddl = f"ALTER TABLE {table_name} ADD COLUMN {name} {column.type.compile(self.engine.dialect)}"
                try:
                    with self.engine.begin() as conn:
                        conn.execute(sa.text(ddl))
                except (sa.exc.OperationalError, sa.exc.ProgrammingError):  # added concurrently by another process
                    fresh = {c["name"] for c in sa.inspect(self.engine).get_columns(table_name)}
                    if name not in fresh:
                        raise

    def _add_missing_indexes(self) -> None:
        """`CREATE INDEX` for the indexes of `ADDED_INDEXES` that an older store lacks."""
        have = {ix["name"] for ix in sa.inspect(self.engine).get_indexes(accepted.name)}
        for index in accepted.indexes:
            if index.name in ADDED_INDEXES and index.name not in have:
                try:
                    index.create(self.engine, checkfirst=True)
                except (sa.exc.OperationalError, sa.exc.ProgrammingError):  # created concurrently by another process
                    if index.name not in {ix["name"] for ix in sa.inspect(self.engine).get_indexes(accepted.name)}:
                        raise

    def dispose(self) -> None:
        self.engine.dispose()

    def _insert(self, table: sa.Table):
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def _take_seq(self, conn: sa.Connection, n: int) -> int:
        """Reserve `n` sequence numbers; returns the first."""
        row = conn.execute(
            counters.update()
            .where(counters.c.name == "seq")
            .values(value=counters.c.value + n)
            .returning(counters.c.value)
        ).one()
        return int(row[0]) - n + 1

    def high_watermark(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(counters.c.value).where(counters.c.name == "seq")).scalar_one())

    # -------------------------------------------------------------- writing the source
    def import_batch(
        self, batch: list[tuple[str, dict[str, Any]] | tuple[Rejection, str, str]], counts: ImportCounts,
        *, stage: str = "import",
    ) -> None:
        """Upsert one batch of parsed lines; rejections go to the quarantine. Updates `counts`."""
        rows_by_type: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in SOURCE_TABLES}
        rejected: list[QuarantineRow] = []
        for item in batch:
            counts.read += 1
            if isinstance(item[0], Rejection):
                rejection, key, raw = item  # type: ignore[misc]
                rejected.append(QuarantineRow(stage, "line", key, rejection.reason, rejection.detail, raw))
                continue
            record_type, record = item  # type: ignore[misc]
            counts.by_type[record_type] = counts.by_type.get(record_type, 0) + 1
            text = canonical_json(record)
            key = record_key(record_type, record)
            if record_type == "feedback":
                key = sha1(key)
            row = {"record": text, "record_hash": sha1(text), _KEY_COLUMN[record_type]: key}
            if record_type == "interaction":
                row.update(org_id=_str_or_none(record.get("org_id")), task=_str_or_none(record.get("task")),
                           occurred_at=_str_or_none(record.get("occurred_at")))
            elif record_type == "feedback":
                row.update(interaction_id=_str_or_none(record.get("interaction_id")),
                           kind=_str_or_none(record.get("kind")),
                           occurred_at=_str_or_none(record.get("occurred_at")))
            previous = rows_by_type[record_type].get(key)
            if previous is not None:  # the same id twice in one batch: the later line wins
                counts.updated += 1 if previous["record_hash"] != row["record_hash"] else 0
                counts.unchanged += 1 if previous["record_hash"] == row["record_hash"] else 0
            rows_by_type[record_type][key] = row
        with self.engine.begin() as conn:
            for record_type, rows in rows_by_type.items():
                if rows:
                    self._upsert_source(conn, record_type, list(rows.values()), counts)
            if rejected:
                self.quarantine_rows(conn, rejected)
                counts.quarantined += len(rejected)
                for q in rejected:
                    counts.quarantined_by_reason[q.reason] = counts.quarantined_by_reason.get(q.reason, 0) + 1

    def _upsert_source(self, conn: sa.Connection, record_type: str, rows: list[dict], counts: ImportCounts) -> None:
        table = SOURCE_TABLES[record_type]
        key_col = table.c[_KEY_COLUMN[record_type]]
        existing: dict[str, str] = {}
        keys = [r[key_col.name] for r in rows]
        for chunk in chunks(keys, 900):
            for key, digest in conn.execute(sa.select(key_col, table.c.record_hash).where(key_col.in_(chunk))):
                existing[key] = digest
        changed = []
        for row in rows:
            old = existing.get(row[key_col.name])
            if old is None:
                counts.inserted += 1
                changed.append(row)
            elif old != row["record_hash"]:
                counts.updated += 1
                changed.append(row)
            else:
                counts.unchanged += 1
        if not changed:
            return
        first = self._take_seq(conn, len(changed))
        for offset, row in enumerate(changed):
            row["seq"] = first + offset
        stmt = self._insert(table)
        update_cols = {c.name: stmt.excluded[c.name] for c in table.columns if c.name != key_col.name}
        conn.execute(stmt.on_conflict_do_update(index_elements=[key_col.name], set_=update_cols), changed)

    def upsert_accepted(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        """Insert or replace rows of `fw_accepted_interactions` (see `accepted_row`): the one writer of that table."""
        if not rows:
            return
        stmt = self._insert(accepted)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["id"],
                set_={c.name: stmt.excluded[c.name] for c in accepted.columns if c.name != "id"},
            ),
            rows,
        )

    def quarantine_rows(self, conn: sa.Connection, rows: Iterable[QuarantineRow], run_id: str | None = None) -> int:
        """Upsert quarantine rows keyed by (stage, record type, record key); returns how many."""
        payload = [
            {
                "stage": q.stage,
                "record_type": q.record_type,
                "record_key": q.record_key[:500],
                "reason": q.reason,
                "detail": q.detail[:2000],
                "raw": None if q.raw is None else q.raw[:RAW_PREVIEW_CHARS],
                "run_id": run_id,
                "quarantined_at": now_iso(),
            }
            for q in rows
        ]
        if not payload:
            return 0
        stmt = self._insert(quarantine)
        keys = ["stage", "record_type", "record_key"]
        stmt = stmt.on_conflict_do_update(
            index_elements=keys, set_={c: stmt.excluded[c] for c in ("reason", "detail", "raw", "run_id", "quarantined_at")}
        )
        conn.execute(stmt, payload)
        return len(payload)

    # -------------------------------------------------------------- reading the source
    def iter_source(self, record_type: str, after: int, upto: int, batch_size: int = 5_000) -> Iterator[list[sa.Row]]:
        """Rows of one source table with `after < seq <= upto`, in seq order, one batch at a time."""
        table = SOURCE_TABLES[record_type]
        last = after
        with self.engine.connect() as conn:
            while True:
                rows = conn.execute(
                    sa.select(table).where(table.c.seq > last, table.c.seq <= upto).order_by(table.c.seq).limit(batch_size)
                ).all()
                if not rows:
                    return
                yield rows
                last = rows[-1].seq

    def feedback_for(self, conn: sa.Connection, interaction_ids: list[str]) -> dict[str, list[sa.Row]]:
        out: dict[str, list[sa.Row]] = {}
        for chunk in chunks(interaction_ids, 900):
            for row in conn.execute(sa.select(feedback).where(feedback.c.interaction_id.in_(chunk))):
                out.setdefault(row.interaction_id, []).append(row)
        return out

    def organizations_all(self) -> list[sa.Row]:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(organizations)).all()

    def iter_accepted(
        self,
        tasks: Iterable[str],
        tenants: Iterable[str] | None = None,
        exclude_tenants: Iterable[str] = (),
        batch_size: int = 5_000,
        since_seq: int | None = None,
        through_seq: int | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Accepted interactions of these tasks (and tenants), in batches of decoded records.

        Each record is the validated interaction (`contract.validate_interaction`) with
        `"feedback"`: its validated feedback events sorted by `occurred_at`. Filtering happens in
        SQL, so a per-tenant target never even reads another tenant's rows. `since_seq` and
        `through_seq` keep only rows accepted (or updated by new feedback) in `(since_seq, through_seq]`.
        """
        query = accepted_ids_query(tasks, tenants, exclude_tenants, since_seq, through_seq)
        with self.engine.connect() as conn:
            # ids first, in one sorted scan; then the records by id. (Paging `record` itself with
            # `id > last ORDER BY id LIMIT n` made SQLite re-sort every remaining record per page:
            # quadratic, minutes at 200k rows.) A row deleted meanwhile is skipped.
            ids = conn.execute(query).scalars().all()
            for start in range(0, len(ids), batch_size):
                page = ids[start : start + batch_size]
                found: dict[str, str] = {}
                for chunk in chunks(page, 900):
                    rows = conn.execute(sa.select(accepted.c.id, accepted.c.record).where(accepted.c.id.in_(chunk)))
                    found.update((row.id, row.record) for row in rows)
                batch = [json.loads(found[i]) for i in page if i in found]
                if batch:
                    yield batch

    def organization_profiles(self) -> dict[str, OrgProfile]:
        """Every tenant with an organization record: its plan and opt-out (a malformed record counts as opted out)."""
        out = {}
        for row in self.organizations_all():
            try:
                record = json.loads(row.record)
                if not isinstance(record, dict):
                    raise ValueError("not an object")
            except ValueError:
                out[row.org_id] = OrgProfile(row.org_id, None, True, malformed=True)
                continue
            value = record.get("training_opt_out", False)
            plan = record.get("plan")
            out[row.org_id] = OrgProfile(row.org_id, plan if isinstance(plan, str) else None,
                                         value is not False and value is not None)
        return out

    def opted_out_orgs(self) -> set[str]:
        """Tenants whose `training_opt_out` is true in the source (malformed rows count as opted out)."""
        return {org for org, profile in self.organization_profiles().items() if profile.training_opt_out}

    def accepted_through(self) -> int:
        """The highest `accepted_seq` so far (0 for an empty store): the watermark of what a stage has read."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(accepted.c.accepted_seq))).scalar() or 0)

    def accepted_counts(self, tasks: Iterable[str]) -> dict[str, int]:
        """Accepted interactions of these tasks per tenant (one GROUP BY)."""
        query = (sa.select(accepted.c.org_id, sa.func.count()).where(accepted.c.task.in_(list(tasks)))
                 .group_by(accepted.c.org_id))
        with self.engine.connect() as conn:
            return {org: int(n) for org, n in conn.execute(query)}

    def quarantine_counts(self, stage: str | None = None) -> dict[str, int]:
        query = sa.select(quarantine.c.reason, sa.func.count()).group_by(quarantine.c.reason)
        if stage:
            query = query.where(quarantine.c.stage == stage)
        with self.engine.connect() as conn:
            return {reason: int(n) for reason, n in conn.execute(query)}

    def count(self, table: sa.Table) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def accepted_ids_query(
    tasks: Iterable[str], tenants: Iterable[str] | None = None, exclude_tenants: Iterable[str] = (),
    since_seq: int | None = None, through_seq: int | None = None,
) -> sa.Select:
    """The ids `Store.iter_accepted` reads, sorted; with `since_seq` an index search on (task, accepted_seq)."""
    query = sa.select(accepted.c.id).where(accepted.c.task.in_(list(tasks)))
    if since_seq is not None:
        query = query.where(accepted.c.accepted_seq > since_seq)
    if through_seq is not None:
        query = query.where(accepted.c.accepted_seq <= through_seq)
    if tenants is not None:
        query = query.where(accepted.c.org_id.in_(list(tenants)))
    excluded = list(exclude_tenants)
    if excluded:
        query = query.where(accepted.c.org_id.not_in(excluded))
    return query.order_by(accepted.c.id)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def accepted_row(interaction: dict[str, Any], seq: int) -> dict[str, Any]:
    """A validated interaction (with its feedback attached) as a row of `fw_accepted_interactions`."""
    return {
        "id": interaction["id"],
        "org_id": interaction["org_id"],
        "task": interaction["task"],
        "user_id": interaction.get("user_id"),
        "conversation_id": interaction.get("conversation_id"),
        "occurred_at": interaction["occurred_at"],
        "response_format": interaction["response_format"],
        "record": canonical_json(interaction),
        "accepted_seq": seq,
    }


def chunks(items: list, size: int) -> Iterator[list]:
    """Consecutive slices of at most `size` items (SQL IN lists stay under driver limits)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
