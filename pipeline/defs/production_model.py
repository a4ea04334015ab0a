"""`production_model`: which model serves each target, from an evaluation whose gates all passed.

A thin wrapper around `pipeline.serving.production`: it reads the latest `evaluated_model`
materialization whose blocking checks all passed (in this run or any earlier one; a failed gate
refuses, naming the check), and records the decision: the candidate becomes the challenger at the
target's canary share, or the champion at once with `canary: false`. The history is append-only
and the rollout file the product reads is rewritten atomically. When no candidate passes, nothing
changes and the champion stays (the base model until the first promotion).
"""


import json
from pathlib import Path

import dagster as dg

from pipeline.core import markdown
from pipeline.core.resources import StoreResource
from pipeline.core.targets import get_target
from pipeline.defs.automation import AFTER_UPSTREAM_PASSED
from pipeline.defs.gate_status import BLOCKING_CHECKS, require_approved
from pipeline.defs.partitions import target_partitions

CODE_VERSION = "production_model-1"


def rollout_metadata(rollout, history: list[dict]) -> dict:
    """What serves now and the latest history rows, as the UI shows them."""
    from pipeline.serving.rollout import rollout_path

    rows = [{"at": h["at"], "action": h["action"], "model": h.get("model"), "by": h["by"], "reason": h["reason"]}
            for h in history[:10]]
    return {
        "champion": dg.MetadataValue.text(rollout.champion.model),
        "champion_job_id": dg.MetadataValue.text(rollout.champion.job_id or "base model"),
        "challenger": dg.MetadataValue.text(rollout.challenger.model if rollout.challenger else "none"),
        "challenger_share": dg.MetadataValue.float(float(rollout.challenger_share)),
        "rollout_id": dg.MetadataValue.text(rollout.rollout_id),
        "rollout_file": dg.MetadataValue.path(str(rollout_path(rollout.target))),
        "history": dg.MetadataValue.md(markdown.table(rows, max_chars=100)),
    }


@dg.asset(
    partitions_def=target_partitions,
    deps=[dg.AssetKey("evaluated_model")],
    group_name="serving",
    kinds={"python"},
    owners=["team:ml-platform"],
    code_version=CODE_VERSION,
    automation_condition=AFTER_UPSTREAM_PASSED,
)
def production_model(context: dg.AssetExecutionContext, store: StoreResource) -> dg.MaterializeResult:
    """Which model serves the target: a candidate that passed every gate is promoted; the history is append-only."""
    from pipeline.core.gates import GateResult
    from pipeline.evaluation.decision import decide
    from pipeline.finetune import registry
    from pipeline.serving import production
    from pipeline.serving.rollout import ModelRef

    target = get_target(context.partition_key)
    approved = require_approved(context, "evaluated_model")
    report = json.loads(Path(approved.text("report_path")).read_text(encoding="utf-8"))
    db = store.get()
    row = registry.get_job(db, str(report["candidate"]["job_id"]))
    if row is None:
        raise dg.Failure(description=f"job {report['candidate']['job_id']} of the evaluation is not in the registry",
                         allow_retries=False)
    candidate = ModelRef.from_job(row)
    serving = production.ensure_serving(db, target)
    if candidate in (serving.champion, serving.challenger):
        role = "champion" if candidate == serving.champion else "challenger"
        context.log.info(f"{target.name}: {candidate.model} already serves as the {role}; nothing to change")
        metadata = rollout_metadata(serving, production.history(db, target, limit=10))
        metadata["decision"] = dg.MetadataValue.text(f"unchanged: the candidate is already the {role}")
        return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(serving.rollout_id))
    gates = {name: GateResult(True, "passed") for name in BLOCKING_CHECKS["evaluated_model"]}
    decision = decide(gates, target.gates.canary, target.gates.canary_share, champion_is_base=serving.champion.is_base)
    cmp = report.get("vs_champion") or {}
    rollout = production.record_decision(
        db, target, decision, candidate=candidate, by="production_model",
        evaluation={"evaluation_id": report["evaluation_id"], "run_id": context.run_id, "primary": report.get("primary"),
                    "vs_champion": cmp},
        metrics={role: s["overall"] for role, s in (report.get("summaries") or {}).items()},
    )
    context.log.info(f"{target.name}: {decision.action}: {candidate.model} ({decision.reason})")
    metadata = rollout_metadata(rollout, production.history(db, target, limit=10))
    metadata["decision"] = dg.MetadataValue.text(decision.action)
    metadata["decision_reason"] = dg.MetadataValue.text(decision.reason)
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(rollout.rollout_id))
