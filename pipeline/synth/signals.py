"""Signal relevance: a listener asks for moments about a topic in a podcast episode.

Each transcript chunk the product surfaces is one `signal_extraction` interaction (`response` is
the chunk, the query is the user message, one `conversation_id` per session) with an `action`
(saved, snipped or skipped; 7% get none).

The latent rule (what a fine-tuned ranker can learn and an off-the-shelf embedding does not know):
**listeners save concrete, specific chunks on the asked topic** — a chunk that names a tactic and
states a result with a number ("We moved everyone to annual prepay with two months free, and
churn fell from 7% to 4% in one quarter.") — **and skip everything else**: vague on-topic talk
(hedges and platitudes that repeat the topic's words: "Honestly, pricing strategy comes down to
knowing your value, you know?"), banter, sponsor reads (which carry numbers and discount codes
but no result), and concrete chunks about another topic. Vague chunks name the topic more often
than concrete ones, so cosine similarity to the query alone ranks them *above* the chunks people
keep; the ranking has to learn specificity. Per kind (`CHUNK_KINDS`) the actions are drawn with
fixed odds (`ACTION_ODDS`), so the rule holds with noise.

Chunks are composed from parts — subjects, verbs, named tactics, metrics, numbers, timeframes,
hedges, fillers, asides — so tens of thousands of distinct chunks exist and a held-out chunk is
almost never a training chunk (the tests bound the share of repeats).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.synth.world import Org, World

MODEL = "signal-extractor-v3"
SYSTEM_PROMPT = "Surface transcript chunks that answer the listener's query. Return the chunk verbatim."


@dataclass(frozen=True)
class Topic:
    #: what a listener calls it in a query ("pricing strategy")
    name: str
    #: narrower things a query may ask about
    aspects: tuple[str, ...]
    #: named tactics: what someone concretely did (lowercase, so NER does not take them for names)
    tactics: tuple[str, ...]
    #: (metric, unit) pairs a result is measured in; unit "%", "x", "$k", or "lo-hi" (a count in that range)
    metrics: tuple[tuple[str, str], ...]
    #: topic words vague talk leans on
    words: tuple[str, ...]


TOPICS: dict[str, Topic] = {
    t.name: t
    for t in (
        Topic(
            "pricing strategy",
            ("raising prices", "annual plans", "discounts", "usage-based pricing"),
            ("annual prepay with two months free", "a good-better-best tier page", "a decoy enterprise plan",
             "per-seat pricing with a three-seat floor", "a usage-based overage tier", "a 'reverse trial'",
             "price anchoring on the checkout page", "a grandfathered legacy plan"),
            (("monthly churn", "%"), ("average contract value", "$k"), ("trial-to-paid conversion", "%"),
             ("net revenue retention", "%"), ("refund requests a month", "5-120")),
            ("pricing", "price", "prices", "pricing strategy", "value"),
        ),
        Topic(
            "hiring",
            ("the first hires", "interviews", "recruiting engineers", "references"),
            ("a paid trial week", "a take-home task capped at three hours", "structured scorecards",
             "a 'bar raiser' on every loop", "back-channel reference calls", "a referral bonus for engineers",
             "a two-interview process", "a work-sample interview"),
            (("offer acceptance rate", "%"), ("time to hire in days", "10-90"), ("first-year attrition", "%"),
             ("candidates per opening", "3-60"), ("cost per hire", "$k")),
            ("hiring", "hire", "talent", "recruiting", "the team"),
        ),
        Topic(
            "fundraising",
            ("the seed round", "term sheets", "pitching investors", "bridge rounds"),
            ("a rolling close on a SAFE", "a data room sent before the first call", "a two-week pitch sprint",
             "a 'warm intro only' rule", "a monthly investor update", "a pro-rata side letter",
             "a convertible note with a cap", "a target list ranked by check size"),
            (("the round size", "$k"), ("investor meetings", "10-120"), ("dilution", "%"),
             ("days to close", "14-150"), ("the valuation", "x")),
            ("fundraising", "investors", "raising money", "the round", "VCs"),
        ),
        Topic(
            "remote work",
            ("async communication", "meetings", "onboarding remotely", "offsites"),
            ("a written decision log", "no-meeting Wednesdays", "a recorded weekly demo", "a buddy system for new hires",
             "core hours from two to five", "a quarterly in-person week", "async standups in a shared doc",
             "a 'default to public channels' rule"),
            (("meeting hours per week", "3-25"), ("days to first commit", "1-20"), ("employee retention", "%"),
             ("survey engagement", "%"), ("support tickets answered same day", "%")),
            ("remote work", "remote", "async", "distributed teams", "working from home"),
        ),
        Topic(
            "sleep science",
            ("caffeine", "waking up", "naps", "deep sleep"),
            ("a fixed seven a.m. wake-up", "ten minutes of morning daylight", "a caffeine cutoff at noon",
             "a twenty-minute nap limit", "a cool bedroom at eighteen degrees", "no screens after ten",
             "a 'brain dump' journal before bed", "magnesium in the evening"),
            (("sleep efficiency", "%"), ("minutes to fall asleep", "5-60"), ("deep sleep share", "%"),
             ("night awakenings", "1-6"), ("resting heart rate", "48-80")),
            ("sleep", "rest", "sleep science", "being tired", "the body"),
        ),
        Topic(
            "marathon training",
            ("long runs", "easy pace", "tapering", "injuries"),
            ("an eighty-twenty easy-hard split", "a Sunday long run capped at three hours", "a three-week taper",
             "tempo intervals on Thursdays", "a ten-percent weekly mileage cap", "strides after easy runs",
             "carb loading three days out", "a heart-rate ceiling on easy days"),
            (("the finish time in minutes", "175-290"), ("weekly mileage", "20-70"), ("injury weeks per season", "1-9"),
             ("average pace gain", "%"), ("the race-day split", "%")),
            ("running", "marathon", "training", "the race", "miles"),
        ),
        Topic(
            "climate tech",
            ("heat pumps", "grid storage", "carbon removal", "permitting"),
            ("a heat-pump subsidy bundle", "a four-hour grid battery", "a direct air capture pilot",
             "a community solar lease", "a one-stop permitting desk", "demand response contracts",
             "a green steel offtake deal", "a virtual power plant"),
            (("cost per ton", "$k"), ("permitting time in months", "3-30"), ("grid peak demand", "%"),
             ("installations per month", "20-900"), ("emissions", "%")),
            ("climate", "climate tech", "decarbonisation", "energy", "the grid"),
        ),
        Topic(
            "product-market fit",
            ("retention", "user interviews", "pivots", "the first customers"),
            ("the forty-percent 'very disappointed' survey", "a concierge MVP", "cohort retention charts",
             "a waitlist with a referral gate", "weekly calls with ten churned users", "a single-feature launch",
             "a 'fake door' test", "a usage-based onboarding email"),
            (("week-four retention", "%"), ("very disappointed answers", "%"), ("weekly active users", "200-9000"),
             ("organic signups", "%"), ("activation rate", "%")),
            ("product-market fit", "fit", "the product", "customers", "the market"),
        ),
        Topic(
            "burnout",
            ("working hours", "saying no", "recovery", "therapy"),
            ("a hard stop at six", "two meeting-free afternoons a week", "a monthly no-laptop weekend",
             "a delegated inbox", "a weekly therapy hour", "a 'three priorities' list each morning",
             "a four-day week for the founders", "a sabbatical rotation"),
            (("hours worked per week", "40-90"), ("sick days a year", "2-20"), ("team turnover", "%"),
             ("self-rated energy", "%"), ("evenings off per week", "1-6")),
            ("burnout", "stress", "being exhausted", "founder life", "balance"),
        ),
        Topic(
            "open source",
            ("the community", "licensing", "maintainers", "docs"),
            ("an open-core model with paid team features", "a contributor ladder", "a docs sprint every release",
             "a foundation grant for maintainers", "a public roadmap board", "a 'good first issue' label",
             "a dual license", "monthly community calls"),
            (("GitHub stars", "300-40000"), ("monthly contributors", "5-300"), ("paid conversions", "%"),
             ("issue response time in hours", "2-96"), ("downloads", "%")),
            ("open source", "the community", "maintainers", "the project", "contributors"),
        ),
    )
}

# ------------------------------------------------------------------ the parts sentences are made of
SUBJECTS = ("We", "My team", "Our growth team", "My co-founder and I", "The company", "I", "Our ops lead",
            "A friend's startup", "The second team I ran", "Our small team")
DID = ("switched to", "tried", "rolled out", "tested", "moved everyone to", "started", "introduced",
       "doubled down on", "piloted", "committed to")
WHEN = ("", " last quarter", " in the second year", " for six weeks", " over the summer", " early on",
        " after the first hundred customers", " this spring", " for two cycles", " right after the launch")
HEDGES = ("Honestly,", "I think", "You know,", "At the end of the day,", "To be fair,", "I mean,", "Look,",
          "In my experience,", "I'd say", "Frankly,", "It's funny,", "Sort of,")
FILLERS = ("", ", right?", ", you know?", ", if that makes sense.", " and that's the thing.", ", basically.",
           ", at least for us.", " — it really depends.", ", like, genuinely.", " and people forget that.")
PLATITUDES = (
    "{word} comes down to {abstract}",
    "the key with {word} is {abstract}",
    "everyone gets {word} wrong at first",
    "{word} is a journey, not a destination",
    "you have to be intentional about {word}",
    "there's no playbook for {word}",
    "{word} is more art than science",
    "the best people in {word} are always {abstract}",
    "when it comes to {word} and {word2}, it's about {abstract}",
    "I've been thinking a lot about {word} lately",
    "we talk about {word} and {word2} all the time",
)
ABSTRACTS = ("getting the fundamentals right", "knowing your why", "finding the right balance",
             "listening to your gut", "staying close to people", "being authentic", "trusting the process",
             "the long game", "having the right mindset", "asking better questions", "doing the work")
BANTER = (
    "Sorry, {noise} in the background.",
    "Can you hear me okay? {tech} dropped for a second.",
    "Anyway, where was I? {aside}",
    "Ha, {aside} Let's not go there.",
    "Before I forget, {aside}",
    "Don't forget to {cta} the show, it really helps.",
)
NOISES = ("my dog is barking", "the builders next door are drilling", "my kid is practising drums",
          "there's a leaf blower", "the espresso machine is going")
TECH = ("The connection", "My headset", "The video", "The audio", "The wifi")
ASIDES = ("that reminds me of the conference where we got lost.", "you brought the wrong microphone again.",
          "the coffee here is terrible.", "we recorded this one twice.", "my notes are upside down.")
CTAS = ("rate", "subscribe to", "share", "review", "follow")
ADS = (
    "This episode is brought to you by {sponsor}. Use code {code} for {pct}% off your first {months} months.",
    "Quick break: {sponsor} is giving listeners {pct}% off with code {code}, link in the show notes.",
    "Our sponsor {sponsor} has a deal: {months} months free with code {code}.",
)
SPONSORS = ("a meal-kit service", "a password manager", "a mattress company", "a VPN", "an online course platform",
            "a note-taking app", "a coffee subscription")
RESULTS = (
    "{metric} went from {a} to {b}",
    "{metric} {moved} by {delta}",
    "{metric} ended at {b}, up from {a}",
    "we saw {metric} drop from {a} to {b}",
    "{metric} {moved} {delta} within {weeks} weeks",
)
SHAPES = (
    "{subject} {did} {tactic}{when}, and {result}.",
    "{subject} {did} {tactic}{when}. The result: {result}.",
    "The one thing that worked was {tactic}: {result}.",
    "After {subject_l} {did} {tactic}{when}, {result}.",
    "{subject} {did} {tactic}{when}; {result}, which nobody expected.",
)
PODCASTS = ("The Operator Hour", "Founder Frequencies", "Deep Work Radio", "Run Farther", "Grid & Green",
            "Build in Public", "The Long Game", "Signal & Noise")
QUERIES = (
    'Find the moments about {topic} in "{episode}".',
    "Pull clips where they talk about {topic}, especially {aspect}.",
    "What did {guest} say about {aspect}?",
    "Show me everything on {topic} from episode {number} of {podcast}.",
    "Anything useful on {aspect} in this {podcast} episode?",
    "I want the {topic} advice from {podcast} #{number}.",
)

AUDIENCES = (" for a seed-stage team", " for beginners", " for a team of five", " for someone who tried before",
             " for a side project", " for a bigger company", " for next quarter", " I can use this week")

#: what a surfaced chunk is; see the module docstring
CHUNK_KINDS = {"concrete": 40, "vague": 34, "banter": 8, "ad": 8, "off_topic": 10}
#: chunk kind -> odds of the listener's action
ACTION_ODDS = {
    "concrete": {"saved": 72, "snipped": 14, "skipped": 14},
    "vague": {"saved": 7, "snipped": 4, "skipped": 89},
    "banter": {"saved": 2, "snipped": 1, "skipped": 97},
    "ad": {"saved": 2, "snipped": 1, "skipped": 97},
    "off_topic": {"saved": 6, "snipped": 3, "skipped": 91},
}
_PREFIX = re.compile(r"^\[\d\d:\d\d\] [^:]+: ")


def chunk_body(chunk: str) -> str:
    """The chunk without its `[mm:ss] Speaker:` prefix: what was said."""
    return _PREFIX.sub("", chunk, count=1)


def _number(world: World, unit: str) -> tuple[str, str, str]:
    """(before, after, change) for a metric in `unit`, e.g. ("7%", "4%", "3 points")."""
    rng = world.rng
    if unit == "%":
        a = rng.randint(2, 60)
        b = max(1, min(99, a + rng.choice((-1, 1)) * rng.randint(2, 25)))
        return f"{a}%", f"{b}%", f"{abs(b - a)} points"
    if unit == "x":
        a = rng.randint(3, 20)
        return f"{a}x", f"{a + rng.randint(2, 15)}x", f"{rng.randint(2, 4)}x"
    if unit == "$k":
        a = rng.randint(4, 400)
        b = max(1, a + rng.choice((-1, 1)) * rng.randint(2, max(3, a // 2)))
        return f"${a}k", f"${b}k", f"{round(abs(b - a) / a * 100)}%"
    low, high = (int(x) for x in unit.split("-"))
    a, b = rng.sample(range(low, high + 1), 2)
    return str(a), str(b), f"{round(abs(b - a) / a * 100)}%"


def concrete_sentence(world: World, topic: Topic) -> str:
    """A named tactic and a measured result: what listeners save."""
    rng = world.rng
    metric, unit = rng.choice(topic.metrics)
    a, b, delta = _number(world, unit)
    result = rng.choice(RESULTS).format(
        metric=metric, a=a, b=b, delta=delta, weeks=rng.randint(2, 12),
        moved=rng.choice(("moved", "changed", "shifted", "improved")),
    )
    subject = rng.choice(SUBJECTS)
    text = rng.choice(SHAPES).format(
        subject=subject, subject_l=subject if subject == "I" else subject[0].lower() + subject[1:],
        did=rng.choice(DID), tactic=rng.choice(topic.tactics), when=rng.choice(WHEN), result=result,
    )
    return text[0].upper() + text[1:]


def vague_sentence(world: World, topic: Topic) -> str:
    """On-topic words, hedges and platitudes, no tactic and no number: what listeners skip."""
    rng = world.rng
    word, word2 = rng.sample(topic.words, 2)
    claim = rng.choice(PLATITUDES).format(word=word, word2=word2, abstract=rng.choice(ABSTRACTS))
    filler = rng.choice(FILLERS)
    text = f"{rng.choice(HEDGES)} {claim}{filler}"
    return text if text.endswith((".", "?")) else text + "."


def banter(world: World) -> str:
    rng = world.rng
    return rng.choice(BANTER).format(noise=rng.choice(NOISES), tech=rng.choice(TECH), aside=rng.choice(ASIDES),
                                     cta=rng.choice(CTAS))


def ad_read(world: World) -> str:
    rng = world.rng
    code = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(rng.randint(4, 7)))
    return rng.choice(ADS).format(sponsor=rng.choice(SPONSORS), code=code, pct=rng.choice((10, 15, 20, 25, 30, 40)),
                                  months=rng.randint(2, 6))


def _chunk(world: World, kind: str, topic: Topic, guest: str, host: str) -> str:
    rng = world.rng
    if kind == "concrete":
        lines = [concrete_sentence(world, topic)]
        if rng.random() < 0.35:  # a hedge around a concrete point does not make it vague
            lines.insert(0, vague_sentence(world, topic))
    elif kind == "off_topic":
        other = rng.choice([t for t in TOPICS.values() if t is not topic])
        lines = [concrete_sentence(world, other)]
    elif kind == "vague":
        lines = [vague_sentence(world, topic) for _ in range(rng.randint(1, 3))]
    elif kind == "ad":
        lines = [ad_read(world)]
    else:
        lines = [banter(world)]
        if rng.random() < 0.5:
            lines.append(vague_sentence(world, topic))
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


def query_text(world: World, topic: Topic, *, episode: str, guest: str, podcast: str, number: int) -> str:
    """What a listener types: one of `QUERIES` about the topic or one of its aspects."""
    rng = world.rng
    return rng.choice(QUERIES).format(topic=topic.name, aspect=rng.choice(topic.aspects), episode=episode,
                                      guest=guest, podcast=podcast, number=number)


def episode(world: World, org: Org, t0: float) -> Iterator[tuple[dict, list[dict]]]:
    """One listening session: a query, then 2..8 surfaced chunks, each saved, snipped or skipped."""
    rng, pii = world.rng, world.pii
    topic = TOPICS[rng.choice(tuple(TOPICS))]
    podcast = rng.choice(PODCASTS)
    guest, host = pii("person"), pii("person")
    number = rng.randint(12, 240)
    episode_title = f"Ep. {number}: {guest} on {topic.name}"
    query = query_text(world, topic, episode=episode_title, guest=guest, podcast=podcast, number=number)
    if rng.random() < 0.6:
        query = query[:-1] + rng.choice(AUDIENCES) + query[-1]
    messages = [{"role": "user", "content": query}]
    user, conversation, at = world.user_id(org, pool=60), world.conversation_id(), t0
    context = {"podcast": podcast, "episode": episode_title}
    for position in range(rng.randint(2, 8)):
        kind = world.pick(CHUNK_KINDS)
        chunk = _chunk(world, kind, topic, guest, host)
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
            action = world.pick(ACTION_ODDS[kind])
            other = tuple(a for a in ("saved", "skipped") if a != action)
            events += world.feedback_series(ix, world.later(at, 3, 120), "action", action, earlier=other)
        yield ix, events
        at = world.later(at, 5, 90)
