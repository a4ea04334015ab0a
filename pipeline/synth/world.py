"""The synthetic world the five products live in: tenants, users, ids, the clock, record shapes.

`World` carries everything a product generator needs and keeps nothing that grows with the number
of records, so generation streams in flat memory. Times are epoch seconds until a record is built;
they are written as RFC 3339 with `Z`, inside the 90 days before a fixed anchor (never `now()`,
so the same seed gives the same bytes).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from pipeline.synth.pii import PiiSource

#: The last moment of the synthetic log; records spread over the `SPAN_S` seconds before it.
ANCHOR_EPOCH = 1_793_491_200  # 2026-11-01T00:00:00Z
SPAN_S = 90 * 86_400

PRODUCTS = ("page_builder", "signals", "ux_review", "roast", "avatar_chat")
AVATARS = ("avatar_luna", "avatar_max", "avatar_nova")


@dataclass(frozen=True)
class Org:
    org_id: str
    product: str
    plan: str
    training_opt_out: bool = False


#: ~40 tenants. Three opt out of training (their ids contain `optout`) and still log interactions.
ORGS: tuple[Org, ...] = (
    *(
        Org(f"org_{slug}", "page_builder", plan)
        for slug, plan in (
            ("harbor_sailing", "pro"),
            ("bluefern_yoga", "free"),
            ("kessler_dental", "enterprise"),
            ("copper_cycles", "free"),
            ("juniper_law", "pro"),
            ("saltwater_rentals", "pro"),
            ("little_owl_cafe", "free"),
            ("alder_realty", "enterprise"),
            ("redkite_photo", "free"),
            ("evergreen_lingua", "pro"),
            ("brightside_salon", "free"),
        )
    ),
    Org("org_optout_sunny_bakery", "page_builder", "pro", training_opt_out=True),
    *(
        Org(f"org_{slug}", "signals", plan)
        for slug, plan in (
            ("podpulse", "enterprise"),
            ("clipwise", "pro"),
            ("founder_notes", "pro"),
            ("signalroom", "free"),
            ("deepdive_media", "enterprise"),
            ("listenlab", "free"),
            ("vc_digest", "pro"),
        )
    ),
    Org("org_optout_deepcast", "signals", "enterprise", training_opt_out=True),
    *(
        Org(f"org_{slug}", "ux_review", plan)
        for slug, plan in (
            ("tallyhq", "enterprise"),
            ("shopfront", "pro"),
            ("medibook", "enterprise"),
            ("fintrak", "pro"),
            ("travelnest", "pro"),
            ("learnly", "free"),
            ("gridpower", "enterprise"),
            ("homechef", "free"),
        )
    ),
    *(
        Org(f"org_{slug}", "roast", plan)
        for slug, plan in (
            ("brightbrew", "pro"),
            ("snackattack", "enterprise"),
            ("gymrat_gear", "pro"),
            ("cloudnine_mattress", "pro"),
            ("pixel_pets", "free"),
            ("zestful_juice", "enterprise"),
            ("rocket_rides", "pro"),
            ("burger_barn", "free"),
        )
    ),
    Org("org_optout_loudmouth_labs", "roast", "pro", training_opt_out=True),
    *(
        Org(slug, "avatar_chat", plan)
        for slug, plan in zip(AVATARS, ("enterprise", "pro", "pro"), strict=True)
    ),
)
ORGS_BY_PRODUCT: dict[str, tuple[Org, ...]] = {p: tuple(o for o in ORGS if o.product == p) for p in PRODUCTS}


def rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def organization_record(org: Org) -> dict[str, Any]:
    return {
        "type": "organization",
        "org_id": org.org_id,
        "plan": org.plan,
        "training_opt_out": org.training_opt_out,
    }


class World:
    """Shared state of one generation run: the random stream, id counters and personal data."""

    def __init__(self, seed: int):
        self.seed = seed
        self.rng = random.Random(seed)
        self.pii = PiiSource(self.rng)
        self._interactions = 0
        self._conversations = 0

    # ---------------------------------------------------------------- ids and people
    def interaction_id(self) -> str:
        self._interactions += 1
        return f"ix_{self.seed}_{self._interactions:07d}"

    def conversation_id(self) -> str:
        self._conversations += 1
        return f"cv_{self.seed}_{self._conversations:06d}"

    def user_id(self, org: Org, pool: int = 25) -> str:
        return f"u_{org.org_id.removeprefix('org_')}_{self.rng.randrange(pool):03d}"

    # ---------------------------------------------------------------- record shapes
    def interaction(
        self,
        org: Org,
        at: float,
        task: str,
        messages: list[dict[str, str]],
        response: str,
        *,
        user_id: str | None = None,
        conversation_id: str | None = None,
        model: str | None = None,
        system_prompt: str | None = None,
        response_format: str = "text",
        context: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "type": "interaction",
            "id": self.interaction_id(),
            "occurred_at": rfc3339(at),
            "org_id": org.org_id,
            "user_id": user_id,
            "conversation_id": conversation_id,
            "task": task,
            "model": model,
        }
        if system_prompt is not None:
            record["system_prompt"] = system_prompt
        record["messages"] = messages
        record["response"] = response
        record["response_format"] = response_format
        if context:
            record["context"] = context
        return {k: v for k, v in record.items() if v is not None}

    def feedback(self, interaction: dict[str, Any], at: float, kind: str, value: Any) -> dict[str, Any]:
        return {
            "type": "feedback",
            "interaction_id": interaction["id"],
            "occurred_at": rfc3339(at),
            "kind": kind,
            "value": value,
        }

    def feedback_series(
        self, interaction: dict[str, Any], at: float, kind: str, value: Any, earlier: tuple[Any, ...] = ()
    ) -> list[dict[str, Any]]:
        """One event of `kind`, and with 6% odds an earlier, different one the person changed later.

        The final `value` comes last in time, so "the latest event wins" gives back `value`.
        """
        events = []
        earlier = tuple(prior for prior in earlier if prior != value)  # a change of mind changes the value
        if earlier and self.rng.random() < 0.06:
            prior = self.rng.choice(earlier)
            events.append(self.feedback(interaction, at - self.rng.uniform(30, 3_600), kind, prior))
        events.append(self.feedback(interaction, at, kind, value))
        return events

    def later(self, at: float, low: float = 5, high: float = 900) -> float:
        """A moment after `at`, seconds to minutes later."""
        return at + self.rng.uniform(low, high)

    def pick(self, weights: dict[str, float]) -> str:
        """A key of `weights`, drawn in proportion to its weight."""
        roll = self.rng.random() * sum(weights.values())
        for key, weight in weights.items():
            roll -= weight
            if roll < 0:
                return key
        return key
