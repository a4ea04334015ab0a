"""From a finished job to a decision without a click: declarative automation for `evaluated_model` and `production_model`.

The rule reads the same for both, so it is one condition rather than two sensors:
materialize a target's partition when its upstream partition was updated since the last time
this one was requested, nothing upstream is missing or in flight, and **every blocking check of
the upstream passed on its latest materialization**:

- `evaluated_model` follows `fine_tune_job` once `fine_tune_job_succeeded` passed (a hosted job
  that is still running is a warning, not a pass; a failed job is an error);
- `production_model` follows `evaluated_model` once its four gates passed; a refused candidate
  (a failed gate) is never promoted by automation.

`AutomationCondition.eager()` alone does not wait for checks, so the condition adds
`all_deps_blocking_checks_passed()`; `production_model` re-verifies the gates itself as well
(`require_approved`), so a run launched by hand cannot walk around them either. Evaluated by the
`evaluate_and_promote` sensor (every `FLYWHEEL_AUTOMATION_SECONDS`, default 30).
"""

import os

import dagster as dg

AUTOMATION_SENSOR = "evaluate_and_promote"
DEFAULT_AUTOMATION_SECONDS = 30

#: materialize after an upstream update whose blocking checks all passed
AFTER_UPSTREAM_PASSED = (
    dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("upstream updated and its blocking checks passed")


evaluate_and_promote = dg.AutomationConditionSensorDefinition(
    AUTOMATION_SENSOR,
    target=dg.AssetSelection.assets("evaluated_model", "production_model"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=int(os.environ.get("FLYWHEEL_AUTOMATION_SECONDS", DEFAULT_AUTOMATION_SECONDS)),
    description="Evaluates each newly trained model once its job succeeded, and promotes it once the evaluation's "
                "blocking checks passed (declarative automation).",
)
