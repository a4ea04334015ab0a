"""`cancel_fine_tune_job`: stop a fine-tune job from the Dagster UI (Launchpad: config `job_id`)."""

import dagster as dg

from pipeline.finetune import registry
from pipeline.finetune.assets import BACKEND_RESOURCE_KEYS
from pipeline.finetune.lifecycle import cancel_job
from pipeline.finetune.settings import BACKEND_NAMES


class CancelFineTuneJobConfig(dg.Config):
    """Which job to cancel."""

    job_id: str
    """The backend's job id, as shown in the fine_tune_job metadata and the model registry."""
    backend: str = ""
    """Only needed for a job the registry does not know: openai, huggingface or sentence_transformers."""


@dg.op(required_resource_keys={"store", *BACKEND_RESOURCE_KEYS}, tags={"kind": "python"})
def cancel_fine_tune_job_op(context: dg.OpExecutionContext, config: CancelFineTuneJobConfig) -> dg.Output[str]:
    """Cancels the job at its backend and records the outcome in the model registry."""
    store = context.resources.store.get()
    row = registry.get_job(store, config.job_id)
    backend_name = config.backend or (row["backend"] if row else "")
    if backend_name not in BACKEND_NAMES:
        raise dg.Failure(description=(
            f"job {config.job_id!r} is not in the model registry; set config 'backend' to one of "
            f"{', '.join(BACKEND_NAMES)} to cancel it anyway"
        ))
    status = cancel_job(store, getattr(context.resources, f"{backend_name}_backend"), config.job_id)
    context.log.info(f"{backend_name} job {config.job_id} is now {status.state.value}")
    return dg.Output(
        status.state.value,
        metadata={"job_id": config.job_id, "backend": backend_name, "state": status.state.value},
    )


@dg.job(description="Cancel one fine-tune job (config: job_id); the status sensor then reports its end.",
        tags={"team": "ml-platform"})
def cancel_fine_tune_job():
    cancel_fine_tune_job_op()
