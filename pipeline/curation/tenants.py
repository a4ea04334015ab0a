"""What the store says about each tenant of each family: plan, opt-out, and examples that would train its model.

Read by `sync_target_partitions` (the sensor and the demo) and by `fine_tune_request`, which refuses a
member whose tenant left. Counting examples scores interactions exactly as `scored_examples` does
(inferred outcomes included), so it runs only for tenants that could still qualify (plan, opt-out
and the SQL count of accepted interactions decide the rest without reading a record). Each counted
tenant keeps its own scored state (`tenant_counts/<org_id>/` under the family), so the count after
new data scores only what the new data changed, as an incremental `scored_examples` run does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from pipeline.core import store as st
from pipeline.core.artifacts import tenant_counts_dir
from pipeline.core.families import TenantStats, may_qualify
from pipeline.core.targets import Target
from pipeline.curation.curate import (
    Candidates,
    continuation,
    conversation_last_turns,
    curate_target,
    prompt_key,
    store_clock,
    store_inferred,
)
from pipeline.curation.scoring import exportable


def exportable_counts(store: st.Store, target: Target, tenants: Iterable[str]) -> dict[str, int]:
    """Per tenant: the examples `scored_examples` would keep for that tenant's member of this family.

    Scored with the target's weights, at its export threshold, exact and near duplicates collapsed
    within the tenant as `scored_examples` does; read in SQL one tenant at a time, so memory is one
    tenant's dedup keys. This is the count `per_tenant.min_examples` is compared with.

    Each tenant's member is curated into `tenant_counts_dir` (kept between runs: a count after new
    data scores only what changed); a tenant that cannot be a member (an excluded one, an org_id
    that cannot name a folder) is counted in memory, from scratch (`count_in_memory`).
    """
    counts = {}
    rest = []
    for org in sorted(set(tenants)):
        member = _member(target, org)
        if member is None:
            rest.append(org)
        else:
            counts[org] = curate_target(store, member, folder=tenant_counts_dir(target.name, org)).kept
    return {**counts, **count_in_memory(store, target, rest)}


def _member(family: Target, org: str) -> Target | None:
    try:
        return family.member(org)
    except ValueError:
        return None


def count_in_memory(store: st.Store, target: Target, tenants: Iterable[str]) -> dict[str, int]:
    """`exportable_counts` from scratch, nothing kept: every accepted interaction of each tenant read and scored."""
    counts: dict[str, int] = {}
    tenants = sorted(set(tenants))
    if not tenants:
        return counts
    embedding = target.method == "embedding"
    as_of = store_clock(store) if target.scoring.infer_implicit and not embedding else None
    for org in tenants:
        continued = continuation(conversation_last_turns(store, [org], target.exclude_tenants))
        inferred = store_inferred(store, target, as_of, tenants=[org], exclude=target.exclude_tenants)
        candidates = Candidates()
        for batch in store.iter_accepted(target.tasks, [org], target.exclude_tenants):
            for record in batch:
                try:
                    scored = exportable(record, target.scoring, conversation_continued=continued(record),
                                        inferred=inferred.get(record["id"]))
                    if scored is None:
                        continue
                    exact, said, context = prompt_key(record, embedding)
                except (KeyError, TypeError, ValueError, AttributeError):
                    continue  # scored_examples quarantines it with its reason; it is no example either way
                candidates.add(record, scored, exact, said, context)
            candidates.seal_batch()
        counts[org] = int(candidates.collapse(target.scoring.near_duplicate_threshold).keep.sum())
    return counts


def family_tenant_stats(
    store: st.Store, family: Target, profiles: Mapping[str, st.OrgProfile] | None = None,
    only: Iterable[str] | None = None, count_examples: bool = True,
) -> list[TenantStats]:
    """Every tenant the store knows for one family (an organization record, or accepted interactions of its tasks).

    `only` limits it to some tenants; without `count_examples` no record is read (what
    `families.departure` needs: plan and opt-out only).
    """
    profiles = store.organization_profiles() if profiles is None else profiles
    accepted = store.accepted_counts(family.tasks)
    orgs = set(profiles) | set(accepted)
    if only is not None:
        orgs = set(only)
    stats = []
    for org in sorted(orgs):
        profile = profiles.get(org)
        stats.append(TenantStats(
            org_id=org,
            on_record=profile is not None,
            plan=profile.plan if profile else None,
            opted_out=bool(profile and profile.training_opt_out),
            malformed=bool(profile and profile.malformed),
            accepted=accepted.get(org, 0),
        ))
    if not count_examples:
        return stats
    counted = exportable_counts(store, family, [s.org_id for s in stats if may_qualify(family, s)])
    return [replace(s, examples=counted[s.org_id]) if s.org_id in counted else s for s in stats]


def tenant_stats(store: st.Store, targets: Mapping[str, Target]) -> dict[str, list[TenantStats]]:
    """`family_tenant_stats` for every family of the targets file, the organizations read once."""
    profiles = store.organization_profiles()
    return {name: family_tenant_stats(store, target, profiles) for name, target in targets.items() if target.is_family}
