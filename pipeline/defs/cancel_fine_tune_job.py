"""`cancel_fine_tune_job`: stop a fine-tune job from the Dagster UI (Launchpad: config `job_id`)."""

import dagster as dg

from pipeline.backends.resource import BACKEND_NAMES, FineTuneBackends
from pipeline.core.resources import StoreResource


class CancelFineTuneJobConfig(dg.Config):
    """Which job to cancel."""

    job_id: str
    """The job id, as shown in the fine_tune_job metadata and the model registry."""
    backend: str = ""
    """Only needed for a job the registry does not know: openai, huggingface or sentence_transformers."""


def terminate_run(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Ask the instance to terminate a run in progress (how a job trained in a step is cancelled)."""
    run = instance.get_run_by_id(run_id)
    if run is None or run.is_finished:
        return False
    return bool(instance.run_coordinator.cancel_run(run_id))


@dg.op(tags={"kind": "python"})
def cancel_fine_tune_job_op(
    context: dg.OpExecutionContext, config: CancelFineTuneJobConfig, store: StoreResource, backends: FineTuneBackends
) -> dg.Output[str]:
    """Cancels the job (at its provider, or by terminating the run training it) and records it in the registry."""
    from pipeline.finetune import registry
    from pipeline.finetune.lifecycle import cancel_job

    db = store.get()
    row = registry.get_job(db, config.job_id)
    backend_name = config.backend or (row["backend"] if row else "")
    if backend_name not in BACKEND_NAMES:
        raise dg.Failure(description=(
            f"job {config.job_id!r} is not in the model registry; set config 'backend' to one of "
            f"{', '.join(BACKEND_NAMES)} to cancel it anyway"
        ))
    status = cancel_job(db, backends.get(backend_name), config.job_id,
                        terminate_run=lambda run_id: terminate_run(context.instance, run_id))
    context.log.info(f"{backend_name} job {config.job_id} is now {status.state.value}")
    return dg.Output(
        status.state.value,
        metadata={"job_id": config.job_id, "backend": backend_name, "state": status.state.value},
    )


@dg.job(description="Cancel one fine-tune job (config: job_id); a local training's run is terminated.",
        tags={"team": "ml-platform"})
def cancel_fine_tune_job():
    cancel_fine_tune_job_op()
