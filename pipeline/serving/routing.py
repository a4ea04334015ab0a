"""Route a user to the champion or the challenger of a target, stickily.

The rule, the same in every language:

    bucket     = first 8 bytes of SHA-256(UTF-8 of "<target>:<user_id>"), as an unsigned big-endian
                 integer, modulo 10000                                   (0 … 9999)
    threshold  = round(challenger_share × 10000), halves rounded up      (0.1 → 1000)
    variant    = "challenger" if a challenger exists and bucket < threshold, else "champion"

A user keeps their variant for as long as the share does not shrink below their bucket, and a
larger share only adds users (those whose buckets lie between the old and new thresholds), so a
canary that advances 10% → 50% → 100% never moves a user back and forth. Including the target in
the hash keeps one user's buckets independent across targets. The README shows the same rule in
TypeScript; `pipeline_tests/test_serving_route.py` checks both give the same buckets.
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from pipeline.serving.rollout import ModelRef, Rollout, read_rollout_file, rollout_path

BUCKETS = 10_000


class Route(NamedTuple):
    """The model to call and the variant to log (`rollout: {"id": rollout_id, "variant": variant}`)."""

    model: ModelRef
    variant: str


def bucket(target: str, user_id: str) -> int:
    """The user's bucket for this target, 0 … 9999 (see the module docstring)."""
    digest = hashlib.sha256(f"{target}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def threshold(share: float) -> int:
    """Buckets below this go to the challenger: round(share × 10000) with halves up (JavaScript's Math.round)."""
    return int(math.floor(share * BUCKETS + 0.5))


def route(target: str, user_id: str, rollout: Rollout | None = None) -> Route:
    """The model and variant that serve `user_id` for `target`; reads the rollout file when none is given."""
    if not isinstance(user_id, str) or not user_id:
        raise ValueError("route needs a non-empty user id (a stable id of the user, not of the request)")
    current = rollout if rollout is not None else load_rollout(target)
    if current.target != target:
        raise ValueError(f"rollout {current.rollout_id} is for target {current.target!r}, not {target!r}")
    if current.challenger is not None and bucket(target, user_id) < threshold(current.challenger_share):
        return Route(current.challenger, "challenger")
    return Route(current.champion, "champion")


def load_rollout(target: str, home: Path | None = None) -> Rollout:
    """The target's rollout file under `FLYWHEEL_HOME/rollouts/` (re-read only when the file changes)."""
    path = rollout_path(target, home)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no rollout file for target {target!r} at {path}: nothing serves it yet; materialize production_model "
            f"for {target!r} (the base model serves until a candidate passes its gates)"
        ) from None
    return _load(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=64)
def _load(path: str, _mtime_ns: int, _size: int) -> Rollout:
    return read_rollout_file(Path(path))
