"""The `anonymized_dataset` asset: a thin Dagster wrapper around `anonymize.dataset.anonymize_scored`.

The scored parts stream through in batches; what was redacted of a part before is copied from its
segments (`anonymize/segments.py`), and a re-scored example whose texts the same engine redacted
before takes its redaction from the target's `RedactionCache` (by content hash), so a run after
new data redacts only what is new. Each materialization writes a content-addressed version, `FLYWHEEL_HOME/<target>/anonymized/<version>/`,
and reports that version as its data version: the blocking checks read exactly those files, and
`training_file` reads a version only after `gate_status` found every check passed on it.
"""

import shutil

import dagster as dg

from pipeline.core.artifacts import (
    anonymized_dir,
    anonymized_version_dir,
    scored_dir,
    seal_anonymized_version,
)
from pipeline.core.resources import StoreResource
from pipeline.defs.partitions import target_partitions


class AnonymizeConfig(dg.Config):
    """How the redaction runs (the result does not depend on these)."""

    workers: int = 2  # processes; 1 redacts in the step's own process
    chunk_groups: int = 32  # examples per batch sent to a worker
    preview_rows: int = 3  # before/after rows shown in the metadata
    use_cache: bool = True  # False: redact every example again, keep nothing (the output is the same)


def source_watermark(context: dg.AssetExecutionContext, upstream: str) -> dict[str, dg.MetadataValue]:
    """`source_seq_through` of the upstream's latest materialization (what this one was built from), if it has one."""
    from pipeline.defs.gate_status import latest_metadata

    try:
        value = latest_metadata(context, upstream).get("source_seq_through")
    except dg.Failure:
        return {}
    return {} if value is None else {"source_seq_through": dg.MetadataValue.int(int(value))}


@dg.asset(
    name="anonymized_dataset",
    partitions_def=target_partitions,
    deps=[dg.AssetKey("scored_examples")],
    group_name="curation",
    kinds={"python", "presidio", "parquet"},
    owners=["team:ml-platform"],
    code_version="3",  # 2: streamed in batches, redactions reused by content hash; 3: scored parts' segments reused
)
def anonymized_dataset(
    context: dg.AssetExecutionContext, config: AnonymizeConfig, store: StoreResource
) -> dg.MaterializeResult:
    """Scored examples with personal data replaced by placeholders and opted-out tenants removed."""
    from pipeline.anonymize import segments
    from pipeline.anonymize.cache import RedactionCache, engine_version
    from pipeline.anonymize.dataset import anonymize_scored, preview_markdown
    from pipeline.anonymize.engine import ENTITIES, RedactionPool
    from pipeline.curation import parts

    target = context.partition_key
    source = scored_dir(target)
    try:
        parts.loaded(source)
    except FileNotFoundError as exc:
        raise dg.Failure(
            description=f"{source} holds no finished scored_examples run (no manifest.json): "
                        f"materialize scored_examples for target {target!r} first.",
            metadata={"expected": dg.MetadataValue.path(str(source / "manifest.json"))},
        ) from exc
    opted_out = store.get().opted_out_orgs()
    engine = engine_version(ENTITIES)
    staging = anonymized_version_dir(target, f".staging-{context.run_id}")
    if config.use_cache:
        cache = RedactionCache(anonymized_dir(target) / ".redactions", engine)
        segments_root = segments.engine_root(anonymized_dir(target) / segments.SEGMENTS, engine)
    else:  # segments of this run only, removed after it
        cache, segments_root = None, anonymized_dir(target) / f".segments-{context.run_id}"
    try:
        with RedactionPool(workers=config.workers, chunk_groups=config.chunk_groups) as pool:
            result = anonymize_scored(source, opted_out, pool.redact, staging, segments_root,
                                      cache=cache, preview_rows=config.preview_rows)
        version, out = seal_anonymized_version(target, staging)
        pruned = cache.prune() if cache is not None else 0
        swept = segments.sweep(segments_root, result.segment_folders) if cache is not None else 0
    finally:
        if cache is not None:
            cache.close()
        else:
            shutil.rmtree(segments_root, ignore_errors=True)
    removed = result.example_counts.removed + result.pair_counts.removed
    context.log.info(
        f"{target}: {result.example_counts.rows_out}/{result.example_counts.rows_in} examples and "
        f"{result.pair_counts.rows_out}/{result.pair_counts.rows_in} pairs kept; removed {dict(removed)}; "
        f"{result.redacted} redacted by the engine, {result.reused} reused "
        f"({result.parts_reused} scored parts all from segments, {result.parts_redacted} with new rows); "
        f"{sum(result.entities.values())} entities replaced in {result.seconds:.1f}s"
    )
    return dg.MaterializeResult(
        data_version=dg.DataVersion(version),
        metadata={
            "anonymized_version": version,
            "rows_in": result.example_counts.rows_in,
            "rows_out": result.example_counts.rows_out,
            "pairs_in": result.pair_counts.rows_in,
            "pairs_out": result.pair_counts.rows_out,
            "removed_by_reason": dg.MetadataValue.json(
                {"examples": dict(result.example_counts.removed), "pairs": dict(result.pair_counts.removed)}
            ),
            "opted_out_tenants": len(opted_out),
            "entities_replaced": sum(result.entities.values()),
            "entities_by_type": dg.MetadataValue.json(dict(sorted(result.entities.items()))),
            "notes": dg.MetadataValue.json(dict(result.notes)),
            "preview": dg.MetadataValue.md(preview_markdown(result.preview)),
            "seconds": dg.MetadataValue.float(round(result.seconds, 2)),
            "rows_per_second": dg.MetadataValue.float(round(result.texts_per_second, 1)),
            "words_per_second": dg.MetadataValue.float(
                round(result.words / result.seconds, 1) if result.seconds else 0.0
            ),
            "workers": config.workers,
            "redacted_by_engine": dg.MetadataValue.int(result.redacted),
            "reused_redactions": dg.MetadataValue.int(result.reused),
            "cache_pruned": dg.MetadataValue.int(pruned),
            "scored_parts": dg.MetadataValue.json(
                {"reused": result.parts_reused, "redacted": result.parts_redacted, "segments_removed": swept}),
            "engine_version": engine,
            "examples_path": dg.MetadataValue.path(str(out / "examples.parquet")),
            "pairs_path": dg.MetadataValue.path(str(out / "pairs.parquet")),
            "counts": dg.MetadataValue.json(
                {"examples": result.example_counts.as_dict(), "pairs": result.pair_counts.as_dict()}
            ),
            **source_watermark(context, "scored_examples"),
        }
    )


