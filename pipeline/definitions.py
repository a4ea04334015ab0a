"""The composition root: Flywheel's code location is whatever `pipeline/defs/` defines.

Every module under `pipeline/defs/` is a thin Dagster wrapper (assets, checks, jobs, sensors, and the
resources in `defs/resources.py`); the logic they call lives in the pure packages beside it
(`ingest`, `curation`, `anonymize`, `training_files`, `finetune`, `backends`, `core`).
`dg check defs` and `dg list defs` read the same folder through `[tool.dg]` in pyproject.toml.

The executor is Dagster's default (multiprocess, one machine) unless `FLYWHEEL_EXECUTOR` says
`celery` (every step a Celery task on the broker `FLYWHEEL_CELERY_BROKER` names, deploy/celery/) or
`k8s` (every step a Kubernetes Job, configured by deploy/k8s/executor.yaml). dagster-celery and
dagster-k8s are imported only then, so the default location loads without them.
"""

import os
from pathlib import Path

import dagster as dg

from pipeline.core.targets import load_targets

# Validate targets.yaml at load: a malformed file fails the code location with its line and field.
TARGETS = load_targets()

EXECUTOR_VARIABLE = "FLYWHEEL_EXECUTOR"
BROKER_VARIABLE = "FLYWHEEL_CELERY_BROKER"
QUEUE_VARIABLE = "FLYWHEEL_CELERY_QUEUE"
K8S_CONFIG_VARIABLE = "FLYWHEEL_K8S_EXECUTOR_CONFIG"
K8S_CONFIG_DEFAULT = Path(__file__).resolve().parents[1] / "deploy" / "k8s" / "executor.yaml"


def executor_from_env() -> dg.ExecutorDefinition | None:
    """The executor `FLYWHEEL_EXECUTOR` asks for: unset or `multiprocess` is Dagster's default (None)."""
    name = os.environ.get(EXECUTOR_VARIABLE, "").strip().lower()
    if name in ("", "multiprocess"):
        return None
    if name == "celery":
        return celery_executor_from_env()
    if name == "k8s":
        return k8s_executor_from_file(Path(os.environ.get(K8S_CONFIG_VARIABLE) or K8S_CONFIG_DEFAULT))
    raise ValueError(f"{EXECUTOR_VARIABLE}={name!r}: expected 'multiprocess' (the default), 'celery' or 'k8s'")


def celery_executor_from_env() -> dg.ExecutorDefinition:
    """dagster-celery's executor on the broker `FLYWHEEL_CELERY_BROKER`, steps to `FLYWHEEL_CELERY_QUEUE`.

    The broker is read through `{env: ...}` when the run starts (a URL with a password stays out of
    the run's config); the queue defaults to `dagster`, what workers listen on unless started with `-q`.
    """
    if not os.environ.get(BROKER_VARIABLE):
        raise ValueError(
            f"{EXECUTOR_VARIABLE}=celery needs {BROKER_VARIABLE}, the broker the Celery workers listen on "
            "(e.g. amqp://user:password@rabbitmq:5672// or redis://redis:6379/0); see deploy/celery/worker.yaml"
        )
    from dagster_celery import celery_executor

    return celery_executor.configured(
        {
            "broker": {"env": BROKER_VARIABLE},
            "backend": "rpc://",  # as deploy/celery/worker.yaml: results come back as broker messages
            "config_source": {"task_default_queue": os.environ.get(QUEUE_VARIABLE) or "dagster"},
        },
        name="celery",
    )


def k8s_executor_from_file(path: Path) -> dg.ExecutorDefinition:
    """dagster-k8s's k8s_job_executor configured by `execution: config:` of `path`, checked when the location loads."""
    import yaml
    from dagster._config import validate_config  # what dagster-celery's CLI uses to check its worker file
    from dagster_k8s import k8s_job_executor

    if not path.is_file():
        raise ValueError(f"{EXECUTOR_VARIABLE}=k8s: the executor config {path} ({K8S_CONFIG_VARIABLE}) does not exist")
    config = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("execution", {}).get("config")
    result = validate_config(k8s_job_executor.config_schema.config_type, config)
    if not isinstance(config, dict) or not result.success:
        errors = "; ".join(e.message for e in result.errors or []) or "expected a mapping under execution: config:"
        raise ValueError(f"{path}: not a k8s_job_executor config: {errors}")
    return k8s_job_executor.configured(config, name="k8s")


def build_defs() -> dg.Definitions:
    found = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    executor = executor_from_env()
    return found if executor is None else dg.Definitions.merge(found, dg.Definitions(executor=executor))


defs = build_defs()
