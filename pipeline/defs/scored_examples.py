"""`scored_examples`: the thin Dagster asset around `pipeline.curation.curate`."""

from typing import TYPE_CHECKING

import dagster as dg

from pipeline.core.resources import StoreResource
from pipeline.defs.partitions import target_partitions

if TYPE_CHECKING:  # numpy and pyarrow load when the asset runs, not when the definitions load
    from pipeline.curation.curate import CurationReport


class ScoredExamplesConfig(dg.Config):
    """How a run reads the log (the result is the same either way)."""

    full_refresh: bool = False  # score every interaction again, not only what new data changed


@dg.asset(
    partitions_def=target_partitions,
    deps=[dg.AssetKey("raw_interactions")],
    group_name="curation",
    kinds={"python", "parquet"},
    owners=["team:ml-platform"],
    code_version="3",  # 3: parts; a run after new data scores only what it changed
)
def scored_examples(
    context: dg.AssetExecutionContext, config: ScoredExamplesConfig, store: StoreResource
) -> dg.MaterializeResult:
    """One target's interactions scored 0..10, labels applied, duplicate prompts collapsed, preference pairs built."""
    # numpy, pyarrow and rapidfuzz load when the asset runs, not when the definitions load
    from pipeline.core.targets import get_target
    from pipeline.curation.curate import curate_target

    target = get_target(context.partition_key)
    report = curate_target(store.get(), target, log=context.log.debug, full_refresh=config.full_refresh)
    context.log.info(
        f"{target.name}: {report.mode} run ({report.mode_reason}); scored {report.scored_now:,} now; "
        f"in all read {report.read:,}, kept {report.kept:,}, dropped {dict(report.dropped)}, pairs {dict(report.pairs)}"
    )
    return dg.MaterializeResult(metadata=scored_metadata(report, target.scoring.export_threshold))


def scored_metadata(report: "CurationReport", export_threshold: float) -> dict[str, dg.MetadataValue | int | float | str]:
    """The asset's metadata: counts that add up, pairs by source, the score chart, a preview, the paths."""
    from pipeline.core import markdown
    from pipeline.curation.curate import DROP_REASONS, PAIR_SOURCES
    from pipeline.curation.render import preview_table, score_chart

    counts = report.as_dict()
    metadata: dict[str, dg.MetadataValue | int | float | str] = {
        "dagster/row_count": report.kept,
        "read": report.read,
        "kept": report.kept,
        "dropped": report.dropped_total,
        **{f"dropped_{reason}": report.dropped.get(reason, 0) for reason in DROP_REASONS},
        "duplicates_exact": report.duplicates["exact"],
        "duplicates_near": report.duplicates["near"],
        "pairs": sum(report.pairs.values()),
        **{f"pairs_{source}": report.pairs.get(source, 0) for source in PAIR_SOURCES},
        "outcomes_explicit": report.outcomes_explicit,
        "outcomes_inferred_abandoned": report.outcomes_inferred.get("abandoned", 0),
        "outcomes_inferred_regenerated": report.outcomes_inferred.get("regenerated", 0),
        # the log's clock silences were judged by; "none" when nothing was inferred (off, embedding, empty)
        "implicit_as_of": report.implicit_as_of or "none",
        "counts": dg.MetadataValue.json(counts),
        "export_threshold": float(export_threshold),
        "score_distribution": dg.MetadataValue.md(
            score_chart(report.scored_histogram, report.kept_histogram, export_threshold)
        ),
        "preview": dg.MetadataValue.md(preview_table(report.preview)),
        "kept_by_task": dg.MetadataValue.md(markdown.counts(report.kept_tasks, key="task", value="kept")),
        # the folder: its parts, the masks saying which rows count, manifest.json (pipeline/curation/parts.py)
        "scored_path": dg.MetadataValue.path(str(report.scored_path)),
        "source_seq_through": dg.MetadataValue.int(report.source_seq_through),
        # what this run did: `full` (everything scored), `incremental` (what new data changed) or `unchanged`
        "run_mode": report.mode,
        "run_reason": report.mode_reason,
        "scored_this_run": report.scored_now,
        "superseded": report.superseded,
        "parts": report.parts,
    }
    if report.excluded_tenants:
        metadata["opted_out_tenants_excluded"] = len(report.excluded_tenants)
    return metadata


