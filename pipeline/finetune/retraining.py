"""When a target retrains: the exportable examples that arrived since the data its models were trained on.

The store numbers every accepted interaction (`accepted_seq`, raised again when new feedback
re-processes it); `scored_examples` records the number it read through (`source_seq_through`), and
the training file and the model's job inherit it. A target's *baseline* is the newest of:

- the watermark of the dataset version of the model in service (the champion),
- the watermark of the newest job trained for it (a refused candidate is not retried on the same data),
- the watermark at which the sensor last requested a run (before that run has a job).

New examples are the interactions accepted after the baseline that `scored_examples` would export:
scored with the target's weights, non-empty, at or above its export threshold. Near-duplicate
collapsing is left to `scored_examples`; this count decides when, not what, to train.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from pipeline.core.targets import Target

#: run tags of a retraining run: who asked, how many new examples, through which accepted_seq
TRIGGER_TAG = "flywheel/trigger"
NEW_EXAMPLES_TAG = "flywheel/new_examples"
THROUGH_TAG = "flywheel/source_seq_through"


def count_new_examples(store, target: Target, since_seq: int, through_seq: int) -> int:
    """Interactions of `target` accepted in `(since_seq, through_seq]` that scored_examples would export."""
    from pipeline.curation.curate import continuation, last_turns_of
    from pipeline.curation.scoring import exportable

    if through_seq <= since_seq:
        return 0
    exclude = sorted(set(target.exclude_tenants) | store.opted_out_orgs())
    count = 0
    # only the rows in the window (an index search on task and accepted_seq), and only their conversations
    for batch in store.iter_accepted(target.tasks, target.tenants, exclude, since_seq=since_seq, through_seq=through_seq):
        continued = continuation(last_turns_of(store, batch))
        for record in batch:
            try:
                if exportable(record, target.scoring, conversation_continued=continued(record)) is not None:
                    count += 1
            except (KeyError, TypeError, ValueError, AttributeError):
                continue  # scored_examples quarantines it with its reason; it is no example either way
    return count


@dataclass(frozen=True)
class Tally:
    """New exportable examples of one target counted in `(since_seq, through_seq]`."""

    since_seq: int
    through_seq: int
    count: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def update_tally(previous: Tally | None, baseline: int, through_seq: int,
                 count: Callable[[int, int], int], max_span: int | None = None) -> Tally:
    """The tally from `baseline` to `through_seq`, counting only the rows the previous tick has not seen.

    A new baseline (a model trained, a run requested) starts the count again; the store's
    watermark moving back (a restored database) does too. `max_span` caps the accepted_seq
    positions counted in one call: the tally then stops short of `through_seq` and the next call
    goes on from where it stopped (a sensor's first tick on a large log stays within its timeout).
    """
    restart = previous is None or previous.since_seq != baseline or previous.through_seq > through_seq
    start, so_far = (baseline, 0) if restart else (previous.through_seq, previous.count)
    end = through_seq if max_span is None else min(through_seq, start + max_span)
    return Tally(baseline, end, so_far + (count(start, end) if end > start else 0))


@dataclass(frozen=True)
class RetrainDecision:
    """Whether one target retrains now, and why (the reason reads in the sensor's tick log)."""

    target: str
    fire: bool
    reason: str
    tally: Tally
    threshold: int

    @property
    def run_key(self) -> str:
        """One run per target and data: the same watermark never fires twice (Dagster dedupes run keys)."""
        return f"{self.target}@{self.tally.through_seq}"

    def tags(self, trigger: str) -> dict[str, str]:
        return {TRIGGER_TAG: trigger, NEW_EXAMPLES_TAG: str(self.tally.count), THROUGH_TAG: str(self.tally.through_seq)}


def decide(target: str, tally: Tally, threshold: int, in_flight: str | None) -> RetrainDecision:
    """Fire once `threshold` new examples arrived and no retraining of the target is queued or running."""
    have = f"{tally.count} new example(s) since accepted_seq {tally.since_seq}"
    if in_flight is not None:
        return RetrainDecision(target, False, f"{target}: {have}; not started: {in_flight}", tally, threshold)
    if tally.count < threshold:
        return RetrainDecision(target, False, f"{target}: {have}, {threshold} needed (short by {threshold - tally.count})",
                               tally, threshold)
    return RetrainDecision(target, True, f"{target}: {have} (threshold {threshold}): retrain", tally, threshold)


def baseline(watermarks: Iterable[int | None]) -> int:
    """The newest of the known watermarks (0: the target has never been trained, every example is new)."""
    return max((int(w) for w in watermarks if w is not None), default=0)
