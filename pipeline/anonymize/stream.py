"""`flywheel anonymize`: interactions as JSONL on stdin, the same records anonymized on stdout.

Same engine as the `anonymized_dataset` asset, so a data engineer can preview redaction on a file:

    flywheel anonymize < interactions.jsonl > redacted.jsonl

Records keep the contract's shape (`type` plus the fields of `shared/interaction-schema.md`):
texts are redacted (interaction system prompt, messages, response, context values; feedback
`edit` and `label` values), and ids become stable pseudonyms (`id`, `interaction_id`, `user_id`,
`conversation_id` hashed; `org_id` replaced by its tenant hash), so feedback still joins its
interaction. A line that is not a JSON object with a known `type` is reported on stderr with its
line number and counted; it is not written and does not stop the stream.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import BinaryIO, TextIO

from pipeline.anonymize.records import prepare_record, pseudonymize_record
from pipeline.core.contract import RECORD_TYPES
from pipeline.core.progress import NoProgress

#: Records redacted per batch (one batch is in memory at a time; output order is input order).
BATCH_LINES = 256


def _parse(raw: str) -> tuple[str, dict] | str:
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        return f"not JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(obj, dict):
        return f"a record must be a JSON object, got {type(obj).__name__}"
    record_type = obj.get("type")
    if record_type not in RECORD_TYPES:
        return f"field 'type' must be one of {', '.join(RECORD_TYPES)}; got {record_type!r}"
    return record_type, obj


def _lines(stream: BinaryIO | TextIO):
    """(line number, text or None, why it is unreadable or None, its size in bytes) per line."""
    for number, line in enumerate(stream, start=1):
        if isinstance(line, bytes):
            size = len(line)
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, None, f"bytes are not UTF-8 at offset {exc.start}", size
                continue
        else:
            size = len(line.encode("utf-8"))
        yield number, line, None, size


def anonymize_stream(
    stdin: BinaryIO | TextIO, stdout: TextIO, workers: int = 2, stderr: TextIO | None = None,
    bar: NoProgress | None = None,
) -> dict:
    """Redact a JSONL stream of contract records; returns the counts (also for the exit code).

    Returns {"lines", "written", "malformed", "blank", "by_type", "entities", "notes"}; counts add
    up: lines = written + malformed + blank. `bar` (`pipeline.core.progress.progress`, drawn on
    stderr) advances by the bytes of each batch written and counts the records; a malformed line's
    message is printed above the bar.
    """
    from pipeline.anonymize.engine import RedactionPool

    stderr = stderr if stderr is not None else sys.stderr
    bar = bar or NoProgress(stderr)
    say = bar.write if bar.active else (lambda text: stderr.write(text + "\n"))  # above a bar, not through it
    pending_bytes = 0
    counts = {"lines": 0, "written": 0, "malformed": 0, "blank": 0}
    by_type: Counter = Counter()
    entities: Counter = Counter()
    notes: Counter = Counter()

    def flush(batch: list[tuple[str, dict]], pool: RedactionPool) -> None:
        prepared = [prepare_record(record_type, record) for record_type, record in batch]
        redacted = pool.redact([p.segments for p in prepared])
        for (record_type, record), prep, result in zip(batch, prepared, redacted, strict=True):
            prep.apply(result.texts)
            entities.update(result.entities)
            notes.update(prep.notes)
            stdout.write(json.dumps(pseudonymize_record(record_type, record), ensure_ascii=False) + "\n")
            counts["written"] += 1
            by_type[record_type] += 1
        stdout.flush()
        advance()

    def advance() -> None:
        nonlocal pending_bytes
        bar.count(counts["written"])  # shown by the update's refresh
        bar.update(pending_bytes)
        pending_bytes = 0

    with RedactionPool(workers=workers, min_parallel=0) as pool:  # workers as asked, from the first line
        batch: list[tuple[str, dict]] = []
        for number, line, error, size in _lines(stdin):
            counts["lines"] += 1
            pending_bytes += size
            if error is None and not line.strip():
                counts["blank"] += 1
                continue
            parsed = error if error is not None else _parse(line)
            if isinstance(parsed, str):
                counts["malformed"] += 1
                say(f"line {number}: {parsed}")
                continue
            batch.append(parsed)
            if len(batch) >= BATCH_LINES:
                flush(batch, pool)
                batch = []
        if batch:
            flush(batch, pool)
        advance()
    return {**counts, "by_type": dict(by_type), "entities": dict(entities), "notes": dict(notes)}
