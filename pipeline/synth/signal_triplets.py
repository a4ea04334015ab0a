"""Embedding triplets from the signal-relevance world: a listener's query, a saved chunk, a skipped chunk.

The same latent rule as `pipeline.synth.signals` (its docstring states it): the positive is a
concrete chunk on the asked topic (a named tactic and a measured result), the negative is what
listeners skip — mostly vague on-topic talk that repeats the topic's words (the hard case: an
off-the-shelf embedding ranks it *above* the saved chunk), else a concrete chunk about another
topic, banter or a sponsor read. Texts are composed from the generator's parts, so rows barely
repeat. Deterministic for a seed. Used by `bench/st_training.py` and the sentence-transformers tests.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.synth import signals
from pipeline.synth.world import World

#: negative kind -> weight; vague on-topic talk is what the base model gets wrong
NEGATIVE_KINDS = {"vague": 70, "off_topic": 12, "banter": 9, "ad": 9}


def _negative(world: World, topic: signals.Topic) -> str:
    kind = world.pick(NEGATIVE_KINDS)
    if kind == "vague":
        return " ".join(signals.vague_sentence(world, topic) for _ in range(world.rng.randint(1, 2)))
    if kind == "off_topic":
        other = world.rng.choice([t for t in signals.TOPICS.values() if t is not topic])
        return signals.concrete_sentence(world, other)
    return signals.ad_read(world) if kind == "ad" else signals.banter(world)


def make_signal_triplets(n: int, seed: int = 0) -> list[dict[str, str]]:
    """`n` (anchor, positive, negative) triplets, topics in turn."""
    world = World(seed)
    topics = list(signals.TOPICS.values())
    rows = []
    for i in range(n):
        topic = topics[i % len(topics)]
        rng = world.rng
        anchor = signals.query_text(world, topic, episode=f"Ep. {rng.randint(12, 240)}", guest="the guest",
                                    podcast=rng.choice(signals.PODCASTS), number=rng.randint(12, 240))
        rows.append({"anchor": anchor, "positive": signals.concrete_sentence(world, topic),
                     "negative": _negative(world, topic)})
    return rows


def write_triplets(rows: list[dict[str, str]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    return path
