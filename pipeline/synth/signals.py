"""Signal relevance: a listener asks for moments about a topic in a podcast episode.

Each transcript chunk the product surfaces is one `signal_extraction` interaction (`response` is
the chunk, the query is the user message, one `conversation_id` per session) with an `action`:
chunks on the asked topic are mostly saved or snipped, off-topic ones mostly skipped, with noise,
so an embedding model has something real to learn.
"""

from __future__ import annotations

from collections.abc import Iterator

from pipeline.synth.world import Org, World

MODEL = "signal-extractor-v3"
SYSTEM_PROMPT = "Surface transcript chunks that answer the listener's query. Return the chunk verbatim."

TOPICS = {
    "pricing strategy": (
        "We doubled our prices and churn actually went down.",
        "Usage-based pricing only works if the value metric is obvious.",
        "Annual plans fund the next quarter of growth.",
        "Nobody complains about price when the product saves them a day a week.",
        "We tested three price points and the middle one won by a mile.",
        "Discounts train customers to wait for the next sale.",
    ),
    "hiring": (
        "The first ten hires set the culture more than any values doc.",
        "We stopped doing whiteboard interviews and hired better people.",
        "A paid trial week tells you more than five interview rounds.",
        "Hire for slope, not for where someone is today.",
        "Our best engineer came from a customer support role.",
        "Reference calls are where you learn the truth about a candidate.",
    ),
    "fundraising": (
        "We raised the seed round in three weeks because the metrics spoke for themselves.",
        "Investors fund momentum, not slide decks.",
        "Never take a term sheet without talking to the founders they backed before.",
        "The valuation matters less than the dilution over three rounds.",
        "We pitched forty funds and two said yes.",
        "Bridge rounds are a sign you mis-planned the runway.",
    ),
    "remote work": (
        "Async writing replaced most of our meetings.",
        "Remote teams need more structure, not less.",
        "We meet in person twice a year and it is worth every euro.",
        "Time zones forced us to document everything.",
        "The hardest part of remote work is onboarding juniors.",
        "Our Slack has a rule: decisions go in the doc, not the thread.",
    ),
    "sleep science": (
        "Deep sleep is when the brain clears out metabolic waste.",
        "Caffeine has a half-life of about six hours.",
        "A consistent wake-up time matters more than bedtime.",
        "Light in the morning sets your circadian rhythm.",
        "Alcohol wrecks REM sleep even if you fall asleep faster.",
        "Naps longer than thirty minutes leave you groggy.",
    ),
    "marathon training": (
        "Eighty percent of my runs are at an easy conversational pace.",
        "The long run on Sunday is the backbone of the plan.",
        "Carb loading starts three days before the race, not the night before.",
        "Most runners get injured by adding mileage too fast.",
        "Tempo runs teach your body to clear lactate.",
        "Taper week feels terrible and that is normal.",
    ),
    "climate tech": (
        "Heat pumps are the quiet workhorse of decarbonisation.",
        "Grid storage is the bottleneck, not solar panels.",
        "Green hydrogen only makes sense for steel and shipping.",
        "Carbon removal needs a price on carbon to scale.",
        "Permitting delays kill more wind projects than costs do.",
        "Battery prices fell ninety percent in a decade.",
    ),
    "product-market fit": (
        "You know you have product-market fit when customers complain that it is down.",
        "We talked to a hundred users before writing code.",
        "Retention curves that flatten are the only proof that matters.",
        "Our pivot came from one customer using the product wrong.",
        "If you have to push every sale, you do not have fit yet.",
        "The Sean Ellis test said forty percent would be very disappointed.",
    ),
    "burnout": (
        "I worked ninety-hour weeks until my body stopped me.",
        "Burnout is not fixed by a vacation, it is fixed by changing the work.",
        "Saying no to good opportunities saved my company.",
        "Founders hide burnout because investors are watching.",
        "I block two afternoons a week with no meetings at all.",
        "Therapy made me a better CEO.",
    ),
    "open source": (
        "Our open-source core brought in the first thousand customers.",
        "Maintainers burn out when companies take without giving back.",
        "The license change cost us half the community.",
        "Good docs are the real growth engine of an open-source project.",
        "We pay contributors through a foundation grant.",
        "Open core works when the paid features are for teams, not individuals.",
    ),
}
BANTER = (
    "Quick thanks to our sponsor before we continue.",
    "Sorry, my dog is barking in the background.",
    "Can you hear me okay? The connection dropped for a second.",
    "Anyway, where was I?",
    "That reminds me of the coffee machine story, but let's skip that.",
    "Don't forget to rate the show.",
)
PODCASTS = (
    "The Operator Hour",
    "Founder Frequencies",
    "Deep Work Radio",
    "Run Farther",
    "Grid & Green",
    "Build in Public",
)
QUERIES = (
    'Find the moments about {topic} in "{episode}".',
    "Pull clips where they talk about {topic}.",
    "What did {guest} say about {topic}?",
    "Show me everything on {topic} from this week's {podcast}.",
)


def _chunk(world: World, topic: str, guest: str, host: str) -> str:
    rng = world.rng
    lines = rng.sample(TOPICS[topic], rng.randint(2, 3))
    if rng.random() < 0.3:
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(BANTER))
    speaker = guest if rng.random() < 0.7 else host
    minute, second = rng.randrange(90), rng.randrange(60)
    text = f"[{minute:02d}:{second:02d}] {speaker}: " + " ".join(lines)
    if rng.random() < 0.12:
        aside = rng.randrange(3)
        if aside == 0:
            text += f" If you want the slides, email me at {world.pii.email_for(speaker)}."
        elif aside == 1:
            text += f" Call the show on {world.pii('phone')}."
        else:
            text += f" My co-founder {world.pii('person')} will kill me for saying this."
    return text


def episode(world: World, org: Org, t0: float) -> Iterator[tuple[dict, list[dict]]]:
    """One listening session: a query, then 2..8 surfaced chunks, each saved, snipped or skipped."""
    rng, pii = world.rng, world.pii
    topic = rng.choice(tuple(TOPICS))
    podcast = rng.choice(PODCASTS)
    guest, host = pii("person"), pii("person")
    episode_title = f"Ep. {rng.randint(12, 240)}: {guest} on {topic}"
    query = rng.choice(QUERIES).format(topic=topic, episode=episode_title, guest=guest, podcast=podcast)
    messages = [{"role": "user", "content": query}]
    user, conversation, at = world.user_id(org, pool=60), world.conversation_id(), t0
    context = {"podcast": podcast, "episode": episode_title}
    for position in range(rng.randint(2, 8)):
        on_topic = rng.random() < 0.5
        chunk_topic = topic if on_topic else rng.choice([t for t in TOPICS if t != topic])
        chunk = _chunk(world, chunk_topic, guest, host)
        ix = world.interaction(
            org,
            at,
            "signal_extraction",
            list(messages),
            chunk,
            user_id=user,
            conversation_id=conversation,
            model=MODEL,
            system_prompt=SYSTEM_PROMPT,
            context={**context, "position": position},
        )
        events: list[dict] = []
        if rng.random() < 0.93:  # the rest scrolled past without acting
            weights = (
                {"saved": 72, "snipped": 12, "skipped": 16}
                if on_topic
                else {"saved": 8, "snipped": 4, "skipped": 88}
            )
            action = world.pick(weights)
            other = tuple(a for a in ("saved", "skipped") if a != action)
            events += world.feedback_series(ix, world.later(at, 3, 120), "action", action, earlier=other)
        yield ix, events
        at = world.later(at, 5, 90)
