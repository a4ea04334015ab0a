"""Texts a check's pure text test passed before, kept between runs so a re-check tests only new texts.

`residual_pii_zero` scans every text of a dataset with the residual detector, about 1.4 ms a row;
after new data almost every text of the new version was in the last one. A `TextMemo` holds the
128-bit hashes (two keyed SipHash-2-4 values, `pandas.util.hash_array`) of the texts that passed
under one `version` (the detector's source, or the opted-out set). A check still reads and hashes
every text of the file it checks, so the verdict is about those bytes: a known hash skips the test,
any other text is tested. Only passes are kept, so a failing text is tested, and reported, on every
run; a text becomes "known" only by passing. A memo of another version, or a file that cannot be
read, is ignored (everything is tested again), never trusted. `save` writes the hashes that passed
in this run and nothing else, so the memo holds the current dataset's texts and no more.
"""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_KEYS = ("flywheel-memo-a1", "flywheel-memo-b2")  # pandas wants 16-byte keys
_EMPTY = np.empty(0, dtype=np.uint64)


def text_hashes(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit hashes of each text (an object array of str)."""
    import pandas as pd

    if not len(texts):
        return _EMPTY, _EMPTY
    return tuple(pd.util.hash_array(texts, encoding="utf8", hash_key=key, categorize=True) for key in _KEYS)


def row_hashes(df, salt: str) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit hashes of each row of a DataFrame: its values in column order, and `salt`."""
    import pandas as pd

    if not len(df):
        return _EMPTY, _EMPTY
    salted = df.assign(_memo_salt=salt)
    return tuple(pd.util.hash_pandas_object(salted, index=False, encoding="utf8", hash_key=key, categorize=True)
                 .to_numpy(dtype=np.uint64) for key in _KEYS)


class TextMemo:
    """The hashes of texts that passed one test under `version`, loaded from and saved to `path`."""

    def __init__(self, path: Path | None, version: str):
        self.path = Path(path) if path is not None else None
        self.version = version
        self._first, self._second = _EMPTY, _EMPTY  # sorted by the first hash
        self._passed: list[tuple[np.ndarray, np.ndarray]] = []
        self.known = 0  # texts this run skipped: they passed before
        self.tested = 0
        self.note = ""  # why the memo was not used, when it was not
        if self.path is not None:
            self._load()

    def _load(self) -> None:
        if not self.path.exists():
            self.note = "no memo yet"
            return
        try:
            with np.load(self.path, allow_pickle=False) as data:
                if str(data["version"]) != self.version:
                    self.note = f"memo of another version ({data['version']}), ignored"
                    return
                first, second = data["first"], data["second"]
            if first.dtype != np.uint64 or second.shape != first.shape or np.any(first[1:] < first[:-1]):
                raise ValueError("hash arrays of the wrong type, shape or order")
            self._first, self._second = first, second
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # a damaged memo: test all
            self.note = f"memo unreadable ({type(exc).__name__}: {exc}), ignored"
            log.warning("%s: %s", self.path, self.note)

    def __len__(self) -> int:
        return len(self._first)

    def seen(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Which of these hashed texts passed before (both hashes equal); they are kept for `save`."""
        if not len(first) or not len(self._first):
            return np.zeros(len(first), dtype=bool)
        at = np.minimum(np.searchsorted(self._first, first), len(self._first) - 1)
        hit = (self._first[at] == first) & (self._second[at] == second)
        self._passed.append((first[hit], second[hit]))
        self.known += int(hit.sum())
        return hit

    def passed(self, first: np.ndarray, second: np.ndarray) -> None:
        """Texts tested in this run that passed."""
        self._passed.append((first, second))

    def save(self) -> None:
        """Keep exactly the hashes that passed in this run (atomic replace)."""
        if self.path is None:
            return
        first = np.concatenate([f for f, _ in self._passed]) if self._passed else _EMPTY
        second = np.concatenate([s for _, s in self._passed]) if self._passed else _EMPTY
        order = np.lexsort((second, first))
        first, second = first[order], second[order]
        if len(first):
            new = np.ones(len(first), dtype=bool)
            new[1:] = (first[1:] != first[:-1]) | (second[1:] != second[:-1])
            first, second = first[new], second[new]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, version=np.array(self.version), first=first, second=second)
        os.replace(tmp, self.path)

    def metadata(self) -> dict:
        return {"texts_tested": self.tested, "texts_known_to_pass": self.known,
                **({"memo_note": self.note} if self.note else {})}
