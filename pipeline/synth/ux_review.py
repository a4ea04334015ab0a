"""UX review: a company describes a screen; the model answers with JSON findings.

Each screen description carries a few pieces of evidence (a measured contrast ratio, a tap target
size, a delay after a click...). About 40% of reviews get a reviewer's `label`: the corrected
findings JSON, which overrides the model as the training target. Many get a 0..1 `rating` from an
upstream scorer (F1 of the reported issues against the real ones, with noise).

The latent rule (the reviewers' house rubric, in the `EVIDENCE` makers): **severity follows the evidence, by
fixed thresholds**, and evidence under the threshold is *not* a finding:

* text contrast below 3:1 is high, 3 to 4.5:1 medium, 4.5:1 or more no issue (accessibility);
* a tap target under 24 px is high on a phone platform and low on desktop web; 24 to 43 px is
  medium on a phone and no issue on desktop; 44 px or more is no issue (accessibility);
* no feedback after a click for 2 s or more is high on a money action (Pay, Place order,
  Transfer) and medium elsewhere; 1 to 2 s is low; under 1 s no issue (system status);
* a form that clears itself on an error is high, one that only outlines the field medium
  (error prevention);
* a wizard without a step indicator is medium from 5 steps, low at 3 or 4, no issue at 2
  (system status);
* a button label in system jargon is medium; a plain label no issue (match with real world);
* a pre-ticked consent box is always high (ethics); primary buttons changing colour between
  steps always low (consistency).

The logged model finds most real issues, grades about half of them by a fixed per-kind severity
instead of the evidence, and flags a third of the below-threshold evidence anyway. Labels list
the real findings in the order the description mentions them, graded by the rubric; so a model
trained on labels learns the thresholds, which a base model does not know. Numbers, elements,
screens and platforms vary, so descriptions do not repeat.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pipeline.synth.world import Org, World

MODEL = "gpt-4o-mini-2024-07-18"
SYSTEM_PROMPT = "You are a UX testing AI specialized in finding usability issues. Answer with JSON findings."

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
PHONE_PLATFORMS = ("iOS app", "Android app", "mobile web")
MONEY_ACTIONS = ("Pay", "Place order", "Transfer")
OTHER_ACTIONS = ("Save", "Search", "Next", "Upload", "Apply filter")
JARGON = ("Instantiate workspace", "Provision tenant", "Persist changes", "Execute payload", "Invoke sync")
PLAIN = ("Create workspace", "Save changes", "Start sync", "Add team", "Continue")
GREYS = ("#B0B0B0", "#A3A3A3", "#9E9E9E", "#8A8A8A", "#777777", "#6B6B6B", "#595959", "#4A4A4A")


@dataclass(frozen=True)
class Evidence:
    """One thing the description says, and what the rubric makes of it."""

    kind: str
    sentence: str
    heuristic: str
    element: str
    #: the rubric's severity, or None when the evidence is under the threshold
    severity: str | None
    #: the fixed severity the logged model often gives this kind, whatever the evidence
    naive: str
    finding: str


def _contrast(world: World, platform: str) -> Evidence:
    rng = world.rng
    ratio = round(rng.uniform(1.6, 7.5), 1)
    severity = "high" if ratio < 3 else "medium" if ratio < 4.5 else None
    return Evidence(
        "contrast", f"Body text is {rng.choice(GREYS)} on white, a contrast ratio of {ratio}:1.", "accessibility",
        "body text", severity, "high", f"Text contrast is {ratio}:1, below the 4.5:1 WCAG AA minimum.",
    )


def _tap_target(world: World, platform: str) -> Evidence:
    rng = world.rng
    size = rng.randint(12, 56)
    element = rng.choice(("close icon", "delete icon", "info button", "checkbox", "back arrow"))
    phone = platform in PHONE_PLATFORMS
    if size < 24:
        severity = "high" if phone else "low"
    elif size < 44:
        severity = "medium" if phone else None
    else:
        severity = None
    return Evidence(
        "tap_target", f"The {element} is {size}x{size} px.", "accessibility", element, severity, "medium",
        f"Tap target is {size}x{size} px, under the 44x44 px minimum.",
    )


def _slow_feedback(world: World, platform: str) -> Evidence:
    rng = world.rng
    action = rng.choice(MONEY_ACTIONS + OTHER_ACTIONS)
    seconds = round(rng.uniform(0.3, 6.0), 1)
    if seconds >= 2:
        severity = "high" if action in MONEY_ACTIONS else "medium"
    elif seconds >= 1:
        severity = "low"
    else:
        severity = None
    return Evidence(
        "slow_feedback", f"Clicking '{action}' shows nothing for {seconds} seconds.", "system status",
        f"{action.lower()} button", severity, "high",
        f"No loading state for {seconds} s; users click '{action}' again.",
    )


def _form_error(world: World, platform: str) -> Evidence:
    rng = world.rng
    field = rng.choice(("email field", "password field", "postcode field", "date field"))
    clears = rng.random() < 0.5
    how = "clears the whole form without a message" if clears else "only outlines the field in red, with no text"
    return Evidence(
        "form_error", f"Submitting with an invalid {field} {how}.", "error prevention", field,
        "high" if clears else "medium", "high",
        "The form loses the input without saying why." if clears else "The error has no message saying what to fix.",
    )


def _wizard(world: World, platform: str) -> Evidence:
    steps = world.rng.randint(2, 9)
    severity = "medium" if steps >= 5 else "low" if steps >= 3 else None
    return Evidence(
        "wizard", f"A {steps}-step wizard shows no step indicator.", "system status", "wizard", severity, "low",
        f"Users cannot tell how many of the {steps} steps remain.",
    )


def _label(world: World, platform: str) -> Evidence:
    rng = world.rng
    jargon = rng.random() < 0.6
    label = rng.choice(JARGON if jargon else PLAIN)
    return Evidence(
        "jargon", f"The primary button says '{label}'.", "match with real world", "primary button",
        "medium" if jargon else None, "medium", f"Button label '{label}' uses system jargon.",
    )


def _consent(world: World, platform: str) -> Evidence:
    what = world.rng.choice(("newsletter", "partner offers", "data sharing"))
    return Evidence(
        "dark_pattern", f"The {what} checkbox is pre-ticked.", "ethics", f"{what} checkbox", "high", "medium",
        "Pre-ticked consent is a dark pattern.",
    )


def _colours(world: World, platform: str) -> Evidence:
    first, second = world.rng.sample(("green", "blue", "orange", "purple", "teal"), 2)
    return Evidence(
        "button_colours", f"Primary buttons are {first} on one step and {second} on the next.", "consistency",
        "buttons", "low", "medium", "Primary action colour changes between steps.",
    )


EVIDENCE: dict[str, Callable[[World, str], Evidence]] = {
    "contrast": _contrast,
    "tap_target": _tap_target,
    "slow_feedback": _slow_feedback,
    "form_error": _form_error,
    "wizard": _wizard,
    "jargon": _label,
    "dark_pattern": _consent,
    "button_colours": _colours,
}
NEUTRAL = ("The logo is top left.", "A footer lists help links.", "The page title is in bold.",
           "A search box sits in the header.", "Icons come from one set.")


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


def findings_json(findings: list[tuple[Evidence, str]], sentiment: float) -> str:
    """The findings JSON the product shows: (evidence, severity) in order, a sentiment, recommendations."""
    issues = [
        {"heuristic": e.heuristic, "severity": severity, "element": e.element, "description": e.finding}
        for e, severity in findings
    ]
    recommendations = [f"Fix the {e.element} ({severity})." for e, severity in findings[:3]]
    return json.dumps({"issues_found": issues, "sentiment": sentiment, "recommendations": recommendations})


def episode(world: World, org: Org, t0: float) -> Iterator[tuple[dict, list[dict]]]:
    """One screen under test: a description with evidence, findings, maybe a label and a score."""
    rng = world.rng
    screen, platform = rng.choice(SCREENS), rng.choice(PLATFORMS)
    evidence = [EVIDENCE[kind](world, platform) for kind in rng.sample(tuple(EVIDENCE), rng.randint(2, 4))]
    lines = [e.sentence for e in evidence] + rng.sample(NEUTRAL, 2)
    rng.shuffle(lines)
    evidence.sort(key=lambda e: lines.index(e.sentence))  # findings follow the description's order
    description = f"Screen: {screen} of our {platform}. " + " ".join(lines) + " " + _sample_data(world, screen)
    real = [(e, e.severity) for e in evidence if e.severity is not None]
    reported: list[tuple[Evidence, str]] = []
    for e in evidence:
        if e.severity is not None and rng.random() < 0.8:
            reported.append((e, e.naive if rng.random() < 0.5 else e.severity))
        elif e.severity is None and rng.random() < 0.35:  # flags evidence under the threshold
            reported.append((e, e.naive))
    sentiment = round(rng.uniform(0.2, 0.8), 2)
    ix = world.interaction(
        org,
        t0,
        "ux_review",
        [{"role": "user", "content": f"Test this: {description}"}],
        findings_json(reported, sentiment),
        user_id=world.user_id(org, pool=8),
        model=MODEL,
        system_prompt=SYSTEM_PROMPT,
        response_format="json",
        context={"screen": screen, "platform": platform, "mission": "find usability issues"},
    )
    events: list[dict] = []
    if rng.random() < 0.4:  # a human tester reviewed it
        events.append(world.feedback(ix, world.later(t0, 600, 86_400), "label", findings_json(real, sentiment)))
    if rng.random() < 0.65:  # the upstream scorer: F1 of the reported issues against the real ones, with noise
        real_kinds = {e.kind for e, _ in real}
        hits = sum(e.kind in real_kinds for e, _ in reported)
        f1 = 2 * hits / (len(reported) + len(real)) if reported or real else 1.0
        score = round(min(1.0, max(0.0, f1 + rng.gauss(0, 0.08))), 2)
        events += world.feedback_series(
            ix, world.later(t0, 1, 60), "rating", score, earlier=(round(rng.random(), 2),)
        )
    if rng.random() < 0.15:
        exact = sorted((e.kind, s) for e, s in reported) == sorted((e.kind, s) for e, s in real)
        events.append(world.feedback(ix, world.later(t0), "thumbs", 1 if exact else -1))
    yield ix, events
