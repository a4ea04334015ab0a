"""A simulated product running an online experiment, to show the decisions are right how often they should be.

Users arrive each day, come back on later days with some probability, and hold sessions (one
conversation of a few turns). Each turn the product routes the user with `pipeline.serving.route`
and the rollout file as it stands that day, calls the variant's model and logs the interaction
(with `rollout`) and what the person did. The primary metric's success probability is the user's
own rate (users differ) times `1 + lift` under the challenger; failures are a mix of edits,
rejections, regenerations (the next turn asks the same thing again, seconds later) and
abandonment (nothing logged, session over), which `pipeline.curation.implicit` infers from the log.
At the end of each day the real experiment logic looks at the log and its decision is recorded
with the real `production` functions, which rewrite the rollout file the next day's routing reads.

Two modes run the same logic: `store` writes the log into a fresh interaction store through the
importer and ingestion and each look reads it back (`experiment.look`, what the asset runs);
`memory` hands each day's validated records straight to the same tally (`exposure.tally_records`),
fast enough for benchmarks over many seeds. Sessions never span days, so both see the same data
(`pipeline_tests/test_online_simulation.py` checks they decide alike).

`misroute` breaks the assignment: that share of the users the routing sends to the challenger are
served (and logged) by the champion instead, as a cache that ignores the rollout would.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

#: how each primary metric's success is logged, and the base rate of success
PRIMARY_BASE = {"accepted_rate": 0.35, "approval_rate": 0.45, "save_rate": 0.30, "thumbs_up_rate": 0.25}
START = datetime(2026, 1, 5, tzinfo=UTC)


@dataclass(frozen=True)
class World:
    """The simulated product's traffic (the defaults decide a ±30% effect within the default days)."""

    new_users_per_day: int = 250
    return_probability: float = 0.8   # a user stays with the product from one day to the next
    active_probability: float = 0.4   # a user who stays holds a session that day
    mean_extra_turns: float = 0.8     # turns per session: 1 + Poisson(this)
    user_rate_concentration: float = 8.0  # users' own success rates ~ Beta with this a + b


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@contextmanager
def _home(home: Path | None):
    """FLYWHEEL_HOME for the simulation (rollout files): a fresh temporary one unless given."""
    old = os.environ.get("FLYWHEEL_HOME")
    with tempfile.TemporaryDirectory(prefix="flywheel-sim-") as tmp:
        os.environ["FLYWHEEL_HOME"] = str(home or tmp)
        try:
            yield Path(os.environ["FLYWHEEL_HOME"])
        finally:
            if old is None:
                os.environ.pop("FLYWHEEL_HOME", None)
            else:
                os.environ["FLYWHEEL_HOME"] = old


def _turn_feedback(primary: str, success: bool, rng: np.random.Generator) -> tuple[list[tuple[str, Any]], str]:
    """(feedback events, what happens next): next is "continue", "regenerate" or "end" (abandoned)."""
    if success:
        if primary == "accepted_rate":
            return [("outcome", "accepted")], "continue"
        if primary == "approval_rate":
            return [("outcome", "accepted" if rng.random() < 0.6 else "accepted_with_edits")], "continue"
        if primary == "save_rate":
            return [("action", "saved")], "continue"
        return [("thumbs", 1)], "continue"
    u = rng.random()
    if u < 0.15:
        return [], "regenerate"
    if u < 0.30:
        return [], "end"
    if primary == "save_rate":
        return [("action", "skipped")], "continue"
    if primary == "thumbs_up_rate":
        return ([("thumbs", -1)] if rng.random() < 0.2 else []), "continue"
    if primary == "accepted_rate" and u < 0.6:
        return [("outcome", "accepted_with_edits")], "continue"
    return [("outcome", "rejected")] + ([("thumbs", -1)] if rng.random() < 0.1 else []), "continue"


def simulate(target_name: str, lift: float, seed: int, *, days: int = 28, mode: str = "memory",
             misroute: float = 0.0, world: World = World(), home: Path | None = None,
             store_url: str | None = None, looks: bool = True, test: Any = None) -> dict[str, Any]:
    """Run the simulated experiment; the JSON-ready result has `decision` and the daily `history`.

    `home` and `store_url` default to a fresh temporary FLYWHEEL_HOME and a SQLite file in it;
    `looks=False` only logs (store mode), for a caller that runs `online_experiment` itself.
    `test` replaces the effect test in memory mode (the benchmark's fixed-horizon baseline).
    """
    if mode not in ("memory", "store"):
        raise ValueError("mode is 'memory' or 'store'")
    if lift <= -1:
        raise ValueError("lift must be above -1 (the challenger's rate is the champion's times 1 + lift)")
    if not 0 <= misroute < 1:
        raise ValueError("misroute is a share of challenger users in [0, 1)")
    with _home(home):
        return _simulate(target_name, lift, seed, days, mode, misroute, world, store_url, looks, test)


def _simulate(target_name: str, lift: float, seed: int, days: int, mode: str, misroute: float,
              world: World, store_url: str | None, looks: bool, test: Any) -> dict[str, Any]:
    from pipeline.core.contract import validate_feedback, validate_interaction
    from pipeline.core.settings import flywheel_home
    from pipeline.core.store import Store
    from pipeline.core.targets import get_target
    from pipeline.curation.implicit import ImplicitWindows
    from pipeline.evaluation.decision import Decision
    from pipeline.experiments import experiment
    from pipeline.experiments.exposure import ExposureCounts, tally_records
    from pipeline.experiments.tally import StepTally
    from pipeline.ingest.importer import import_lines
    from pipeline.ingest.ingestion import ingest_increment
    from pipeline.serving import production
    from pipeline.serving.rollout import ModelRef
    from pipeline.serving.routing import load_rollout, route

    target = get_target(target_name)
    primary = target.online.primary
    if primary not in PRIMARY_BASE:
        raise ValueError(f"the simulator models primary metrics {sorted(PRIMARY_BASE)}, not {primary!r}")
    base_rate = PRIMARY_BASE[primary]
    org_id = target.tenant or "org_sim"  # a family member's log is its tenant's
    rng = np.random.default_rng(seed)
    home = flywheel_home()
    store = Store(store_url or f"sqlite:///{home / 'simulation.db'}")
    if test is not None and mode != "memory":
        raise ValueError("a replacement test runs in memory mode only")
    if not looks and mode != "store":
        raise ValueError("looks=False logs into the store: use mode='store'")
    windows = ImplicitWindows.from_scoring(target.scoring)
    challenger = ModelRef("sim/challenger", target.backend, "sim-job-1", "sim-dataset-1")
    production.record_decision(store, target, Decision("promote_challenger", "simulated candidate passed its gates",
                                                       target.gates.canary_steps[0]),
                               candidate=challenger, by="simulator", at=_iso(START - timedelta(hours=1)))
    users: dict[str, tuple[float, bool]] = {}   # id -> (own success rate, misrouted)
    active: list[str] = []
    tally, counts, step_id = StepTally(), ExposureCounts(), None
    after, history, decision, decided_day = 0, [], "continue", None
    n_interactions = 0
    for day in range(days):
        day_start = START + timedelta(days=day)
        rollout = load_rollout(target.name)
        if rollout.challenger is None:
            break
        # who comes today
        kept = [u for u in active if rng.random() < world.return_probability]
        for i in range(world.new_users_per_day):
            uid = f"u{day:03d}_{i:05d}"
            rate = rng.beta(base_rate * world.user_rate_concentration, (1 - base_rate) * world.user_rate_concentration)
            users[uid] = (float(rate), bool(rng.random() < misroute))
            kept.append(uid)
        active = kept
        lines, records = [], []
        for uid in active:
            if not uid.startswith(f"u{day:03d}_") and rng.random() >= world.active_probability:
                continue
            rate, misrouted = users[uid]
            served = route(target.name, uid, rollout)
            variant = "champion" if misrouted else served.variant
            model = (rollout.champion if variant == "champion" else rollout.challenger).model
            p = min(1.0, max(0.0, rate * (1 + lift if variant == "challenger" else 1.0)))
            when = day_start + timedelta(hours=8, seconds=float(rng.uniform(0, 12 * 3600)))
            conversation = f"c-{uid}-{day}"
            turns, question, turn = 1 + int(rng.poisson(world.mean_extra_turns)), 0, 0
            while turn < turns:
                iid = f"i-{uid}-{day}-{turn}"
                prompt = f"Make me a landing page for business idea number {question} of {uid}"
                interaction = {
                    "type": "interaction", "id": iid, "occurred_at": _iso(when), "org_id": org_id,
                    "user_id": uid, "conversation_id": conversation, "task": target.tasks[0], "model": model,
                    "messages": [{"role": "user", "content": prompt}], "response": f"answer {iid}",
                    "rollout": {"id": rollout.rollout_id, "variant": variant},
                }
                events, nxt = _turn_feedback(primary, bool(rng.random() < p), rng)
                feedback = [{"type": "feedback", "interaction_id": iid, "kind": k, "value": v,
                             "occurred_at": _iso(when + timedelta(seconds=20))} for k, v in events]
                lines += [json.dumps(interaction).encode()] + [json.dumps(f).encode() for f in feedback]
                if mode == "memory":
                    record = validate_interaction(interaction)
                    record["feedback"] = [validate_feedback(f) for f in feedback]
                    records.append(record)
                n_interactions += 1
                turn += 1
                if nxt == "end":
                    break
                if nxt == "continue":
                    question += 1
                    when += timedelta(seconds=float(rng.uniform(30, 240)))
                else:  # asks the same again, seconds later
                    when += timedelta(seconds=float(rng.uniform(5, 60)))
        as_of = _iso(day_start + timedelta(hours=23, minutes=59))
        if mode == "store":
            import_lines(store, lines, source=f"simulation day {day}")
            after = ingest_increment(store, after).cursor_to
            if not looks:
                continue
            look = experiment.look(store, target, as_of=as_of)
        else:
            if step_id != rollout.rollout_id:
                tally, counts, step_id = StepTally(), ExposureCounts(), rollout.rollout_id
            tally_records(records, rollout, windows, as_of, tally=tally, counts=counts,
                          infer=target.scoring.infer_implicit)
            look = experiment.analyse(tally, counts, rollout, target, as_of, **({'test': test} if test else {}))
        applied = experiment.apply(store, target, look, by="simulator", at=as_of) if look.decision else None
        p_eff = look.primary
        history.append({
            "day": day + 1, "share": look.share, "verdict": look.verdict,
            "users": look.srm and {"champion": look.srm.champion_users, "challenger": look.srm.challenger_users},
            "srm_p": look.srm and round(look.srm.p_value, 6),
            "primary": p_eff and {"champion": round(p_eff.champion_mean, 4), "challenger": round(p_eff.challenger_mean, 4),
                                  "low": round(p_eff.low, 4) if np.isfinite(p_eff.low) else None,
                                  "high": round(p_eff.high, 4) if np.isfinite(p_eff.high) else None},
            "reason": look.decision.reason if look.decision else "",
        })
        if applied is not None and look.verdict in ("promote", "rollback", "stop"):
            decision, decided_day = look.verdict, day + 1
            break
    final = production.current(store, target)
    store.dispose()
    return {
        "target": target.name, "primary": primary, "lift": lift, "seed": seed, "days": days, "mode": mode,
        "misroute": misroute, "decision": decision, "decided_on_day": decided_day,
        "final_share": 1.0 if decision == "promote" else (final.challenger_share if final else 0.0),
        "users": len(users), "interactions": n_interactions, "history": history,
    }
