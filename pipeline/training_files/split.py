"""Train / validation split: grouped, seeded, stratified by task.

Rows that share a conversation (`group_id`) or a prompt (normalised last user turn) are joined
into one component with union-find, and a component goes to one side as a whole: the same
conversation or prompt is never in both files (OpenAI asks that the same data is not in both, and
an overlapping validation set flatters the model). Components are ordered by a seeded hash of their
smallest key (so the split depends on the data and the seed, never on row order or on Python's
hash salt) and, task by task, added to validation until the task's share is reached; a component
that would overshoot is skipped for a smaller one.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

import numpy as np

_CHUNK = 100_000


class UnionFind:
    """Disjoint sets over 0..n-1 with path halving and union by size (8 bytes per node and array)."""

    def __init__(self, n: int):
        self.parent = array("q", range(n))
        self.size = array("q", [1]) * n

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]


def components(group_keys: Sequence[int], prompt_keys: Sequence[int]) -> np.ndarray:
    """For each row, the id of the component joining rows that share a group or a prompt key."""
    groups = np.asarray(group_keys, dtype=np.int64)
    prompts = np.asarray(prompt_keys, dtype=np.int64)
    if len(groups) != len(prompts):
        raise ValueError("group_keys and prompt_keys differ in length")
    _, group_node = np.unique(groups, return_inverse=True)
    _, prompt_node = np.unique(prompts, return_inverse=True)
    offset = int(group_node.max()) + 1 if len(group_node) else 0
    prompt_node = prompt_node + offset
    uf = UnionFind(offset + (int(prompt_node.max()) - offset + 1 if len(prompt_node) else 0))
    union, find = uf.union, uf.find
    roots = np.empty(len(group_node), dtype=np.int64)
    for start in range(0, len(group_node), _CHUNK):  # chunks: no million-int Python lists
        for a, b in zip(group_node[start : start + _CHUNK].tolist(), prompt_node[start : start + _CHUNK].tolist(), strict=True):
            union(a, b)
    for start in range(0, len(group_node), _CHUNK):
        roots[start : start + _CHUNK] = [find(a) for a in group_node[start : start + _CHUNK].tolist()]
    return roots


def _mix(values: np.ndarray, seed: int) -> np.ndarray:
    """splitmix64 of (value + seed): a seeded order that does not depend on the row order."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) + np.uint64(seed % (1 << 64)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def split_rows(
    group_keys: Sequence[int],
    prompt_keys: Sequence[int],
    tasks: Sequence[str] | np.ndarray,
    validation_share: float,
    seed: int,
) -> np.ndarray:
    """For each row, True when it goes to validation. Deterministic for the same rows and seed."""
    n = len(group_keys)
    if n == 0 or validation_share <= 0:
        return np.zeros(n, dtype=bool)
    comp = components(group_keys, prompt_keys)
    _, comp_idx, comp_size = np.unique(comp, return_inverse=True, return_counts=True)
    n_comp = len(comp_size)
    task_names, task_code = np.unique(np.asarray(tasks), return_inverse=True)
    n_tasks = len(task_names)
    # a component's task is its most frequent one (ties: the first name), so each task is stratified
    per_task = np.bincount(comp_idx * n_tasks + task_code, minlength=n_comp * n_tasks).reshape(n_comp, n_tasks)
    comp_task = per_task.argmax(axis=1)
    smallest = np.full(n_comp, np.iinfo(np.int64).max, dtype=np.int64)
    keys = np.minimum(np.asarray(group_keys, dtype=np.int64), np.asarray(prompt_keys, dtype=np.int64))
    np.minimum.at(smallest, comp_idx, keys)
    order = _mix(smallest, seed)

    validation_comp = np.zeros(n_comp, dtype=bool)
    for t in range(n_tasks):
        comps = np.flatnonzero(comp_task == t)
        comps = comps[np.argsort(order[comps], kind="stable")]
        task_rows = int(comp_size[comps].sum())
        want = min(round(task_rows * validation_share), task_rows - 1)  # keep training rows per task
        taken = 0
        for c, size in zip(comps.tolist(), comp_size[comps].tolist(), strict=True):
            if taken >= want:
                break
            if taken + size > want:
                continue
            validation_comp[c] = True
            taken += size
    return validation_comp[comp_idx]
