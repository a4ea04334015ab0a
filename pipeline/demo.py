"""`flywheel demo` (what `make demo` runs): the whole graph on synthetic data, into the Dagster instance.

1. `flywheel seed` writes synthetic interactions for the five seed products (cached per n/seed);
2. `flywheel import` loads them into the store;
3. `ingest_job` materializes `raw_interactions`; `sync_target_partitions` then adds the fixed
   targets and every tenant that qualifies for a family to the `training_targets` partitions;
4. `train_target_job` runs once per partition (a fixed target or a family member): `scored_examples`,
   `anonymized_dataset`, `training_file`, and `fine_tune_job` where the target's backend can run
   here: local backends train inside the `train_locally` step; OpenAI submits only with
   `OPENAI_API_KEY` set;
5. hosted jobs, if any, are polled to the end, as the job-status sensor would;
6. a summary, and how to open the UI on the same instance.

Runs go through the real Dagster instance (`DAGSTER_HOME`), so everything the demo did is in the UI.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

LOCAL_BACKENDS = ("huggingface", "sentence_transformers")
#: The steps' own INFO lines (counts, what was dropped and why) without Dagster's DEBUG event stream.
RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
#: the demo's small evaluation of language-model targets (CPU generation is ~0.3 s a step): a look at the
#: machinery, not a verdict — fewer items than gates.min_eval_items, so such a candidate is never promoted
DEMO_LM_EVALUATION = {"max_items": 6, "max_new_tokens": 32}


def _instance():
    import dagster as dg

    if not os.environ.get("DAGSTER_HOME"):
        from pipeline.core.settings import flywheel_home

        home = flywheel_home() / "dagster"
        home.mkdir(parents=True, exist_ok=True)
        os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def _say(text: str) -> None:
    print(text, flush=True)


def _checks(result) -> tuple[list[str], list[str]]:
    passed, failed = [], []
    for evaluation in result.get_asset_check_evaluations():
        name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        (passed if evaluation.passed else failed).append(
            name if evaluation.passed else f"{name} — {evaluation.description}"
        )
    return passed, failed


def _materialized(result) -> dict[str, dict[str, Any]]:
    out = {}
    for event in result.get_asset_materialization_events():
        meta = {k: v.value for k, v in event.materialization.metadata.items()}
        out[event.materialization.asset_key.to_user_string()] = meta
    return out


def run_demo(n: int = 3_000, seed: int = 7, job_timeout_s: float = 1_800) -> int:
    import warnings

    import dagster as dg

    from pipeline.core.settings import flywheel_home, source_url

    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    from pipeline.core.store import Store
    from pipeline.ingest.importer import import_file
    from pipeline.synth.generate import seed_command

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    started = time.monotonic()
    home = flywheel_home()
    instance = _instance()
    _say(f"Flywheel demo — FLYWHEEL_HOME={home}  DAGSTER_HOME={os.environ['DAGSTER_HOME']}")

    data = home / "demo" / f"synthetic-n{n}-seed{seed}.jsonl"
    data.parent.mkdir(parents=True, exist_ok=True)
    if not data.exists():
        counts = seed_command(n=n, seed=seed, out=data, bad_share=0.01)
        _say(f"[1/5] seed: {n:,} interactions for five products → {data} ({counts.get('records', counts)} records)")
    else:
        _say(f"[1/5] seed: reusing {data}")
    store = Store(source_url())
    imported = import_file(store, data)
    _say(f"[2/5] import: read {imported.read:,}, inserted {imported.inserted:,}, updated {imported.updated:,}, "
         f"unchanged {imported.unchanged:,}, quarantined {imported.quarantined:,} → {store.masked_url}")

    from pipeline.core.targets import get_target
    from pipeline.definitions import defs
    from pipeline.defs.target_partitions import sync_target_partitions

    ingest = defs.resolve_job_def("ingest_job").execute_in_process(instance=instance, raise_on_error=False,
                                                                      run_config=RUN_CONFIG)
    raw = _materialized(ingest).get("raw_interactions", {})
    _say(f"[3/5] raw_interactions: {raw.get('records_in', 0):,} in, {raw.get('accepted', 0):,} accepted, "
         f"{raw.get('quarantined', 0):,} quarantined, {raw.get('excluded_opt_out', 0):,} excluded (opt-out)"
         + ("" if ingest.success else "  — FAILED, see the run in the UI"))
    if not ingest.success:
        return 1
    plan = sync_target_partitions(instance, store)
    _say(f"[3/5] training_targets partitions: {', '.join(plan.members)}")
    for key, reason in sorted({**plan.add, **plan.keep}.items()):
        if "/" in key:
            _say(f"        + {key}: {reason}")
    for key, reason in sorted({**plan.remove, **plan.retire, **plan.skipped, **plan.declined}.items()):
        _say(f"        − {key}: {reason}")

    train_job = defs.resolve_job_def("train_target_job")
    judge_job = defs.resolve_job_def("evaluate_and_promote_job")  # what evaluate_and_promote does under the daemon
    openai_ready = bool(os.environ.get("OPENAI_API_KEY"))
    rows = []
    for name in plan.members:
        target = get_target(name)
        keys = ["scored_examples", "anonymized_dataset", "training_file", "hub_dataset"]
        runnable = target.backend in LOCAL_BACKENDS or (target.backend == "openai" and openai_ready)
        if runnable:
            keys.append("fine_tune_job")
        result = train_job.execute_in_process(
            instance=instance, partition_key=name, raise_on_error=False, run_config=RUN_CONFIG,
            asset_selection=[dg.AssetKey(k) for k in keys],
        )
        meta = _materialized(result)
        passed, failed = _checks(result)
        rows.append({
            "target": name,
            "backend": target.backend,
            "kept": meta.get("scored_examples", {}).get("kept", "—"),
            "pairs": meta.get("scored_examples", {}).get("pairs", "—"),
            "version": meta.get("training_file", {}).get("dataset_version", "—"),
            "job": meta.get("fine_tune_job", {}).get("job_id", "not submitted" if not runnable else "—"),
            "status": meta.get("fine_tune_job", {}).get("status"),
            "model": meta.get("fine_tune_job", {}).get("result_model"),
            "checks": f"{len(passed)} passed, {len(failed)} failed",
            "failed": failed,
            "ok": result.success,
            "note": "" if runnable else "set OPENAI_API_KEY to submit",
        })
        _say(f"[4/5] {name}: {'ok' if result.success else 'STOPPED'} — {rows[-1]['checks']}"
             + (f"; {rows[-1]['note']}" if rows[-1]["note"] else ""))
        for line in failed:
            _say(f"        ✗ {line}")
        if rows[-1]["status"] == "succeeded":
            rows[-1]["evaluation"] = _evaluate(judge_job, instance, name)

    from pipeline.finetune import registry
    from pipeline.finetune.jobs_cli import resolved_backends
    from pipeline.finetune.lifecycle import wait_for_jobs

    statuses = {}
    if registry.list_live(store):
        _say(f"[5/5] waiting for hosted fine-tune jobs (up to {job_timeout_s / 60:.0f} min)…")
        with resolved_backends() as backends:
            statuses = {s.job_id: s for s in wait_for_jobs(store, backends, job_timeout_s, poll_s=3.0)}
    else:
        _say("[5/5] local models trained inside their fine_tune_job steps; no hosted job to wait for")
    for row in rows:  # a hosted job that ended while we waited is judged now
        status = statuses.get(row["job"])
        if status is not None and status.state == "succeeded" and "evaluation" not in row:
            row["evaluation"] = _evaluate(judge_job, instance, row["target"])
    _summary(rows, statuses)
    _decisions(rows)
    _say(f"\nDone in {(time.monotonic() - started) / 60:.1f} min. Open the UI on the same instance with:  make ui   "
         "(http://127.0.0.1:3000)")
    _say("Every run, its metadata and every check result above are there; the job-status sensor polls hosted jobs.")
    return 0 if all(r["ok"] for r in rows) and all(s.state == "succeeded" for s in statuses.values()) else 1


def _evaluate(judge_job, instance, name: str) -> dict[str, Any]:
    """`evaluated_model` then `production_model` for a target whose job succeeded; a refusal is a decision, not an error."""

    from pipeline.core.targets import get_target

    began = time.monotonic()
    limits = DEMO_LM_EVALUATION if get_target(name).backend == "huggingface" else {}
    run_config = {**RUN_CONFIG, "ops": {"evaluated_model": {"config": limits}}}
    result = judge_job.execute_in_process(instance=instance, partition_key=name, raise_on_error=False,
                                          run_config=run_config)
    meta = _materialized(result)
    evaluation = meta.get("evaluated_model", {})
    _passed, failed = _checks(result)
    served = meta.get("production_model", {})
    primary = evaluation.get("primary_metric")
    out = {
        "primary": primary or "—",
        "status": evaluation.get("status", "failed"),
        "base": evaluation.get(f"base_{primary}"), "champion": evaluation.get(f"champion_{primary}"),
        "candidate": evaluation.get(f"candidate_{primary}"), "interval": evaluation.get("interval", "—"),
        "decision": served.get("decision") or evaluation.get("decision") or evaluation.get("reason", "not evaluated"),
        "seconds": time.monotonic() - began, "failed": failed,
    }
    _say(f"[4/5] {name}: evaluated in {out['seconds']:.0f} s — {primary} candidate − champion {out['interval']} → "
         f"{out['decision']}")
    for line in failed:
        _say(f"        ✗ {line[:300]}")
    return out


def _decisions(rows: list[dict[str, Any]]) -> None:
    def num(value: Any) -> str:
        return "—" if value is None else f"{value:.3f}"

    judged = [r for r in rows if r.get("evaluation")]
    if not judged:
        return
    _say("")
    _say(f"{'target':<32} {'metric':<16} {'base':>6} {'champ':>6} {'cand':>6}  {'candidate − champion (95% CI)':<40} decision")
    for row in judged:
        e = row["evaluation"]
        _say(f"{row['target']:<32} {e['primary']:<16} {num(e['base']):>6} {num(e['champion']):>6} {num(e['candidate']):>6}  "
             f"{e['interval']!s:<40} {e['decision']} ({e['seconds']:.0f} s)")


def _summary(rows: list[dict[str, Any]], statuses: dict) -> None:
    _say("")
    _say(f"{'target':<32} {'backend':<22} {'examples':>8} {'pairs':>6}  {'dataset version':<18} job")
    for row in rows:
        status = statuses.get(row["job"])
        job = row["job"] if status is None else f"{row['job']} → {status.state}"
        if status is None and row.get("status"):
            job += f" → {row['status']}" + (f" ({row['model']})" if row.get("model") else "")
        if status is not None and status.result_model:
            job += f" ({status.result_model})"
        if status is not None and status.error:
            job += f" ({status.error.code}: {status.error.message})"
        _say(f"{row['target']:<32} {row['backend']:<22} {row['kept']!s:>8} {row['pairs']!s:>6}  "
             f"{row['version']!s:<18} {job}")


if __name__ == "__main__":
    sys.exit(run_demo())
