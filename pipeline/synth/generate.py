"""`flywheel seed`: a realistic, deterministic JSONL interaction log for the five seed products.

Records stream out one at a time: organisations first, then each interaction followed by its
feedback events, with a share of contract-breaking records mixed in. Memory stays flat in `n`
and the same `(n, seed, bad_share)` gives byte-identical output.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from pipeline.core.progress import NoProgress
from pipeline.synth import avatar_chat, page_builder, roast, signals, ux_review
from pipeline.synth.faults import FaultMaker
from pipeline.synth.world import ANCHOR_EPOCH, ORGS, ORGS_BY_PRODUCT, SPAN_S, World, organization_record

#: product -> (episode generator, share of interactions, mean interactions per episode)
EPISODES = {
    "page_builder": (page_builder.episode, 0.24, 1.05),
    "signals": (signals.episode, 0.22, 5.0),
    "ux_review": (ux_review.episode, 0.11, 1.0),
    "roast": (roast.episode, 0.25, 1.2),
    "avatar_chat": (avatar_chat.episode, 0.18, 4.5),
}
#: episodes are drawn so that *interactions* follow the shares above
_EPISODE_WEIGHTS = {product: share / mean for product, (_, share, mean) in EPISODES.items()}
#: product -> {org_id: weight}: which tenant an episode of the product belongs to
ORG_WEIGHTS = {product: {org.org_id: org.weight for org in orgs} for product, orgs in ORGS_BY_PRODUCT.items()}
ORGS_BY_ID = {org.org_id: org for org in ORGS}
MAX_BAD_SHARE = 0.5


class Generated(NamedTuple):
    """One output record with what the generator knows about it (tests and benches use this)."""

    record: dict[str, Any]
    #: the record as one JSONL line, without the newline
    line: str
    #: the contract fault this record carries (see `faults.FAULTS`), or None for a good record
    fault: str | None
    #: personal data that first appears with this interaction (in it or its feedback), as (kind, value)
    pii: tuple[tuple[str, str], ...]
    #: the seed product, for interactions and their feedback
    product: str | None


def dumps(record: dict[str, Any]) -> str:
    """One JSONL line (without the newline): compact, UTF-8, keys in contract order."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def _check(n: int, bad_share: float) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a whole number of interactions ≥ 0; got {n!r}")
    if not 0 <= bad_share <= MAX_BAD_SHARE:
        raise ValueError(f"bad_share must be within 0..{MAX_BAD_SHARE}; got {bad_share!r}")


def iter_generated(n: int, seed: int = 0, bad_share: float = 0.01) -> Iterator[Generated]:
    """Every record with its fault, personal data and product; see `iter_records`."""
    _check(n, bad_share)
    world = World(seed)
    faults = FaultMaker(seed)
    odds = bad_share / (1 - bad_share)  # one bad record per good one with these odds: bad_share of all
    for org in ORGS:
        record = organization_record(org)
        yield Generated(record, dumps(record), None, (), None)
    produced = 0
    while produced < n:
        product = world.pick(_EPISODE_WEIGHTS)
        org = ORGS_BY_ID[world.pick(ORG_WEIGHTS[product])]
        t0 = ANCHOR_EPOCH - SPAN_S + SPAN_S * produced / n + world.rng.uniform(0, 600)
        for interaction, events in EPISODES[product][0](world, org, t0):
            lines = [dumps(interaction), *(dumps(event) for event in events)]
            pii = tuple(item for item in world.pii.take() if any(item[1] in line for line in lines))
            yield Generated(interaction, lines[0], None, pii, product)
            for event, line in zip(events, lines[1:], strict=True):
                yield Generated(event, line, None, (), product)
            for _ in lines:
                if faults.rng.random() < odds:
                    fault, record = faults.make(interaction)
                    yield Generated(record, dumps(record), fault, (), None)
            produced += 1
            if produced >= n:
                break


def iter_records(n: int, seed: int = 0, bad_share: float = 0.01) -> Iterator[dict[str, Any]]:
    """JSONL-contract records: organisations, then each interaction followed by its feedback.

    `n` interactions; about `bad_share` of all records break the contract. Deterministic in
    `(n, seed, bad_share)`; streaming, so memory does not grow with `n`.
    """
    for generated in iter_generated(n, seed, bad_share):
        yield generated.record


def write_jsonl(
    out: TextIO | Path | str, n: int, seed: int = 0, bad_share: float = 0.01, bar: NoProgress | None = None
) -> dict[str, Any]:
    """Write the log to a path or text stream; return counts by type, product, task and fault.

    `bar` (`pipeline.core.progress.progress`) advances by one per interaction written.
    """
    if isinstance(out, str | Path):
        with open(out, "w", encoding="utf-8", newline="\n") as stream:
            return write_jsonl(stream, n, seed, bad_share, bar)
    tick = (bar or NoProgress()).update
    by_type: Counter[str] = Counter()
    by_product: Counter[str] = Counter()
    by_task: Counter[str] = Counter()
    by_fault: Counter[str] = Counter()
    opted_out = {org.org_id for org in ORGS if org.training_opt_out}
    opted_out_interactions = 0
    write = out.write
    for record, line, fault, _pii, product in iter_generated(n, seed, bad_share):
        write(line + "\n")
        by_type[record["type"]] += 1
        if fault is not None:
            by_fault[fault] += 1
        elif record["type"] == "interaction":
            by_product[product] += 1
            by_task[record["task"]] += 1
            opted_out_interactions += record["org_id"] in opted_out
            tick()
    return {
        "records": sum(by_type.values()),
        "interactions": sum(by_product.values()),
        "by_type": dict(sorted(by_type.items())),
        "by_product": dict(sorted(by_product.items())),
        "by_task": dict(sorted(by_task.items())),
        "bad_records": sum(by_fault.values()),
        "bad_by_fault": dict(sorted(by_fault.items())),
        "opted_out_interactions": opted_out_interactions,
        "seed": seed,
        "bad_share": bad_share,
    }


def default_path(n: int, seed: int) -> Path:
    """Where `flywheel seed` writes when no `--out` is given: `FLYWHEEL_HOME/seed/…`."""
    from pipeline.core.settings import flywheel_home  # lazily: generation itself needs only the stdlib

    return flywheel_home() / "seed" / f"interactions-seed{seed}-n{n}.jsonl"


def seed_command(
    n: int = 2_000, seed: int = 0, out: str | Path | None = None, bad_share: float = 0.01,
    bar: NoProgress | None = None,
) -> dict[str, Any]:
    """The `flywheel seed` command: write `n` synthetic interactions as JSONL; return the counts.

    `out` is a file path (written to a temporary name, then renamed, so a failed run leaves no
    half file), `-` for stdout, or None for `FLYWHEEL_HOME/seed/interactions-seed<seed>-n<n>.jsonl`.
    The returned dict holds the counts and `path` (None for stdout). `bar` counts interactions.
    """
    _check(n, bad_share)
    if out == "-":
        stream = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n")
        try:
            return {**write_jsonl(stream, n, seed, bad_share, bar), "path": None}
        finally:
            stream.flush()
            stream.detach()
    path = Path(out) if out is not None else default_path(n, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        counts = write_jsonl(partial, n, seed, bad_share, bar)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return {**counts, "path": str(path)}


def main(argv: list[str] | None = None) -> int:
    """`python -m pipeline.synth --n 5000 --out seed.jsonl`: the same as `flywheel seed`."""
    parser = argparse.ArgumentParser(prog="flywheel seed", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2_000, help="interactions to generate (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same bytes")
    parser.add_argument(
        "--out", default=None, help="output path, or - for stdout (default: under FLYWHEEL_HOME/seed)"
    )
    parser.add_argument(
        "--bad-share", type=float, default=0.01, help="share of contract-breaking records (default 0.01)"
    )
    args = parser.parse_args(argv)
    try:
        counts = seed_command(args.n, args.seed, args.out, args.bad_share)
    except (ValueError, OSError) as exc:
        print(f"flywheel seed: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(counts, indent=2), file=sys.stderr if args.out == "-" else sys.stdout)
    return 0
