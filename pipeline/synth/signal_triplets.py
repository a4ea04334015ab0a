"""Embedding triplets shaped like the signal-relevance demo: a query, a saved chunk, a skipped chunk.

A listener asks about a topic; the transcript chunk they saved talks about it in other words, the
chunk they skipped is a sponsor read, banter, or a chunk about a neighbouring topic. Deterministic
for a seed. Used by `bench/st_training.py` and the sentence-transformers tests.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

TOPICS = {
    "pricing": ("raising prices", "the annual plan discount", "charging per seat", "a usage-based tier"),
    "hiring": ("the first sales hire", "interview loops", "hiring engineers remotely", "a bad senior hire"),
    "fundraising": ("the seed round", "a term sheet", "talking to angel investors", "bridge financing"),
    "churn": ("customers cancelling", "the onboarding drop-off", "win-back emails", "net revenue retention"),
    "marketing": ("the podcast ads", "cold outbound email", "SEO content", "a launch on social media"),
    "product": ("the roadmap", "cutting features", "user interviews", "the beta programme"),
    "infrastructure": ("the database migration", "cloud costs", "an outage last spring", "on-call rotations"),
    "culture": ("the four-day week", "writing things down", "team offsites", "giving feedback"),
    "sales": ("enterprise deals", "the pilot contract", "procurement delays", "a champion leaving"),
    "ai": ("fine-tuning a model", "evaluating the assistant", "prompt regressions", "labelling data"),
}
QUERY = (
    "what did they say about {x}",
    "advice on {x}",
    "the part about {x}",
    "how they handled {x}",
    "{x} lessons",
)
SAVED = (
    "So when we got to {x}, the honest answer is we had no playbook and had to learn it from our own numbers.",
    "The thing nobody tells you about {x} is that it takes twice as long as you plan for.",
    "We changed our mind on {x} after talking to about twenty customers in one month.",
    "My advice on {x}: write down what you expect before you start, then compare.",
    "Looking back, {x} was the decision that mattered most that year.",
)
SKIPPED = (
    "This episode is brought to you by our sponsor; use the code in the show notes for a discount.",
    "Before we start, thanks to everyone who left a review, it really helps the show.",
    "Anyway, we should probably talk about the weather, it has been raining all week here.",
    "Ha, I still cannot believe you brought the wrong microphone again.",
    "That reminds me of the time we got lost on the way to the conference.",
    "We will get to {x} after the break, but first a word from our sponsor.",
    "Quick note: our newsletter has a whole section on {x}, link in the description.",
    "If you want more on {x}, leave a comment and we might do a whole episode on it.",
)


def make_signal_triplets(n: int, seed: int = 0) -> list[dict[str, str]]:
    """`n` (anchor, positive, negative) triplets; half the negatives are chunks about another topic."""
    rng = random.Random(seed)
    phrases = [(topic, phrase) for topic, items in TOPICS.items() for phrase in items]
    rows = []
    for i in range(n):
        topic, phrase = phrases[i % len(phrases)]
        anchor = rng.choice(QUERY).format(x=phrase)
        positive = rng.choice(SAVED).format(x=phrase)
        if rng.random() < 0.5:
            _, other = rng.choice([p for p in phrases if p[0] != topic])
            negative = rng.choice(SAVED).format(x=other)
        else:
            negative = rng.choice(SKIPPED).format(x=phrase)  # mentions the topic, says nothing about it
        # a per-row episode tag keeps texts distinct, as real transcript chunks are
        rows.append({"anchor": anchor, "positive": f"{positive} (episode {i})", "negative": f"{negative} (ep. {i})"})
    return rows


def write_triplets(rows: list[dict[str, str]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    return path
