"""UX review: a company describes a screen; the model answers with JSON findings.

Each screen description plants some known issues (low contrast, a tiny tap target...). The model
finds most of them, misses some and invents a few. About 40% get a reviewer's `label`: the
corrected findings JSON, which overrides the model as the training target. Many get a 0..1
`rating` from an upstream scorer that tracks how close the findings were.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from pipeline.synth.world import Org, World

MODEL = "gpt-4o-mini-2024-07-18"
SYSTEM_PROMPT = "You are a UX testing AI specialized in finding usability issues. Answer with JSON findings."

#: key -> (what the description says, heuristic, severity, element, finding)
ISSUES = {
    "contrast": (
        "Body text is light grey (#B0B0B0) on white.",
        "accessibility",
        "high",
        "body text",
        "Text contrast is about 2:1, below the WCAG AA minimum of 4.5:1.",
    ),
    "tap_target": (
        "The close icon is 16x16 px in the top corner.",
        "accessibility",
        "medium",
        "close icon",
        "Tap target is far below 44x44 px; easy to miss on mobile.",
    ),
    "no_error": (
        "Submitting with an empty field clears the form without a message.",
        "error prevention",
        "high",
        "form",
        "No inline error; users lose their input and do not know why.",
    ),
    "jargon": (
        "The primary button says 'Instantiate workspace'.",
        "match with real world",
        "medium",
        "primary button",
        "Button label uses system jargon; say 'Create workspace'.",
    ),
    "hidden_nav": (
        "Navigation sits behind an unlabeled hamburger icon on desktop.",
        "visibility",
        "medium",
        "navigation",
        "Main navigation is hidden on a wide screen; show it.",
    ),
    "no_progress": (
        "A 5-step wizard shows no step indicator.",
        "system status",
        "low",
        "wizard",
        "Users cannot tell how many steps remain.",
    ),
    "dark_pattern": (
        "The newsletter checkbox is pre-ticked and says 'Don't not send me offers'.",
        "ethics",
        "high",
        "newsletter checkbox",
        "Pre-ticked, double-negative consent is a dark pattern.",
    ),
    "placeholder_label": (
        "Form fields use placeholders instead of labels.",
        "recognition over recall",
        "medium",
        "form fields",
        "Labels vanish while typing; add persistent labels.",
    ),
    "slow_feedback": (
        "Clicking 'Pay' shows nothing for 4 seconds.",
        "system status",
        "high",
        "pay button",
        "No loading state; users click twice and may pay twice.",
    ),
    "inconsistent_buttons": (
        "Primary buttons are green on one step and blue on the next.",
        "consistency",
        "low",
        "buttons",
        "Primary action colour changes between steps.",
    ),
}
SCREENS = (
    "checkout page",
    "sign-up form",
    "account settings",
    "onboarding wizard",
    "dashboard",
    "KYC verification step",
    "payout settings",
    "booking calendar",
    "search results page",
)
PLATFORMS = ("iOS app", "Android app", "web app (desktop)", "mobile web")


def _sample_data(world: World, screen: str) -> str:
    """Sample data visible on the screen, the way testers paste it: real-looking personal data."""
    pii = world.pii
    name = pii("person")
    if screen == "checkout page":
        return f"The form is prefilled with {name}, {pii.email_for(name)}, card {pii('credit_card')}."
    if screen == "KYC verification step":
        return f"The test user {name} typed SSN {pii('ssn')} and lives at {pii('address')}."
    if screen == "payout settings":
        return f"Payout account: {name}, IBAN {pii('iban')}."
    if screen == "account settings":
        return f"Profile shows {name}, phone {pii('phone')}, last login from {pii('ip')}."
    roll = world.rng.random()
    if roll < 0.4:
        return f"Logged in as {name} ({pii.email_for(name)})."
    if roll < 0.7:
        return f"An error banner reads 'Request from {pii('ip')} blocked' for {name}."
    return f"Welcome back, {name}!"


def _findings(keys: list[str], sentiment: float) -> str:
    issues = [
        {
            "heuristic": ISSUES[k][1],
            "severity": ISSUES[k][2],
            "element": ISSUES[k][3],
            "description": ISSUES[k][4],
        }
        for k in keys
    ]
    recommendations = [ISSUES[k][4].split(";")[-1].strip() for k in keys[:3]]
    return json.dumps({"issues_found": issues, "sentiment": sentiment, "recommendations": recommendations})


def episode(world: World, org: Org, t0: float) -> Iterator[tuple[dict, list[dict]]]:
    """One screen under test: a description with planted issues, findings, maybe a label and a score."""
    rng = world.rng
    screen, platform = rng.choice(SCREENS), rng.choice(PLATFORMS)
    planted = rng.sample(tuple(ISSUES), rng.randint(1, 4))
    clean = [k for k in ISSUES if k not in planted]
    lines = [ISSUES[k][0] for k in planted] + ["The logo is top left.", "A footer lists help links."]
    rng.shuffle(lines)
    description = (
        f"Screen: {screen} of our {platform}. " + " ".join(lines) + " " + _sample_data(world, screen)
    )
    found = [k for k in planted if rng.random() < 0.7]
    invented = [k for k in clean if rng.random() < 0.08]
    reported = found + invented
    sentiment = round(rng.uniform(0.2, 0.8), 2)
    ix = world.interaction(
        org,
        t0,
        "ux_review",
        [{"role": "user", "content": f"Test this: {description}"}],
        _findings(reported, sentiment),
        user_id=world.user_id(org, pool=8),
        model=MODEL,
        system_prompt=SYSTEM_PROMPT,
        response_format="json",
        context={"screen": screen, "platform": platform, "mission": "find usability issues"},
    )
    events: list[dict] = []
    if rng.random() < 0.4:  # a human tester reviewed it
        events.append(
            world.feedback(ix, world.later(t0, 600, 86_400), "label", _findings(planted, sentiment))
        )
    if rng.random() < 0.65:  # the upstream scorer: F1 of findings against the planted issues, with noise
        hits = len(found)
        f1 = 2 * hits / (len(reported) + len(planted)) if reported else 0.0
        score = round(min(1.0, max(0.0, f1 + rng.gauss(0, 0.08))), 2)
        events += world.feedback_series(
            ix, world.later(t0, 1, 60), "rating", score, earlier=(round(rng.random(), 2),)
        )
    if rng.random() < 0.15:
        events.append(world.feedback(ix, world.later(t0), "thumbs", 1 if len(found) == len(planted) else -1))
    yield ix, events
