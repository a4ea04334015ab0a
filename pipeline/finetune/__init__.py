"""Fine-tuning: the `fine_tune_job` asset, the model registry, the job-status sensor, cancel.

Wire into `pipeline/definitions.py`:

    from pipeline.finetune import (
        FINETUNE_ASSETS, FINETUNE_CHECKS, FINETUNE_JOBS, FINETUNE_SENSORS, SentenceTransformersBackend,
    )
    resources = {..., "sentence_transformers_backend": SentenceTransformersBackend()}
"""

from pipeline.backends.sentence_transformers_backend import SentenceTransformersBackend
from pipeline.finetune.assets import fine_tune_job, fine_tune_job_not_stuck
from pipeline.finetune.jobs import cancel_fine_tune_job
from pipeline.finetune.sensors import build_fine_tune_job_status_sensor, fine_tune_job_status_sensor

FINETUNE_ASSETS = [fine_tune_job]
FINETUNE_CHECKS = [fine_tune_job_not_stuck]
FINETUNE_SENSORS = [fine_tune_job_status_sensor]
FINETUNE_JOBS = [cancel_fine_tune_job]

__all__ = [
    "FINETUNE_ASSETS",
    "FINETUNE_CHECKS",
    "FINETUNE_JOBS",
    "FINETUNE_SENSORS",
    "SentenceTransformersBackend",
    "build_fine_tune_job_status_sensor",
]
