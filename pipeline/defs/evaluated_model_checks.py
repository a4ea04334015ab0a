"""Blocking checks on `evaluated_model`: a model serves only if all of them pass, in this run or a later one.

Each judges the report the latest materialization wrote (its path is in the metadata) with the
pure gates of `pipeline.evaluation.decision`, and says what failed, by how much, and what to try.
A report that could not evaluate (upstream gates failed, too few items) fails every check.
"""

import json
from pathlib import Path
from typing import Any

import dagster as dg

from pipeline.core.gates import GateResult
from pipeline.core.targets import get_target
from pipeline.defs.gate_results import check_result
from pipeline.defs.gate_status import latest_metadata
from pipeline.defs.partitions import target_check


def _report(context: dg.AssetCheckExecutionContext) -> dict[str, Any]:
    path = latest_metadata(context, "evaluated_model")["report_path"]
    return json.loads(Path(str(path)).read_text(encoding="utf-8"))


def _not_evaluated(report: dict[str, Any]) -> GateResult:
    return GateResult(False, f"the candidate was not evaluated: {report.get('reason')}", {"status": report.get("status")})


def _judge(context: dg.AssetCheckExecutionContext, gate) -> dg.AssetCheckResult:
    report = _report(context)
    result = gate(report) if report.get("status") == "evaluated" else _not_evaluated(report)
    return check_result(result, evaluation_id=report["evaluation_id"], candidate_job_id=str(report["candidate"]["job_id"]))


def _comparison(report: dict[str, Any]):
    from pipeline.evaluation.report import comparison_from_dict

    return comparison_from_dict(report["vs_champion"])


def _blocking_check(fn):
    return target_check(asset="evaluated_model", blocking=True)(fn)


@_blocking_check
def candidate_beats_champion(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """The candidate beats the champion: the lower bound of the paired bootstrap interval is at least the target's margin."""
    from pipeline.evaluation.decision import beats_champion

    gates = get_target(context.partition_key).gates
    return _judge(context, lambda r: beats_champion(_comparison(r), gates.margin, min_items=gates.min_eval_items))


@_blocking_check
def no_task_regression(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """No task's interval of candidate minus champion lies wholly below minus the target's max_task_regression."""
    from pipeline.evaluation.decision import no_task_regresses

    gates = get_target(context.partition_key).gates
    return _judge(context, lambda r: no_task_regresses(_comparison(r), gates.max_task_regression))


@_blocking_check
def json_validity_floor(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """JSON targets: the share of the candidate's answers that parse and match the page schema is at least the floor."""
    from pipeline.evaluation.decision import json_validity_meets_floor

    gates = get_target(context.partition_key).gates

    def gate(report: dict[str, Any]) -> GateResult:
        rate = (report.get("json_validity") or {}).get("candidate")
        if report["kind"] != "json" or rate is None:
            return GateResult(True, f"no JSON answers to judge ({report['kind']} target): the floor does not apply",
                              {"kind": report["kind"]})
        json_summary = report["summaries"]["candidate"].get("json") or {}
        return json_validity_meets_floor(float(rate), gates.json_validity_floor, n=json_summary.get("n"))

    return _judge(context, gate)


@target_check(asset="evaluated_model", blocking=True)
def evaluation_upstream_gates_passed(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """Every blocking check on the candidate's dataset version (training_file, anonymized_dataset) passed, in any run."""
    from pipeline.evaluation.decision import upstream_gates_passed

    report = _report(context)
    upstream = report.get("upstream_gates") or {}
    name = "dataset version gates (training_file, anonymized_dataset)"
    result = upstream_gates_passed({name: GateResult(bool(upstream.get("passed")), upstream.get("reason") or "")} if upstream else {})
    return check_result(result, evaluation_id=report["evaluation_id"], candidate_job_id=str(report["candidate"]["job_id"]))
