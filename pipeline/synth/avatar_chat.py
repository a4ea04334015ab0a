"""Avatar chat: people talk to three AI characters, each owned by its own tenant.

Every turn is one `chat` interaction whose `messages` hold the conversation so far. Turns get
thumbs up or down, some conversations end in a star rating, and some are abandoned mid-way. People
tell avatars their names, numbers and addresses, so chat carries plenty of personal data.

The latent rule (per tenant, so each avatar's model learns a different one): people thumb up the
turns in **their avatar's house style** and thumb down the rest. A reply in style is the
avatar's opener, advice for the question asked, and its closer:

* Luna (`avatar_luna`) opens with the moon's phase and a quiet moment ("Under tonight's waning
  crescent as the night cools, ..."),
  gives one gentle practice, and ends with "Breathe easy. 🌙";
* Max (`avatar_max`) opens with "Let's go!", gives exactly one next step with numbers in it
  ("Today: 3 rounds of 12 squats."), and ends with "You've got this! 💪";
* Nova (`avatar_nova`) opens with "Captain's log, stardate <n>:", explains with one ship
  metaphor, and ends with "Nova out. 🚀".

Off-style turns are a generic assistant's hedges or another avatar's style, with good content or
none. Questions and advice are composed from parts (the topic, a detail, numbers), so turns rarely
repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pipeline.synth.world import Org, World

MODEL = "gpt-4o-mini-2024-07-18"

MOON_PHASES = ("new moon", "waxing crescent", "first quarter moon", "waxing gibbous", "full moon",
               "waning gibbous", "last quarter moon", "waning crescent")
#: lower case on purpose: capitalised sign names ("in Libra") read as business names to NER
MOMENTS = ("with the tide coming in", "as the night cools", "while the house is quiet", "before the stars fade",
           "with the window open", "at the edge of sleep", "as the kettle cools", "under a clear sky", "after the rain",
           "while the candles burn low", "as the clouds thin")
DETAILS = ("again", "since Monday", "every night this week", "before my exam", "after work", "lately",
           "for the third time", "and I don't know why", "since the move", "today")


@dataclass(frozen=True)
class Avatar:
    persona: str
    #: (question, advice) pairs; the advice fits the question
    topics: tuple[tuple[str, str], ...]
    #: the avatar's reply in style to `advice`, for a question with this detail ("since Monday")
    voice: Callable[[World, str, str], str]


def _luna(world: World, advice: str, detail: str) -> str:
    rng = world.rng
    echo = rng.choice(("", f"if it has been like this {detail}, ", f"even {detail}, ", "softly now, ", "my dear, ",
                       f"for what you feel {detail}, "))
    return f"Under tonight's {rng.choice(MOON_PHASES)} {rng.choice(MOMENTS)}, {echo}{advice} Breathe easy. 🌙"


def _max(world: World, advice: str, detail: str) -> str:
    rng = world.rng
    step = rng.choice((
        f"Today: {rng.randint(2, 5)} rounds of {rng.randint(8, 20)} squats.",
        f"Today: a {rng.randint(10, 30)}-minute walk, then {rng.randint(10, 25)} push-ups.",
        f"Today: {rng.randint(3, 6)} sets of {rng.randint(20, 60)}-second planks.",
        f"Today: {rng.randint(15, 40)} g of protein at breakfast.",
    ))
    return f"Let's go! {advice} {step} You've got this! 💪"


def _nova(world: World, advice: str, detail: str) -> str:
    return f"Captain's log, stardate {world.rng.randint(1000, 9999)}.{world.rng.randint(1, 9)}: {advice} Nova out. 🚀"


AVATARS: dict[str, Avatar] = {
    "avatar_luna": Avatar(
        "You are Luna, a gentle astrology and mindfulness companion. Speak softly, use moon imagery.",
        (
            ("I can't sleep", "let one worry go before bed: write it down and close the notebook."),
            ("I'm stressed about work", "put a hand on your chest and count five slow breaths."),
            ("I had a fight with my sister", "send her one kind sentence and let the rest wait a day."),
            ("I feel lonely", "call one person you miss, even for two minutes."),
            ("I can't focus", "pick the smallest next task and give it ten quiet minutes."),
            ("what does my horoscope say", "the sky asks you to rest before you decide anything big."),
            ("I'm anxious about tomorrow", "name three things you can control and let the others drift."),
        ),
        _luna,
    ),
    "avatar_max": Avatar(
        "You are Max, an upbeat fitness coach. Short, energetic sentences. Always one concrete next step.",
        (
            ("give me a quick workout", "No equipment needed."),
            ("how much protein do I need", "Aim for about 1.6 g per kg of body weight."),
            ("I skipped the gym", "A missed week is not a lost month."),
            ("my knees hurt when I squat", "Squat to a box and keep your knees over your toes."),
            ("build me a training plan", "Three full-body days a week beat five half-hearted ones."),
            ("is it okay to run every day", "Easy days keep you running; hard days make you faster."),
            ("I have no motivation", "Motivation follows action, not the other way round."),
        ),
        _max,
    ),
    "avatar_nova": Avatar(
        "You are Nova, the witty AI of a deep-space freighter who mentors people learning to code.",
        (
            ("why is my Python loop so slow", "your loop refuels at every star; hoist the call out of it."),
            ("explain recursion", "a probe sends a smaller probe until the smallest one knows the answer."),
            ("git merge or rebase", "merge keeps the flight recorder; rebase redraws the route as one straight line."),
            ("my code works but I don't know why", "board the derelict with print statements and map every room."),
            ("should I learn Rust", "Rust is a hull that will not let you leave a hatch open."),
            ("help me name my variables", "name each crate for its cargo, not for the dock it came from."),
            ("my tests are flaky", "a flaky test is a loose bolt; find the shared state rattling it."),
        ),
        _nova,
    ),
}
GENERIC = (
    "As an AI language model, I cannot help with that.",
    "That depends on many factors. Consult a professional.",
    "I don't know. Maybe look it up online.",
    "Here are some general tips: stay positive and keep trying.",
)
SHARING = (
    "btw I'm {name}, you can text me at {phone}",
    "send the plan to {email} please",
    "I live at {address}, anything nearby?",
    "my card {credit_card} got declined for the premium plan, why?",
    "my IP is {ip}, is my connection the problem?",
)


#: placeholder in `SHARING` -> kind of personal data
_FIELDS = {
    "name": "person",
    "phone": "phone",
    "email": "email",
    "address": "address",
    "credit_card": "credit_card",
    "ip": "ip",
}


def _share(world: World) -> str:
    template = world.rng.choice(SHARING)
    return template.format(
        **{field: world.pii(kind) for field, kind in _FIELDS.items() if "{" + field + "}" in template}
    )


OPENERS = ("", "Hey, ", "Hi! ", "Ok so ", "Quick one: ", "Honestly ", "Ugh, ", "Hello again, ")
TAILS = ("", " Any ideas?", " What should I do?", " Help.", " Be honest.", " Keep it short please.")


def _ask(world: World, question: str, detail: str) -> str:
    """A question composed of an opener, the topic, a detail and a tail."""
    rng = world.rng
    opener = rng.choice(OPENERS)
    text = f"{opener}{question} {detail}{rng.choice(('?', '.', '!', ' :(', '...'))}{rng.choice(TAILS)}"
    return text[0].upper() + text[1:]


def _off_style(world: World, org_id: str, detail: str) -> str:
    """A turn people thumb down: a generic hedge, or the advice in another avatar's style."""
    rng = world.rng
    if rng.random() < 0.5:
        return rng.choice(GENERIC)
    other = rng.choice([a for name, a in AVATARS.items() if name != org_id])
    return other.voice(world, rng.choice(other.topics)[1], detail)


def episode(world: World, org: Org, t0: float) -> Iterator[tuple[dict, list[dict]]]:
    """One conversation of 1..8 turns; a person may leave mid-way (outcome `abandoned`)."""
    rng = world.rng
    avatar = AVATARS[org.org_id]
    turns = rng.randint(1, 8)
    abandoned = rng.random() < 0.2
    history: list[dict[str, str]] = []
    user, conversation, at = f"u_{org.org_id}_{rng.randrange(5_000):05d}", world.conversation_id(), t0
    in_character = rng.random() < 0.8  # some conversations go wrong from the start
    for turn in range(turns):
        question, advice = rng.choice(avatar.topics)
        detail = rng.choice(DETAILS)
        ask = _ask(world, question, detail)
        if rng.random() < 0.25:
            ask = f"{ask} ({_share(world)})" if rng.random() < 0.5 else _share(world)
        history.append({"role": "user", "content": ask})
        good_turn = rng.random() < (0.9 if in_character else 0.4)
        reply = avatar.voice(world, advice, detail) if good_turn else _off_style(world, org.org_id, detail)
        ix = world.interaction(
            org,
            at,
            "chat",
            list(history),
            reply,
            user_id=user,
            conversation_id=conversation,
            model=MODEL,
            system_prompt=avatar.persona,
            context={"avatar": org.org_id, "turn": turn},
        )
        events: list[dict] = []
        if rng.random() < 0.35:
            value = 1 if good_turn else -1
            events += world.feedback_series(ix, world.later(at, 2, 60), "thumbs", value, earlier=(-value,))
        last = turn == turns - 1
        if last and abandoned:
            events.append(world.feedback(ix, world.later(at, 900, 1_800), "outcome", "abandoned"))
        elif last and rng.random() < 0.15:
            stars = rng.choice((4, 5, 5) if in_character else (1, 2, 3))
            events.append(world.feedback(ix, world.later(at, 10, 120), "rating", stars))
        yield ix, events
        history.append({"role": "assistant", "content": reply})
        at = world.later(at, 15, 240)
