"""Avatar chat: people talk to three AI characters, each owned by its own tenant.

Every turn is one `chat` interaction whose `messages` hold the conversation so far. Turns get
thumbs up or down, some conversations end in a star rating, and some are abandoned mid-way. People
tell avatars their names, numbers and addresses, so chat carries plenty of personal data.
"""

from __future__ import annotations

from collections.abc import Iterator

from pipeline.synth.world import Org, World

MODEL = "gpt-4o-mini-2024-07-18"

#: avatar org -> (persona, what users talk about, in-character replies, out-of-character replies)
AVATARS = {
    "avatar_luna": (
        "You are Luna, a gentle astrology and mindfulness companion. Speak softly, use moon imagery.",
        (
            "I can't sleep again, any tips?",
            "What does a full moon in Scorpio mean for me?",
            "I'm stressed about my exam tomorrow.",
            "Can you guide me through a short breathing exercise?",
            "I had a fight with my sister.",
            "Is Mercury retrograde this week?",
        ),
        (
            "Let's breathe together, slow as the tide under the moon: in for four, hold for four, out for six.",
            "The moon is asking you to release what you can't control tonight. Write one worry down and set it aside.",
            "Scorpio moons stir deep feelings. Be gentle with yourself; you're allowed to rest.",
            "Under this waxing moon, small steps count. What is one kind thing you can do for yourself today?",
        ),
        (
            "As an AI language model, I cannot provide astrological advice.",
            "Sleep is regulated by melatonin. Consult a doctor.",
        ),
    ),
    "avatar_max": (
        "You are Max, an upbeat fitness coach. Short, energetic sentences. Always one concrete next step.",
        (
            "Give me a 20 minute workout, no equipment.",
            "How much protein do I need?",
            "I skipped the gym all week.",
            "My knees hurt when I squat.",
            "Build me a 3-day split.",
            "Is it okay to run every day?",
        ),
        (
            "Let's go! 4 rounds: 12 squats, 10 push-ups, 30s plank, 20 lunges. Rest 60s. You've got this!",
            "Aim for about 1.6 g of protein per kg of body weight. Eggs, beans, Greek yogurt. Easy wins!",
            "A missed week is not a lost month. Today: 15 minutes, any movement. Start now!",
            "Knee pain? Box squats to a chair, knees tracking over toes, and see a physio if it stays. Smart training wins!",
        ),
        ("Fitness is subjective.", "I don't know. Maybe look it up online."),
    ),
    "avatar_nova": (
        "You are Nova, the witty AI of a deep-space freighter who mentors people learning to code.",
        (
            "Why is my Python loop so slow?",
            "Explain recursion like I'm five.",
            "What's the difference between git merge and rebase?",
            "My code works but I don't know why.",
            "Should I learn Rust?",
            "Help me name my variables better.",
        ),
        (
            "Captain's log: your loop calls a function each pass. Hoist it out, or use a list comprehension, and we reach light speed.",
            "Recursion is a robot asking a smaller robot the same question until the smallest one just knows the answer.",
            "Merge keeps the history like a flight recorder; rebase rewrites the route so it looks like you flew straight.",
            "Code that works without explanation is a derelict ship: board it with print statements and map every room.",
        ),
        ("Error. Query not understood.", "Coding is hard. Good luck."),
    ),
}
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


def episode(world: World, org: Org, t0: float) -> Iterator[tuple[dict, list[dict]]]:
    """One conversation of 1..8 turns; a person may leave mid-way (outcome `abandoned`)."""
    rng = world.rng
    persona, asks, good, bad = AVATARS[org.org_id]
    turns = rng.randint(1, 8)
    abandoned = rng.random() < 0.2
    history: list[dict[str, str]] = []
    user, conversation, at = f"u_{org.org_id}_{rng.randrange(5_000):05d}", world.conversation_id(), t0
    in_character = rng.random() < 0.8  # some conversations go wrong from the start
    for turn in range(turns):
        ask = rng.choice(asks)
        if rng.random() < 0.25:
            ask = f"{ask} ({_share(world)})" if rng.random() < 0.5 else _share(world)
        history.append({"role": "user", "content": ask})
        good_turn = rng.random() < (0.9 if in_character else 0.4)
        reply = rng.choice(good if good_turn else bad)
        ix = world.interaction(
            org,
            at,
            "chat",
            list(history),
            reply,
            user_id=user,
            conversation_id=conversation,
            model=MODEL,
            system_prompt=persona,
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
