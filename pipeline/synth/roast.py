"""Roast / brand voice: reply to a social post the way the brand talks.

Outcomes: `accepted`, `accepted_with_edits` (with an `edit` holding what was posted: a light touch
or a rewrite), `rejected`, `regenerated` (then a second interaction with the same prompt in the
same conversation). On-voice replies are mostly accepted, off-voice ones edited, rejected or redone.
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
    "@{brand} my order took 3 weeks. 3. WEEKS.",
    "Is {brand} actually worth the hype or nah?",
    "@{brand} roast me, I've bought your {product} 11 times this month.",
    "Switched from {brand} to a competitor. Change my mind.",
    "@{brand} why is your {product} so good, I'm broke now",
    "Honest review: {brand} {product} is mid.",
    "@{brand} my friend says your {product} is overrated, defend yourselves",
    "Day 4 of asking @{brand} to bring back the old {product}",
    "@{brand} the delivery guy left my {product} in the rain again",
    "Unpopular opinion: {brand} peaked last year.",
    "@{brand} rate my setup, it's 90% your {product}",
    "Who runs the {brand} account? Asking for a friend who wants a job.",
    "@{brand} your ad interrupted my video for the 6th time today",
    "Trying {brand} {product} for the first time, be honest, will I regret it?",
)
SIGNATURES = (" — {name}", " (order for {name}, reach me at {email})", " DM me or call {phone}", "", "", "")
ON_VOICE = (
    "Three weeks? Our {product} was just building suspense. DM us, we'll make it up to you.",
    "Worth the hype? Ask the {n} people who came back this week. We'll wait.",
    "11 times? At this point you're not a customer, you're family. Roast: your wallet called, it wants a hug.",
    "Change your mind? We'd rather change your whole week. First {product} is on us.",
    "Broke but happy is still happy. We accept payment in compliments too.",
    "Mid? Bold words from someone who came back for seconds.",
)
OFF_VOICE = (
    "We apologize for any inconvenience. Please contact customer support.",
    "Thank you for your feedback. We value all customers.",
    "You're wrong and your taste is bad.",
    "Our {product} is the best on the market according to our internal metrics.",
)


def _light_edit(text: str, world: World) -> str:
    rng = world.rng
    edited = rng.choice(
        (
            text.rstrip(".!") + "!",
            text.replace("We'll", "We will"),
            text.replace("DM us", "Slide into our DMs"),
        )
    )
    return edited if edited != text else text + " 🔥"


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
    post = rng.choice(POSTS).format(brand=brand, product=product) + signature.format(**extras)
    platform = rng.choice(PLATFORMS)
    handle = f"@{name.split()[-1].lower().replace(chr(39), '')}{rng.randint(1, 999)}"
    messages = [{"role": "user", "content": f"Reply on {platform} to {handle}: {post}"}]
    system_prompt = f"You are {brand}'s social voice: {voice}. Roast playfully, never insult customers."
    user, conversation, at = world.user_id(org, pool=6), world.conversation_id(), t0
    for _attempt in range(3):
        on_voice = rng.random() < 0.65
        reply = rng.choice(ON_VOICE if on_voice else OFF_VOICE).format(
            product=product, n=rng.randint(40, 900)
        )
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
            {"accepted": 50, "accepted_with_edits": 22, "rejected": 6, "regenerated": 10, "none": 12}
            if on_voice
            else {"accepted": 8, "accepted_with_edits": 32, "rejected": 25, "regenerated": 30, "none": 5}
        )
        events: list[dict] = []
        t = world.later(at, 10, 1_200)
        if outcome != "none":
            events.append(world.feedback(ix, t, "outcome", outcome))
        if (
            outcome == "accepted_with_edits"
        ):  # on-voice: a light touch; off-voice: rewritten in the brand's voice
            posted = (
                _light_edit(reply, world)
                if on_voice
                else rng.choice(ON_VOICE).format(product=product, n=rng.randint(40, 900))
            )
            events.append(world.feedback(ix, t - 1, "edit", posted))
        if rng.random() < 0.2:
            events.append(
                world.feedback(ix, world.later(at), "rating", rng.choice((4, 5) if on_voice else (1, 2, 3)))
            )
        yield ix, events
        if outcome != "regenerated":
            return
        at = world.later(at, 5, 60)
