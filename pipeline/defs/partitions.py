"""Assets from `scored_examples` on are partitioned by training target: Dagster dynamic partitions `training_targets`.

The set grows and shrinks with the tenants: a fixed target is one key (`page_builder`), each
qualifying tenant of a family is one key `<family>/<org_id>` (`avatar_chat/avatar_luna`).
`sync_target_partitions` (in `target_partitions.py`) keeps it in step: the
`target_partitions_sensor` calls it, and so does `flywheel demo` right after ingestion.
"""

import warnings

import dagster as dg

TARGET_PARTITIONS = "training_targets"

target_partitions = dg.DynamicPartitionsDefinition(name=TARGET_PARTITIONS)

#: the on-call runbook: one section per asset check, headed by the check's exact name
RUNBOOK = "docs/runbook.md"


def runbook_link(check_name: str) -> str:
    """Where the runbook explains `check_name`: `docs/runbook.md#<check_name>`."""
    return f"{RUNBOOK}#{check_name}"


def with_runbook(description: str, check_name: str) -> str:
    """A check's description on one line, ending with ` Runbook: docs/runbook.md#<check_name>`."""
    text = " ".join(description.split())
    if not text:
        raise ValueError(f"check {check_name} needs a description (its docstring) for the UI and the runbook")
    return f"{text} Runbook: {runbook_link(check_name)}"


def target_check(**kwargs):
    """`dg.asset_check(..., partitions_def=target_partitions)`: a check evaluated per training target.

    Its description (`description=` or the function's docstring) gets the link to the check's
    runbook section. Partitioned asset checks are a preview feature in Dagster 1.13; the warning it
    raises at definition time is expected, so it is silenced here, in one place.
    """

    def wrap(fn):
        name = kwargs.get("name") or fn.__name__
        description = with_runbook(kwargs.pop("description", None) or fn.__doc__ or "", name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.PreviewWarning)
            return dg.asset_check(partitions_def=target_partitions, description=description, **kwargs)(fn)

    return wrap
