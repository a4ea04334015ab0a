"""`flywheel jobs list | wait | cancel JOB_ID`: the model registry from a shell."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator


@contextlib.contextmanager
def resolved_backends() -> Iterator[dict]:
    """The backends as the code location configures them (pipeline/defs/resources.py), secrets resolved; by name."""
    import dagster as dg

    from pipeline.defs.resources import backends_resource

    with dg.build_resources({"backends": backends_resource()}) as resources:
        yield resources.backends.as_mapping()


def terminate_run(run_id: str) -> bool:
    """Terminate the Dagster run training a local job, on the instance `DAGSTER_HOME` names."""
    import dagster as dg

    from pipeline.defs.cancel_fine_tune_job import terminate_run as terminate

    with dg.DagsterInstance.get() as instance:
        return terminate(instance, run_id)


def run(args: argparse.Namespace) -> int:
    from pipeline.core.settings import source_url
    from pipeline.core.store import Store
    from pipeline.finetune import registry
    from pipeline.finetune.lifecycle import cancel_job, wait_for_jobs

    store = Store(source_url())
    if args.action == "list":
        for row in registry.list_jobs(store):
            error = row.get("error") or {}
            print("\t".join(str(x) for x in (
                row["job_id"], row["target"], row["dataset_version"], row["backend"], row["status"],
                row.get("result_model") or error.get("message") or "",
            )))
        return 0
    with resolved_backends() as backends:
        if args.action == "wait":
            statuses = wait_for_jobs(store, backends, args.timeout)
            print(json.dumps({s.job_id: str(s.state) for s in statuses}, sort_keys=True))
            return 0 if all(str(s.state) == "succeeded" for s in statuses) else 1
        if not args.job_id:
            print("flywheel jobs cancel: name the job id (see `flywheel jobs list`)")
            return 2
        row = registry.get_job(store, args.job_id)
        if row is None:
            print(f"flywheel jobs cancel: job {args.job_id!r} is not in the model registry")
            return 2
        status = cancel_job(store, backends[row["backend"]], args.job_id, terminate_run=terminate_run)
        print(f"{row['backend']} job {args.job_id}: {status.state}")
        return 0
