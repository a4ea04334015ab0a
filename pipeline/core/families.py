"""Families: targets with `per_tenant:` that grow one model per qualifying tenant, and the partition set they imply.

Pure planning, no I/O: `standing` says where one tenant stands with one family, `plan_partitions`
turns the declared targets, what the store says about each tenant (`TenantStats`) and the partition
keys Dagster holds now into what to add, remove and retire, each with its reason.
`pipeline/curation/tenants.py` gathers the stats from the store; `pipeline/defs/target_partitions.py`
applies a plan to Dagster's dynamic partitions and the model registry.

Partition keys: a fixed target is its name (`page_builder`); a family member is
`<family>/<org_id>` (`avatar_chat/avatar_luna`, `roast_custom/org_brightbrew`).

Where a tenant stands with a family, in this order:

| verdict  | when                                                                 | what happens to its key     |
|----------|----------------------------------------------------------------------|-----------------------------|
| `skip`   | its org_id cannot be part of a key (`/`, `..`, spaces, …)            | never a member; reported    |
| `remove` | excluded by the targets file (`exclude_tenants`, or not in `tenants`) | removed; models kept as they are |
| `retire` | it opted out of training, or its plan is not one of `plans`, or it left the source | removed, models retired, training refused |
| `remove` | fewer examples at the export threshold than `per_tenant.min_examples` | removed; comes back when it qualifies |
| `member` | otherwise                                                            | added (or kept)             |
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from pipeline.core.targets import MEMBER_SEPARATOR, Target, member_key, member_org_id_ok

Verdict = Literal["member", "remove", "retire", "skip"]


@dataclass(frozen=True)
class TenantStats:
    """What the store says about one tenant, for one family."""

    org_id: str
    #: the tenant has an organization record
    on_record: bool = True
    plan: str | None = None
    #: `training_opt_out` is true, or the organization record is unreadable
    opted_out: bool = False
    malformed: bool = False
    #: accepted interactions of the family's tasks
    accepted: int = 0
    #: the examples scored_examples would keep for the tenant's member (export threshold, duplicates
    #: collapsed); None when not counted because the tenant cannot qualify anyway
    examples: int | None = None


@dataclass(frozen=True)
class Standing:
    verdict: Verdict
    reason: str


@dataclass
class PartitionPlan:
    """What to do to the partition set (and the model registry), with a reason per key."""

    add: dict[str, str] = field(default_factory=dict)
    remove: dict[str, str] = field(default_factory=dict)
    #: keys whose tenant left: removed from the partitions *and* their models retired
    retire: dict[str, str] = field(default_factory=dict)
    keep: dict[str, str] = field(default_factory=dict)
    #: tenants that cannot be members at all (an org_id that cannot be part of a key)
    skipped: dict[str, str] = field(default_factory=dict)
    #: tenants with interactions of the family's tasks that are not members and were not (why not)
    declined: dict[str, str] = field(default_factory=dict)

    @property
    def members(self) -> list[str]:
        """Every key the partition set holds after this plan."""
        return sorted({*self.add, *self.keep})

    @property
    def changed(self) -> bool:
        return bool(self.add or self.remove or self.retire)

    def summary(self) -> str:
        parts = [f"{len(self.members)} partitions"]
        for name, keys in (("added", self.add), ("removed", self.remove), ("retired", self.retire),
                           ("skipped", self.skipped)):
            if keys:
                parts.append(f"{name} {len(keys)}: " + "; ".join(f"{k} ({why})" for k, why in sorted(keys.items())))
        return ", ".join(parts)


def standing(family: Target, stats: TenantStats) -> Standing:
    """Where one tenant stands with one family (see the table in the module's docstring)."""
    barred = _barred(family, stats)
    if barred is not None:
        return barred
    org = stats.org_id
    needed = family.qualifying_examples
    threshold = f"{family.scoring.export_threshold:g}"
    if stats.examples is None:
        if stats.accepted < needed:
            return Standing("remove", f"{org} has {stats.accepted} accepted {'/'.join(family.tasks)} interactions, "
                                      f"fewer than the {needed} examples per_tenant.min_examples needs")
        raise ValueError(f"{org}: examples were not counted for {family.name} although it may qualify")
    if stats.examples < needed:
        return Standing("remove", f"{org} has {stats.examples} examples at export threshold {threshold}, "
                                  f"fewer than per_tenant.min_examples={needed}")
    plan = f" on plan {stats.plan!r}" if stats.plan is not None else ""
    return Standing("member", f"{org}{plan}: {stats.examples} examples at export threshold {threshold} "
                              f"(needs {needed})")


def departure(family: Target, stats: TenantStats) -> str | None:
    """Why the tenant left the family (opted out, left the plan, left the source), or None; counts play no part."""
    barred = _barred(family, stats)
    return barred.reason if barred is not None and barred.verdict == "retire" else None


def _barred(family: Target, stats: TenantStats) -> Standing | None:
    """The verdicts that do not depend on the tenant's examples, or None."""
    assert family.per_tenant is not None, f"{family.name} is not a family"
    org = stats.org_id
    if not member_org_id_ok(org):
        return Standing("skip", f"org_id {org!r} cannot be part of a partition key (letters, digits, '_.@+-'; no '..')")
    if org in family.exclude_tenants:
        return Standing("remove", f"{org} is in exclude_tenants of {family.name} in the targets file")
    if family.tenants is not None and org not in family.tenants:
        return Standing("remove", f"{org} is not in the tenants of {family.name} in the targets file")
    if stats.malformed:
        return Standing("retire", f"{org}'s organization record is unreadable, so it counts as opted out")
    if stats.opted_out:
        return Standing("retire", f"{org} opted out of training (training_opt_out)")
    if not stats.on_record and not stats.accepted:
        return Standing("retire", f"{org} left: no organization record and no accepted interactions")
    plans = family.per_tenant.plans
    if plans is not None and stats.plan not in plans:
        on = f"plan {stats.plan!r}" if stats.plan is not None else "no plan on record"
        return Standing("retire", f"{org} has {on}, not one of {family.name}'s plans {list(plans)}")
    return None


def may_qualify(family: Target, stats: TenantStats) -> bool:
    """Whether a tenant's examples are worth counting: only its count could still keep it out."""
    return _barred(family, stats) is None and stats.accepted >= family.qualifying_examples


def plan_partitions(
    targets: Mapping[str, Target],
    tenant_stats: Mapping[str, Iterable[TenantStats]],
    current: Iterable[str],
    trained: Iterable[str] = (),
) -> PartitionPlan:
    """The partition set the targets and tenants imply, as changes to `current`.

    `tenant_stats` maps each family's name to what the store says about its tenants. `trained`
    names keys that still have models not yet retired: a tenant that left is retired even when its
    key was already removed (it fell below the minimum first, then opted out).
    """
    current_keys, trained_keys = set(current), set(trained)
    plan = PartitionPlan()
    explained: set[str] = set()
    for name, target in sorted(targets.items()):
        if target.is_family:
            continue
        explained.add(name)
        (plan.keep if name in current_keys else plan.add)[name] = "a fixed target in the targets file"
    for name, target in sorted(targets.items()):
        if not target.is_family:
            continue
        for stats in sorted(tenant_stats.get(name, ()), key=lambda s: s.org_id):
            key = member_key(name, stats.org_id)
            verdict = standing(target, stats)
            if verdict.verdict == "skip":
                plan.skipped[key] = verdict.reason
                continue
            explained.add(key)
            if verdict.verdict == "member":
                (plan.keep if key in current_keys else plan.add)[key] = verdict.reason
            elif verdict.verdict == "retire" and (key in current_keys or key in trained_keys):
                plan.retire[key] = verdict.reason
            elif verdict.verdict == "remove" and key in current_keys:
                plan.remove[key] = verdict.reason
            elif stats.accepted:  # a tenant with none of the family's tasks is no candidate: not listed
                plan.declined[key] = verdict.reason
    for key in sorted(current_keys - explained):
        family, sep, org = key.partition(MEMBER_SEPARATOR)
        target = targets.get(family)
        if not sep:
            plan.remove[key] = f"{key} is no longer a fixed target in the targets file"
        elif target is None or not target.is_family:
            plan.remove[key] = f"family {family!r} is no longer declared in the targets file"
        else:  # a member whose tenant the store no longer knows at all
            plan.retire[key] = f"{org} left: no organization record and no accepted interactions"
    for key in sorted(trained_keys - current_keys - set(plan.retire)):
        family, sep, org = key.partition(MEMBER_SEPARATOR)
        if sep and family in targets and targets[family].is_family and key not in explained:
            plan.retire[key] = f"{org} left: no organization record and no accepted interactions"
    return plan
