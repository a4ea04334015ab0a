"""`raw_interactions`: the validated, incremental view of the interaction source."""

from typing import TYPE_CHECKING

import dagster as dg

from pipeline.core import markdown
from pipeline.core.resources import StoreResource
from pipeline.defs.partitions import with_runbook

if TYPE_CHECKING:
    from pipeline.ingest.ingestion import IngestReport

QUARANTINE_CHECK = "quarantine_share_within_limit"


class RawInteractionsConfig(dg.Config):
    """How `raw_interactions` reads the source."""

    full_refresh: bool = False
    """Re-read the whole source instead of only what is new since the last materialization."""
    max_quarantine_share: float = 0.05
    """The blocking check fails when more than this share of the records read were quarantined."""
    batch_size: int = 5_000


@dg.asset(
    group_name="ingestion",
    kinds={"sql", "python"},
    owners=["team:ml-platform"],
    code_version="1",
    check_specs=[
        dg.AssetCheckSpec(
            QUARANTINE_CHECK,
            asset="raw_interactions",
            blocking=True,
            description=with_runbook("Fails when the share of quarantined records in this increment exceeds the limit.",
                                     QUARANTINE_CHECK),
        )
    ],
)
def raw_interactions(
    context: dg.AssetExecutionContext, config: RawInteractionsConfig, store: StoreResource
) -> dg.MaterializeResult:
    """Interactions and their feedback that passed the contract, read incrementally from the source."""
    from pipeline.core.store import accepted
    from pipeline.ingest.ingestion import ingest_increment

    db = store.get()
    after = 0 if config.full_refresh else _last_cursor(context)
    report = ingest_increment(db, after, run_id=context.run_id, batch_size=config.batch_size)
    if not report.balanced():  # a bug, not bad data: never report counts that do not add up
        raise RuntimeError(f"ingestion counts do not add up: {report}")
    context.log.info(
        f"seq {report.cursor_from}→{report.cursor_to}: {report.total_in:,} in, {report.total_accepted:,} accepted, "
        f"{report.total_quarantined:,} quarantined, {report.total_excluded:,} excluded (opt-out)"
    )
    return dg.MaterializeResult(
        metadata=_metadata(report, db.masked_url, db.count(accepted)),
        check_results=[quarantine_check(report, config.max_quarantine_share)],
    )


def _last_cursor(context: dg.AssetExecutionContext) -> int:
    event = context.instance.get_latest_materialization_event(context.asset_key)
    if event is None or event.asset_materialization is None:
        return 0
    value = event.asset_materialization.metadata.get("cursor")
    return int(value.value) if value is not None else 0


def _metadata(report: "IngestReport", url: str, accepted_total: int) -> dict:
    return {
        "cursor": dg.MetadataValue.int(report.cursor_to),
        "cursor_from": dg.MetadataValue.int(report.cursor_from),
        "source_url": dg.MetadataValue.text(url),
        "records_in": dg.MetadataValue.int(report.total_in),
        "accepted": dg.MetadataValue.int(report.total_accepted),
        "quarantined": dg.MetadataValue.int(report.total_quarantined),
        "excluded_opt_out": dg.MetadataValue.int(report.total_excluded),
        "quarantined_share": dg.MetadataValue.float(round(report.quarantined_share, 5)),
        "purged_opt_out_rows": dg.MetadataValue.int(report.purged_opt_out),
        "quarantine_resolved": dg.MetadataValue.int(report.resolved),
        "accepted_interactions_total": dg.MetadataValue.int(accepted_total),
        "counts": dg.MetadataValue.md(_counts_table(report)),
        "quarantined_by_reason": dg.MetadataValue.md(markdown.counts(report.quarantined)),
        # ids, tasks and sizes only: raw text may hold personal data and must not reach the event log
        "preview": dg.MetadataValue.md(markdown.table(report.preview)),
    }


def _counts_table(report: "IngestReport") -> str:
    rows = []
    for record_type in ("interaction", "feedback", "organization"):
        rows.append(
            {
                "record": record_type,
                "in": f"{report.records_in[record_type]:,}",
                "accepted": f"{report.accepted[record_type]:,}",
                "quarantined": f"{report.quarantined_by_type[record_type]:,}",
                "excluded (opt-out)": f"{report.excluded_opt_out[record_type]:,}",
            }
        )
    return markdown.table(rows) + f"\n\nin = accepted + quarantined + excluded: **{report.balanced()}**"


def quarantine_check(report: "IngestReport", limit: float) -> dg.AssetCheckResult:
    """The quarantine gate: a dirty increment stops the run before any example is scored."""
    share = report.quarantined_share
    reasons = ", ".join(f"{reason} ({n:,})" for reason, n in report.dominant_reasons())
    passed = share <= limit
    if report.total_in == 0:
        description = "No new records since the last materialization; nothing to gate."
    elif passed:
        description = f"{share:.2%} of {report.total_in:,} records quarantined (limit {limit:.0%})."
    else:
        description = (
            f"{report.total_quarantined:,} of {report.total_in:,} records ({share:.1%}) were quarantined, over the "
            f"{limit:.0%} limit. Dominant reasons: {reasons}. Look at the rows in table fw_quarantine "
            f"(stage 'raw_interactions') or `flywheel quarantine`, fix the producer or the data, re-import, and "
            f"materialize again; raise max_quarantine_share only if this share is expected."
        )
    return dg.AssetCheckResult(
        check_name=QUARANTINE_CHECK,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "quarantined_share": dg.MetadataValue.float(round(share, 5)),
            "limit": dg.MetadataValue.float(limit),
            "records_in": dg.MetadataValue.int(report.total_in),
            "quarantined": dg.MetadataValue.int(report.total_quarantined),
            "dominant_reasons": dg.MetadataValue.text(reasons or "none"),
        },
    )
