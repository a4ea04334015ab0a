"""`evaluated_model`: the target's newest succeeded model judged against the champion and the base model.

A thin wrapper around `pipeline.evaluation`: it takes the model of the latest `fine_tune_job`
materialization once its job has succeeded, re-verifies every blocking gate of the candidate's
dataset version (in any run), runs base, champion and candidate on the same held-out items, and
writes a report (FLYWHEEL_HOME/<target>/evaluations/<id>.json) that its blocking checks judge.
A candidate whose data failed a gate is not run at all: the report says why, and the
`evaluation_upstream_gates_passed` check fails.
"""


import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from pydantic import Field

from pipeline.backends.resource import FineTuneBackends
from pipeline.core.resources import StoreResource
from pipeline.core.targets import get_target
from pipeline.defs.automation import AFTER_UPSTREAM_PASSED
from pipeline.defs.gate_status import dataset_version_gates
from pipeline.defs.partitions import target_partitions

CODE_VERSION = "evaluated_model-1"


class EvaluationRun(dg.Config):
    """Limits for one run below the target's own settings (a quick look, the demo); unset: the target's."""

    max_items: int | None = Field(None, ge=2, description="evaluate at most this many items (below gates.max_eval_items)")
    max_new_tokens: int | None = Field(None, ge=1, description="new tokens per generated answer (below evaluation.max_new_tokens)")


def limited(target, run: EvaluationRun) -> tuple[Any, int | None, dict[str, int]]:
    """(target with the run's token cap, item cap, the limits this run applied) — a run only ever lowers them."""
    limits: dict[str, int] = {}
    cap = target.gates.max_eval_items
    if run.max_items is not None and (cap is None or run.max_items < cap):
        cap = limits["max_items"] = run.max_items
    if run.max_new_tokens is not None and run.max_new_tokens < target.evaluation.max_new_tokens:
        limits["max_new_tokens"] = run.max_new_tokens
        target = target.model_copy(update={"evaluation": target.evaluation.model_copy(
            update={"max_new_tokens": run.max_new_tokens})})
    return target, cap, limits


class NotEvaluable(Exception):
    """The candidate cannot be judged (yet); the message says why and what to do."""


def _latest_job(context: dg.AssetExecutionContext, store) -> dict[str, Any]:
    from pipeline.finetune import registry

    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("fine_tune_job"), asset_partitions=[context.partition_key]), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        raise NotEvaluable(f"fine_tune_job has no materialization for {context.partition_key!r}: train the target first")
    job_id = records[0].asset_materialization.metadata.get("job_id")
    job_id = str(getattr(job_id, "value", job_id) or "")
    row = registry.get_job(store, job_id) if job_id else None
    if row is None:
        raise NotEvaluable(f"fine_tune_job's latest materialization names job {job_id!r}, which is not in the registry")
    if row["status"] != "succeeded":
        raise NotEvaluable(
            f"job {row['job_id']} is {row['status']}: evaluated_model judges a model once its job succeeded "
            "(the job-status sensor re-materializes fine_tune_job when a hosted job ends)"
        )
    return row


def run_evaluation(context: dg.AssetExecutionContext, db, backends: FineTuneBackends,
                   run: EvaluationRun | None = None) -> dict[str, Any]:
    """The evaluation report of this partition's latest succeeded job (pure steps in pipeline.evaluation)."""
    from pipeline.core.artifacts import read_manifest
    from pipeline.evaluation.contenders import base_contender, job_contender, ref_contender
    from pipeline.evaluation.decision import decide, run_gates
    from pipeline.evaluation.evaluate import judge, run_models, target_kind
    from pipeline.evaluation.items import evaluation_items
    from pipeline.evaluation.report import comparison_dict
    from pipeline.serving import production

    target, cap, limits = limited(get_target(context.partition_key), run or EvaluationRun())
    row = _latest_job(context, db)
    candidate = job_contender(row)
    report: dict[str, Any] = {
        "evaluation_id": f"eval-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}",
        "target": target.name, "kind": target_kind(target), "candidate": candidate.as_dict(),
        "run_id": context.run_id, "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_limits": limits,
    }
    refusal = dataset_version_gates(context.instance, context.partition_key, str(row["dataset_version"]))
    report["upstream_gates"] = {"passed": refusal is None, "reason": refusal}
    if refusal is not None:
        return {**report, "status": "not_evaluated", "reason": f"upstream gate failed: {refusal}"}
    serving = production.ensure_serving(db, target)
    champion = ref_contender(serving.champion, "champion")
    base = base_contender(target)
    report.update(champion=champion.as_dict(), base=base.as_dict())
    gates = target.gates
    eval_set = gates.eval_set_path()
    items = evaluation_items(read_manifest(context.partition_key, str(row["dataset_version"])), method=target.method,
                             eval_set=str(eval_set) if eval_set else None, eval_set_mode=gates.eval_set_mode,
                             cap=cap, seed=gates.seed)
    if len(items) < 2:
        return {**report, "status": "not_evaluated",
                "reason": f"{len(items)} evaluation item(s): too few to judge; add data or a frozen gates.eval_set"}
    hosted_client = backends.get(target.backend).client() if target.backend == "openai" else None
    started = time.perf_counter()
    outputs = run_models(target, [base, champion, candidate], items, hosted_client=hosted_client, log=context.log.info)
    judgement = judge(target, [base, champion, candidate], items, outputs)
    report.update(
        status="evaluated", n_items=len(items), primary=judgement.primary,
        items_by_source={s: sum(1 for i in items if i.source == s) for s in ("heldout", "frozen")},
        summaries=judgement.summaries, vs_champion=comparison_dict(judgement.vs_champion),
        vs_base=comparison_dict(judgement.vs_base), differing=judgement.differing,
        evaluation_s=round(time.perf_counter() - started, 2),
        json_validity={role: (judgement.summaries[role].get("json") or {}).get("schema_valid")
                       for role in judgement.summaries},
    )
    json_kind = report["kind"] == "json" and report["json_validity"]["candidate"] is not None
    candidate_json = judgement.summaries["candidate"].get("json") or {}
    gate_results = run_gates(
        gates, comparison=judgement.vs_champion, upstream={"dataset version gates (training_file, anonymized_dataset)": True},
        json_validity=report["json_validity"]["candidate"] if json_kind else None,
        json_n=candidate_json.get("n") if json_kind else None,
    )
    decision = decide(gate_results, gates.canary, gates.canary_share, champion_is_base=serving.champion.is_base)
    report["gates"] = {name: {"passed": g.passed, "description": g.description} for name, g in gate_results.items()}
    report["decision"] = decision.as_dict()
    return report


@dg.asset(
    partitions_def=target_partitions,
    deps=[dg.AssetKey("fine_tune_job")],
    group_name="evaluation",
    kinds={"python"},
    owners=["team:ml-platform"],
    code_version=CODE_VERSION,
    automation_condition=AFTER_UPSTREAM_PASSED,
)
def evaluated_model(context: dg.AssetExecutionContext, config: EvaluationRun, store: StoreResource,
                    backends: FineTuneBackends) -> dg.MaterializeResult:
    """The newest trained model against the champion and base on held-out items, with paired bootstrap intervals."""
    from pipeline.core.artifacts import evaluations_dir, write_atomic
    from pipeline.evaluation import report as render

    try:
        report = run_evaluation(context, store.get(), backends, config)
    except NotEvaluable as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    path = evaluations_dir(context.partition_key) / f"{report['evaluation_id']}.json"
    write_atomic(path, json.dumps(report, indent=2, sort_keys=True, default=str))
    metadata: dict[str, Any] = {
        "status": dg.MetadataValue.text(report["status"]),
        "evaluation_id": dg.MetadataValue.text(report["evaluation_id"]),
        "report_path": dg.MetadataValue.path(str(path)),
        "candidate_job_id": dg.MetadataValue.text(str(report["candidate"]["job_id"])),
        "candidate_model": dg.MetadataValue.text(report["candidate"]["model"]),
        "dataset_version": dg.MetadataValue.text(str(report["candidate"]["dataset_version"])),
    }
    if report["run_limits"]:
        metadata["run_limits"] = dg.MetadataValue.json(report["run_limits"])
    if report["status"] != "evaluated":
        metadata["reason"] = dg.MetadataValue.text(report["reason"])
        context.log.warning(f"{context.partition_key}: not evaluated: {report['reason']}")
        return dg.MaterializeResult(metadata=metadata)
    cmp = report["vs_champion"]
    metadata.update({
        "decision": dg.MetadataValue.text(report["decision"]["action"]),
        "decision_reason": dg.MetadataValue.text(report["decision"]["reason"]),
        "champion_model": dg.MetadataValue.text(report["champion"]["model"]),
        "primary_metric": dg.MetadataValue.text(report["primary"]),
        "items": dg.MetadataValue.int(report["n_items"]),
        "candidate_minus_champion": dg.MetadataValue.float(float(cmp["difference"])),
        "interval": dg.MetadataValue.text(render.interval_text(cmp)),
        "evaluation_s": dg.MetadataValue.float(report["evaluation_s"]),
        "side_by_side": dg.MetadataValue.md(render.side_by_side(report)),
        "per_task": dg.MetadataValue.md(render.per_task(report)),
        "picture": dg.MetadataValue.md(render.picture(report)),
        "most_different_items": dg.MetadataValue.md(render.differing(report)),
    })
    for role in ("base", "champion", "candidate"):
        value = report["summaries"][role]["overall"].get(report["primary"])
        metadata[f"{role}_{report['primary']}"] = dg.MetadataValue.float(float(value))
    context.log.info(f"{context.partition_key}: candidate − champion on {report['primary']} = "
                     f"{render.interval_text(cmp)} over {report['n_items']} items → {report['decision']['action']}")
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(report["evaluation_id"]))
