"""`flywheel import`: load a JSONL file of contract records into the store, upserting by id."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from pipeline.core.contract import Rejection, parse_line
from pipeline.core.progress import NoProgress
from pipeline.core.store import ImportCounts, Store

BATCH_SIZE = 5_000


def import_lines(
    store: Store, lines: Iterable[bytes], source: str = "stdin", batch_size: int = BATCH_SIZE,
    bar: NoProgress | None = None,
) -> ImportCounts:
    """Import raw JSONL lines. Lines that cannot be stored are quarantined with their line number.

    Blank lines are not records: they are counted in `blank_lines` and otherwise ignored. `bar`
    (`pipeline.core.progress.progress`) advances by the bytes of each batch stored and counts records.
    """
    bar = bar or NoProgress()
    counts = ImportCounts()
    blank = 0
    pending_bytes = 0
    batch: list = []

    def store_batch() -> None:
        nonlocal pending_bytes
        store.import_batch(batch, counts)
        bar.count(counts.read)  # shown by the update's refresh
        bar.update(pending_bytes)
        pending_bytes = 0

    for number, raw in enumerate(lines, start=1):
        pending_bytes += len(raw)
        if not raw.strip():
            blank += 1
            continue
        parsed = parse_line(raw.rstrip(b"\r\n"))
        if isinstance(parsed, Rejection):
            batch.append((parsed, f"{source}:{number}", raw[:2000].decode("utf-8", errors="replace")))
        else:
            batch.append(parsed)
        if len(batch) >= batch_size:
            store_batch()
            batch = []
    if batch:
        store_batch()
    bar.update(pending_bytes)  # trailing blank lines
    counts.blank_lines = blank
    return counts


def import_file(
    store: Store, path: Path | str, batch_size: int = BATCH_SIZE, bar: NoProgress | None = None
) -> ImportCounts:
    """Import one JSONL file (or `-` for stdin); `bar` as in `import_lines`."""
    if str(path) == "-":
        import sys

        return import_lines(store, sys.stdin.buffer, "stdin", batch_size, bar)
    file = Path(path)
    if not file.exists():
        raise FileNotFoundError(f"no such file: {file}")
    with file.open("rb") as handle:
        return import_lines(store, _lines(handle), file.name, batch_size, bar)


def _lines(handle: BinaryIO):
    yield from handle
