"""Page builder: businesses ask for landing pages and get page JSON over ten section types.

Tasks: `page_generation` (prompt -> whole page, JSON), `section_edit` (current page in `context`,
edit request with the current section -> the changed section, JSON), `design_choice` (colours and fonts, text) and
`tool_invocation` (a backend tool call and its result, text). About 5% of JSON answers do not
parse (cut off, trailing comma, wrapped in prose).

The latent rule (what fine-tuning can teach and the base model cannot know): the product's
**house style**, which people accept as-is and edit every other page towards:

* exactly the requested sections, `hero` first, the others in the house order of
  `SECTION_TYPES` (hero, features, pricing, testimonials, faq, team, gallery, contact, cta,
  footer) whatever order the prompt asked for them in;
* the hero headline is "<name> — <offer> in <location>" and its button says "Book now"
  (`#contact`); the closing `cta` button says "Get started"; prices are whole euros ("€49").

The logged model breaks the style in a quarter to a third of its pages (sections in the prompt's
order, a dropped, added or swapped section, "Welcome to <name>" headlines, "Click here" buttons).
A page in house style is mostly accepted as it is; one off style is mostly saved after an edit
that restores the house style, or rejected, regenerated or abandoned. So the training targets
(accepted answers and edits) are all in house style, and requests list sections in shuffled
order with varied wording, so the mapping has to be learnt, not copied.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cached_property
from typing import Any

from pipeline.synth.world import Org, World

SECTION_TYPES = (
    "hero",
    "features",
    "pricing",
    "testimonials",
    "faq",
    "team",
    "gallery",
    "contact",
    "cta",
    "footer",
)
INVALID_JSON_SHARE = 0.05
MODEL = "claude-sonnet-4-5"
SYSTEM_PROMPT = (
    "You are the page builder. Answer with page JSON only: {version, metadata, sections}; "
    "section types: " + ", ".join(SECTION_TYPES) + "."
)

#: (industry, kind of business, what people book or buy there, mood)
BUSINESSES = (
    ("maritime education", "sailing school", "sailing courses", "fresh and adventurous"),
    ("food & beverage", "cafe", "brunch and specialty coffee", "warm and cosy"),
    ("hospitality", "vacation rental", "seaside apartments", "calm and airy"),
    ("fitness", "yoga studio", "yoga classes", "grounded and calm"),
    ("healthcare", "dental clinic", "check-ups and whitening", "clean and trustworthy"),
    ("legal services", "law firm", "contract reviews", "serious and premium"),
    ("software", "SaaS startup", "a scheduling app", "bold and modern"),
    ("retail", "bike shop", "e-bikes and repairs", "energetic and playful"),
    ("events", "wedding photographer", "wedding packages", "romantic and elegant"),
    ("education", "language school", "Spanish and German courses", "friendly and bright"),
    ("real estate", "real estate agency", "city apartments", "confident and polished"),
    ("beauty", "hair salon", "cuts and colour", "stylish and fun"),
)
LOCATIONS = (
    "Kiel, Germany",
    "the Baltic Sea coast",
    "Austin, Texas",
    "Lisbon",
    "Brooklyn, NY",
    "Manchester, UK",
    "Melbourne",
    "Toronto",
    "Barcelona",
    "Denver, Colorado",
    "Cape Town",
    "Osaka",
)
SECTION_ASKS = {
    "hero": ("a hero with a booking CTA", "a big hero image", "a hero section"),
    "features": ("a features grid", "what makes us different", "our services"),
    "pricing": ("course pricing", "a pricing table", "prices for our packages"),
    "testimonials": ("customer testimonials", "reviews from clients", "testimonials"),
    "faq": ("an FAQ", "frequently asked questions", "a Q&A block"),
    "team": ("the team", "instructor profiles", "staff bios"),
    "gallery": ("a photo gallery", "a gallery of our work", "pictures"),
    "contact": ("contact details", "a contact form", "how to reach us"),
    "cta": ("a call to action at the end", "a sign-up banner", "a booking CTA"),
    "footer": ("a footer with links", "a footer"),
}
PALETTES = (
    ("deep navy", "#1B2A41", "sea-foam", "#7FD1B9"),
    ("espresso", "#4B3621", "cream", "#F5EBDC"),
    ("sage", "#9CAF88", "off-white", "#FAF9F6"),
    ("charcoal", "#2E2E2E", "electric blue", "#2F6BFF"),
    ("terracotta", "#C65D3B", "sand", "#E8D5B7"),
    ("plum", "#5B2A4E", "blush", "#F4C2C2"),
)
FONTS = ("Inter", "Playfair Display", "DM Sans", "Lora", "Space Grotesk", "Source Serif", "Poppins", "Nunito")
ROLES = ("founder", "lead instructor", "head chef", "senior partner", "designer", "manager", "coach")
TOOLS = (
    ("create_form", "add a booking form for {offer}", "Booking form '{offer}' is live at /forms/{ref}."),
    (
        "add_product",
        "add {offer} as a product for ${price}",
        "Added '{offer}' at ${price}; it shows on /shop.",
    ),
    (
        "create_event",
        "create an open day event next Saturday",
        "Open day event created for Saturday, 10:00-16:00.",
    ),
    ("add_crm_contact", "add {name} ({email}, {phone}) to my CRM", "{name} is now in your CRM."),
    (
        "setup_checkout",
        "turn on checkout with card payments",
        "Checkout is on; card payments go to your Stripe account.",
    ),
    (
        "create_booking_slots",
        "open booking slots for {offer} on weekdays",
        "Weekday slots for {offer} are open.",
    ),
)


class Business:
    """One customer of the page builder and the facts its pages are made of.

    Personal facts are drawn on first use, so the PII log holds only values that reach the text.
    """

    def __init__(self, world: World):
        self.world = world
        self.industry, self.kind, self.offer, self.mood = world.rng.choice(BUSINESSES)
        self.location = world.rng.choice(LOCATIONS)

    @cached_property
    def name(self) -> str:
        return self.world.pii.business_for(self.kind)

    @cached_property
    def email(self) -> str:
        return self.world.pii("email")

    @cached_property
    def phone(self) -> str:
        return self.world.pii("phone")

    @cached_property
    def address(self) -> str:
        return self.world.pii("address")

    @cached_property
    def people(self) -> list[str]:
        return [self.world.pii("person") for _ in range(self.world.rng.randint(1, 3))]


# --------------------------------------------------------------------------- section content


def _content(kind: str, biz: Business, world: World) -> dict[str, Any]:
    rng, pii = world.rng, world.pii
    if kind == "hero":
        return {
            "headline": f"{biz.name} — {biz.offer} in {biz.location}",
            "subheadline": f"The {biz.kind} locals recommend.",
            "cta": {"label": "Book now", "href": "#contact"},
        }
    if kind == "features":
        return {
            "title": "Why choose us",
            "items": [
                {"title": t, "description": f"{t} for {biz.offer}."}
                for t in rng.sample(
                    ("Expert staff", "Flexible times", "Fair prices", "Central location", "Small groups"), 3
                )
            ],
        }
    if kind == "pricing":
        base = rng.choice((19, 29, 49, 89, 120))
        return {
            "title": "Pricing",
            "plans": [
                {"name": "Starter", "price": f"€{base}", "features": ["1 session"]},
                {
                    "name": "Plus",
                    "price": f"€{base * 3 - 10}",
                    "features": ["4 sessions", "Priority booking"],
                },
            ],
        }
    if kind == "testimonials":
        return {
            "items": [
                {
                    "quote": rng.choice(("Best in town!", "Friendly and professional.", "Would book again.")),
                    "author": pii("person"),
                    "role": "customer",
                }
                for _ in range(2)
            ]
        }
    if kind == "faq":
        return {
            "items": [
                {"question": "Can I cancel?", "answer": "Yes, up to 24 hours before."},
                {"question": f"Where is the {biz.kind}?", "answer": biz.address},
            ]
        }
    if kind == "team":
        return {"members": [{"name": name, "role": rng.choice(ROLES)} for name in biz.people]}
    if kind == "gallery":
        return {
            "images": [
                {"src": f"/img/{biz.kind.replace(' ', '-')}-{i}.jpg", "alt": f"{biz.kind} photo {i}"}
                for i in range(1, rng.randint(3, 6))
            ]
        }
    if kind == "contact":
        return {"email": biz.email, "phone": biz.phone, "address": biz.address}
    if kind == "cta":
        return {"headline": f"Ready for {biz.offer}?", "button": {"label": "Get started", "href": "#contact"}}
    return {
        "company": biz.name,
        "links": ["Imprint", "Privacy", "Contact"],
        "copyright": f"© 2026 {biz.name}",
    }


def make_page(
    biz: Business, sections: list[str], world: World, made: dict[str, dict] | None = None
) -> dict[str, Any]:
    """Page JSON with `sections` in order; `made` keeps each section's content for the next page."""
    made = {} if made is None else made
    for kind in sections:
        if kind not in made:
            made[kind] = _content(kind, biz, world)
    return {
        "version": "1.0",
        "metadata": {"title": biz.name, "industry": biz.industry},
        "sections": [{"type": kind, "content": made[kind]} for kind in sections],
    }


def break_json(text: str, world: World) -> str:
    """The ways a model's JSON fails to parse: cut off, a trailing comma, wrapped in prose."""
    rng = world.rng
    roll = rng.random()
    if roll < 0.45:
        return text[: rng.randint(len(text) // 3, len(text) - 3)]
    if roll < 0.75:
        return text[:-2] + ",]}"
    return f"Here is your page:\n```json\n{text}\n```"


def _answer_json(value: dict[str, Any], world: World) -> tuple[str, bool]:
    text = json.dumps(value, ensure_ascii=False)
    if world.rng.random() < INVALID_JSON_SHARE:
        return break_json(text, world), False
    return text, True


# --------------------------------------------------------------------------- feedback


def _page_feedback(world: World, ix: dict, at: float, quality: str, fixed: str) -> tuple[list[dict], str]:
    """Feedback by answer quality: `good` (valid, sections match), `off` (valid, wrong sections), `broken`."""
    outcome = world.pick(
        {
            "good": {"accepted": 60, "accepted_with_edits": 12, "regenerated": 3, "none": 25},
            "off": {
                "accepted": 10,
                "accepted_with_edits": 40,
                "rejected": 12,
                "regenerated": 18,
                "abandoned": 8,
                "none": 12,
            },
            "broken": {"rejected": 25, "regenerated": 40, "abandoned": 20, "none": 15},
        }[quality]
    )
    if outcome == "accepted_with_edits" and fixed == ix["response"]:
        outcome = "accepted"  # nothing left to fix
    events: list[dict] = []
    t = world.later(at, 20, 1_800)
    if outcome != "none":
        events.append(world.feedback(ix, t, "outcome", outcome))
    if outcome == "accepted_with_edits":
        events.append(world.feedback(ix, t - 1, "edit", fixed))
    thumbs_up = {"good": 0.9, "off": 0.35, "broken": 0.05}[quality]
    if world.rng.random() < 0.35:
        value = 1 if world.rng.random() < thumbs_up else -1
        events += world.feedback_series(ix, world.later(at, 5, 600), "thumbs", value, earlier=(-value,))
    return events, outcome


def _requested_sections(world: World) -> list[str]:
    rng = world.rng
    middle = rng.sample(SECTION_TYPES[1:9], rng.randint(2, 5))
    ordered = [kind for kind in SECTION_TYPES[1:9] if kind in middle]
    return ["hero", *ordered, *(["footer"] if rng.random() < 0.4 else [])]


def _answered_sections(requested: list[str], asked: list[str], world: World) -> list[str]:
    """The requested sections in house order (72%), in the prompt's order, or one dropped, added or swapped."""
    rng = world.rng
    roll = rng.random()
    if roll < 0.72:
        return list(requested)
    if roll < 0.82 and asked != requested:
        return list(asked)
    out = list(requested)
    spare = [kind for kind in SECTION_TYPES if kind not in out]  # never empty: at most 9 are requested
    roll = rng.random()
    if roll < 0.4:
        out.pop(rng.randrange(1, len(out)))
    elif roll < 0.7:
        out.insert(rng.randrange(1, len(out) + 1), rng.choice(spare))
    else:
        out[rng.randrange(1, len(out))] = rng.choice(spare)
    return out


#: field conventions the logged model sometimes breaks (the house style is the first of each)
OFF_STYLE_HEADLINES = ("Welcome to {name}", "{name} | {offer}", "Discover {name}")
OFF_STYLE_BUTTONS = ("Click here", "Learn more", "Submit", "Go")


def _off_style_fields(page: dict[str, Any], biz: Business, world: World) -> dict[str, Any]:
    """A copy of a house-style page with one field convention broken (headline or a button label)."""
    rng = world.rng
    page = json.loads(json.dumps(page))
    by_type = {section["type"]: section["content"] for section in page["sections"]}
    if "cta" in by_type and rng.random() < 0.4:
        by_type["cta"]["button"]["label"] = rng.choice(OFF_STYLE_BUTTONS)
    elif rng.random() < 0.5:
        by_type["hero"]["headline"] = rng.choice(OFF_STYLE_HEADLINES).format(name=biz.name, offer=biz.offer)
    else:
        by_type["hero"]["cta"]["label"] = rng.choice(OFF_STYLE_BUTTONS)
    return page


def _page_prompt(biz: Business, asked: list[str], world: World) -> str:
    rng = world.rng
    asks = [rng.choice(SECTION_ASKS[kind]) for kind in asked]
    wanted = ", ".join(asks[:-1]) + f" and {asks[-1]}"
    ask = rng.randrange(4)
    if ask == 0:
        return f"Create a landing page for {biz.name}, a {biz.kind} in {biz.location}. Include {wanted}."
    if ask == 1:
        return (
            f"I run a {biz.kind} called {biz.name} in {biz.location}. I need a website with {wanted}. "
            f"Contact: {biz.email}, {biz.phone}."
        )
    if ask == 2:
        return f"Build me a one-page site for my {biz.kind} ({biz.name}). Sections: {wanted}. Our address is {biz.address}."
    return f"Need a page for {biz.name} — {biz.kind}, based in {biz.location}. Must have {wanted}. Team: {' and '.join(biz.people)}."


# --------------------------------------------------------------------------- tasks


def page_generation(world: World, org: Org, t0: float) -> Iterator[tuple[dict, list[dict]]]:
    biz = Business(world)
    requested = _requested_sections(world)
    asked = list(requested)  # people list sections in any order; the house order is fixed
    world.rng.shuffle(asked)
    messages = [{"role": "user", "content": _page_prompt(biz, asked, world)}]
    context = {"industry": biz.industry, "location": biz.location, "requested_sections": requested}
    if world.rng.random() < 0.5:
        context["retrieved_patterns"] = world.rng.sample(
            ("sailing-school", "cafe-website", "vacation-rental", "saas-landing", "portfolio", "clinic"), 2
        )
    user, conversation, at, made = world.user_id(org), world.conversation_id(), t0, {}
    house = make_page(biz, requested, world, made)
    fixed = json.dumps(house, ensure_ascii=False)  # what the person saves: the house style
    for _attempt in range(3):  # a regenerated answer is asked again in the same conversation
        answered = _answered_sections(requested, asked, world)
        page = make_page(biz, answered, world, made)
        if answered == requested and world.rng.random() < 0.12:
            page = _off_style_fields(page, biz, world)
        response, valid = _answer_json(page, world)
        quality = "broken" if not valid else "good" if page == house else "off"
        ix = world.interaction(
            org,
            at,
            "page_generation",
            list(messages),
            response,
            user_id=user,
            conversation_id=conversation,
            model=MODEL,
            system_prompt=SYSTEM_PROMPT,
            response_format="json",
            context=context,
        )
        events, outcome = _page_feedback(world, ix, at, quality, fixed)
        yield ix, events
        if outcome != "regenerated":
            return
        at = world.later(at, 30, 300)


SECTION_EDITS = {
    "hero": (
        "Make the hero headline punchier",
        lambda c, w: {**c, "headline": c["headline"].split(" — ")[0] + " — book today"},
    ),
    "pricing": (
        "Add an annual plan to pricing",
        lambda c, w: {
            **c,
            "plans": [*c["plans"], {"name": "Annual", "price": "€990", "features": ["Unlimited"]}],
        },
    ),
    "faq": (
        "Add a question about refunds to the FAQ",
        lambda c, w: {
            **c,
            "items": [*c["items"], {"question": "Do you refund?", "answer": "Within 14 days."}],
        },
    ),
    "contact": (
        "Change the contact email and phone",
        lambda c, w: {**c, "email": w.pii("email"), "phone": w.pii("phone")},
    ),
    "team": (
        "Add our new colleague to the team section",
        lambda c, w: {**c, "members": [*c["members"], {"name": w.pii("person"), "role": "assistant"}]},
    ),
    "cta": (
        "Make the CTA button say 'Reserve a spot'",
        lambda c, w: {**c, "button": {"label": "Reserve a spot", "href": "#contact"}},
    ),
}


def section_edit(world: World, org: Org, t0: float) -> Iterator[tuple[dict, list[dict]]]:
    rng = world.rng
    biz = Business(world)
    kinds = ["hero", *rng.sample(("pricing", "faq", "contact", "team", "cta"), 3), "footer"]
    page = make_page(biz, kinds, world)
    section = rng.choice([s for s in page["sections"] if s["type"] in SECTION_EDITS])
    ask, apply = SECTION_EDITS[section["type"]]
    edited = {"type": section["type"], "content": apply(section["content"], world)}
    if section["type"] in ("contact", "team"):  # say who or what, the way people do
        detail = edited["content"].get("email") or edited["content"]["members"][-1]["name"]
        ask = f"{ask}: {detail}" + (f", {edited['content']['phone']}" if section["type"] == "contact" else "")
    applied = rng.random() < 0.8
    response, valid = _answer_json(edited if applied else section, world)
    ix = world.interaction(
        org,
        t0,
        "section_edit",
        # the editor sends the section being edited with the request, so the answer can be learnt
        [{"role": "user", "content": f"{ask}.\nCurrent section: {json.dumps(section, ensure_ascii=False)}"}],
        response,
        user_id=world.user_id(org),
        model=MODEL,
        system_prompt=SYSTEM_PROMPT,
        response_format="json",
        context={"current_page": page, "section": section["type"]},
    )
    events, _ = _page_feedback(
        world,
        ix,
        t0,
        "broken" if not valid else "good" if applied else "off",
        json.dumps(edited, ensure_ascii=False),
    )
    yield ix, events


def design_choice(world: World, org: Org, t0: float) -> Iterator[tuple[dict, list[dict]]]:
    rng = world.rng
    industry, kind, _offer, mood = rng.choice(BUSINESSES)
    dark, dark_hex, light, light_hex = rng.choice(PALETTES)
    head, body = rng.sample(FONTS, 2)
    roll = rng.random()
    if roll < 0.35:
        ask = f"Pick fonts and a palette for my {kind}. Vibe: {mood}."
    elif roll < 0.7:
        ask = f"What colours would suit {world.pii.business_for(kind)}, a {kind}? We want it to feel {mood}."
    else:
        ask = f"Our {industry} brand {world.pii.business_for(kind)} looks dated. Suggest a new colour scheme."
    fits = rng.random() < 0.7
    shown_mood = mood if fits else rng.choice(BUSINESSES)[3]
    answer = (
        f"For a {shown_mood} {kind}, pair {dark} ({dark_hex}) for text and buttons with {light} "
        f"({light_hex}) as the background. Set headings in {head} and body copy in {body}."
    )
    ix = world.interaction(
        org,
        t0,
        "design_choice",
        [{"role": "user", "content": ask}],
        answer,
        user_id=world.user_id(org),
        model=MODEL,
        context={"industry": industry},
    )
    events = []
    if rng.random() < 0.45:  # star rating in the design panel
        stars = rng.choice((4, 5, 5) if fits else (1, 2, 3))
        events += world.feedback_series(ix, world.later(t0), "rating", stars, earlier=(3,))
    if rng.random() < 0.3:
        events.append(world.feedback(ix, world.later(t0), "thumbs", 1 if fits else -1))
    yield ix, events


def tool_invocation(world: World, org: Org, t0: float) -> Iterator[tuple[dict, list[dict]]]:
    rng, pii = world.rng, world.pii
    tool, ask, done = rng.choice(TOOLS)
    facts = {
        "offer": rng.choice(BUSINESSES)[2],
        "price": rng.choice((25, 49, 99, 149)),
        "ref": f"f{rng.randrange(10**6):06d}",
    }
    if "{name}" in ask:
        name = pii("person")
        facts.update(name=name, email=pii.email_for(name), phone=pii("phone"))
    ok = rng.random() < 0.85
    result = (
        {"ok": True, "id": facts["ref"]}
        if ok
        else {"ok": False, "error": rng.choice(("timeout", "permission denied"))}
    )
    messages = [
        {"role": "user", "content": "Please " + ask.format(**facts) + "."},
        {"role": "assistant", "content": f"Calling {tool}."},
        {"role": "tool", "content": json.dumps(result)},
    ]
    answer = done.format(**facts) if ok else f"Sorry, {tool} failed ({result['error']}). Shall I try again?"
    ix = world.interaction(
        org,
        t0,
        "tool_invocation",
        messages,
        answer,
        user_id=world.user_id(org),
        model=MODEL,
        context={"tool": tool},
    )
    events = []
    if rng.random() < 0.6:
        events.append(
            world.feedback(
                ix, world.later(t0), "outcome", "accepted" if ok else rng.choice(("regenerated", "abandoned"))
            )
        )
    if rng.random() < 0.25:
        events.append(world.feedback(ix, world.later(t0), "thumbs", 1 if ok else -1))
    yield ix, events


TASKS = {
    "page_generation": (page_generation, 50),
    "section_edit": (section_edit, 25),
    "design_choice": (design_choice, 15),
    "tool_invocation": (tool_invocation, 10),
}


def episode(world: World, org: Org, t0: float) -> Iterator[tuple[dict, list[dict]]]:
    """One page-builder visit: a page, a section edit, a design question or a tool call."""
    task = world.pick({name: weight for name, (_, weight) in TASKS.items()})
    yield from TASKS[task][0](world, org, t0)
