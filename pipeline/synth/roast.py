"""Roast / brand voice: reply to a social post the way the brand talks.

Outcomes: `accepted`, `accepted_with_edits` (with an `edit` holding what was posted), `rejected`,
`regenerated` (then a second interaction with the same prompt in the same conversation).

The latent rule (the brand voice the social managers' edits move every reply towards; DPO learns
it from edited over original): a reply is three parts — a reaction to the post, a joke, and a
close — and in the brand's voice

* the joke is on the brand itself or its product, **never about the customer's looks, brains or
  taste** (`INSULTS` are replaced by one of the brand's own `SELF_JOKES`);
* the close is a concrete make-good ("DM us your order number and the next coffee is on us"),
  **never corporate boilerplate** ("We apologize for any inconvenience.");
* the reply **ends with the brand's own sign-off** (`SIGN_OFFS`, e.g. "— Team BrightBrew ☕").

The logged model gets each part right with 70% odds. A reply with all three right is mostly
accepted as it is; any other is mostly posted after an edit that fixes exactly the wrong parts
and keeps the rest, or rejected or regenerated. Edited replies are about as long as the
originals (a sign-off added, a boilerplate line swapped for an offer), so length alone does not
tell chosen from rejected. Posts, reactions and jokes are composed from parts with numbers and
products, so prompts and replies rarely repeat.
"""

from __future__ import annotations

from collections.abc import Iterator

from pipeline.synth.pii import person_name
from pipeline.synth.world import Org, World

MODEL = "gpt-4o-2024-08-06"

#: org -> (brand, voice, what it sells)
BRANDS = {
    "org_brightbrew": ("BrightBrew", "warm, cheeky, coffee puns, never mean", "coffee"),
    "org_snackattack": ("SnackAttack", "loud, chaotic, all caps allowed, loves memes", "snacks"),
    "org_gymrat_gear": ("GymRat Gear", "hype coach energy, short sentences, flexing emoji", "gym wear"),
    "org_cloudnine_mattress": ("CloudNine", "sleepy, soft, gentle teasing, bedtime jokes", "mattresses"),
    "org_pixel_pets": ("Pixel Pets", "wholesome, playful, pet puns", "pet games"),
    "org_zestful_juice": ("Zestful", "bright, zesty, citrus puns, upbeat", "juice"),
    "org_rocket_rides": ("Rocket Rides", "dry wit, deadpan, space jokes", "scooter rentals"),
    "org_burger_barn": ("Burger Barn", "savage but fair, roasts competitors, never customers", "burgers"),
    "org_optout_loudmouth_labs": ("Loudmouth Labs", "snarky tech humour, self-deprecating", "headphones"),
}
PLATFORMS = ("x", "instagram", "tiktok", "reddit", "linkedin")
POSTS = (
    "@{brand} my order took {n} weeks. {n}. WEEKS.",
    "Is {brand} actually worth the hype or nah? Asking for {n} friends.",
    "@{brand} roast me, I've bought your {product} {n} times this month.",
    "Switched from {brand} to a competitor after {n} years. Change my mind.",
    "@{brand} why is your {product} so good, I'm broke now ({n} orders deep)",
    "Honest review: {brand} {product} is mid. {n}/10.",
    "@{brand} your app crashed {n} times while I tried to order {product}.",
    "Day {n} of asking @{brand} to bring back the old {product}.",
)
SIGNATURES = (" — {name}", " (order for {name}, reach me at {email})", " DM me or call {phone}", "", "", "")
#: the reaction to `POSTS[i]` is `REACTIONS[i]`
REACTIONS = (
    "{n} weeks? Our {product} was just building suspense.",
    "Worth the hype? Ask the {n} people who came back this week.",
    "{n} times? At this point you're not a customer, you're family.",
    "Change your mind? We'd rather change your whole week.",
    "Broke but happy is still happy.",
    "Mid? Bold words from someone who came back for seconds.",
    "{n} crashes is {n} too many, and our app team just heard about it.",
    "Day {n}? Your patience deserves a medal and a {product}.",
)
#: org -> the brand's sign-off, the last words of every reply in its voice
SIGN_OFFS = {
    "org_brightbrew": "— Team BrightBrew ☕",
    "org_snackattack": "— THE SNACK SQUAD 🍿",
    "org_gymrat_gear": "— GymRat Crew 💪",
    "org_cloudnine_mattress": "— sweet dreams, CloudNine 🌙",
    "org_pixel_pets": "— the Pixel Pets pack 🐾",
    "org_zestful_juice": "— stay zesty, Zestful 🍊",
    "org_rocket_rides": "— Rocket Rides, over and out 🚀",
    "org_burger_barn": "— Burger Barn, grill on 🍔",
    "org_optout_loudmouth_labs": "— Loudmouth Labs 🎧",
}
SELF_JOKES = (
    "Our {product} has more fans than our interns, and they know it.",
    "Even our own {product} is jealous of how loyal you are.",
    "Our marketing team cried a little, then ordered more {product}.",
    "We'd roast you, but our {product} already took all the heat.",
    "Our {product} is the only thing here that never needs a coffee break.",
)
INSULTS = (
    "Judging by your profile picture, you need our {product} more than most.",
    "Honestly, with taste like yours we're surprised you found us.",
    "Not sure you'd know a good {product} if it hit you.",
    "Your haircut is doing more damage than our delivery times.",
)
MAKE_GOODS = (
    "DM us your order number and the next {product} is on us.",
    "Send us a DM and we'll sort it out today, plus a {n}% code.",
    "Your next {product} is on the house, check your DMs.",
    "We're sending you a {n}% code right now.",
)
BOILERPLATE = (
    "We apologize for any inconvenience. Please contact customer support.",
    "Thank you for your feedback. We value all customers.",
    "Our {product} is the best on the market according to our internal metrics.",
    "Please refer to our terms of service for delivery times.",
)
GENERIC_SIGN_OFFS = ("", "", "Best regards, the team.", "Kind regards, Social Media Team.")


def _draft(world: World, org_id: str, post: int, product: str, n: int) -> tuple[list[str], list[str], bool]:
    """(the model's reply to `POSTS[post]` in parts, the same reply in the brand's voice, whether they are equal)."""
    rng = world.rng
    fill = {"product": product, "n": n}
    reaction = REACTIONS[post].format(**fill)
    voiced = [reaction, rng.choice(SELF_JOKES).format(**fill), rng.choice(MAKE_GOODS).format(**fill),
              SIGN_OFFS[org_id]]
    draft = [
        reaction,
        voiced[1] if rng.random() < 0.7 else rng.choice(INSULTS).format(**fill),
        voiced[2] if rng.random() < 0.7 else rng.choice(BOILERPLATE).format(**fill),
        voiced[3] if rng.random() < 0.7 else rng.choice(GENERIC_SIGN_OFFS),
    ]
    return draft, voiced, draft == voiced


def reply_text(parts: list[str]) -> str:
    return " ".join(part for part in parts if part)


def episode(world: World, org: Org, t0: float) -> Iterator[tuple[dict, list[dict]]]:
    """One post to answer; redone up to three times when the social manager hits regenerate."""
    rng, pii = world.rng, world.pii
    brand, voice, product = BRANDS[org.org_id]
    signature = rng.choice(SIGNATURES)
    name = pii("person") if "{name}" in signature else person_name(rng)  # else only its handle shows
    extras = {
        "name": name,
        "email": pii.email_for(name) if "{email}" in signature else "",
        "phone": pii("phone") if "{phone}" in signature else "",
    }
    n = rng.randint(2, 40)
    which = rng.randrange(len(POSTS))
    post = POSTS[which].format(brand=brand, product=product, n=n) + signature.format(**extras)
    platform = rng.choice(PLATFORMS)
    handle = f"@{name.split()[-1].lower().replace(chr(39), '')}{rng.randint(1, 999)}"
    messages = [{"role": "user", "content": f"Reply on {platform} to {handle}: {post}"}]
    system_prompt = f"You are {brand}'s social voice: {voice}. Roast playfully, never insult customers."
    user, conversation, at = world.user_id(org, pool=6), world.conversation_id(), t0
    for _attempt in range(3):
        draft, voiced, on_voice = _draft(world, org.org_id, which, product, n)
        reply = reply_text(draft)
        ix = world.interaction(
            org,
            at,
            "roast",
            list(messages),
            reply,
            user_id=user,
            conversation_id=conversation,
            model=MODEL,
            system_prompt=system_prompt,
            context={"platform": platform, "brand": brand, "persona": voice},
        )
        outcome = world.pick(
            {"accepted": 62, "rejected": 5, "regenerated": 9, "none": 14}
            if on_voice
            else {"accepted": 5, "accepted_with_edits": 48, "rejected": 17, "regenerated": 24, "none": 6}
        )
        events: list[dict] = []
        t = world.later(at, 10, 1_200)
        if outcome != "none":
            events.append(world.feedback(ix, t, "outcome", outcome))
        if outcome == "accepted_with_edits":  # the wrong parts fixed, the rest kept
            events.append(world.feedback(ix, t - 1, "edit", reply_text(voiced)))
        if rng.random() < 0.2:
            events.append(
                world.feedback(ix, world.later(at), "rating", rng.choice((4, 5) if on_voice else (1, 2, 3)))
            )
        yield ix, events
        if outcome != "regenerated":
            return
        at = world.later(at, 5, 60)
