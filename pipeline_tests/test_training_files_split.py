"""Grouped, seeded, stratified train/validation split."""

from __future__ import annotations

import random

import numpy as np

from pipeline.training_files.prepare import key_hash
from pipeline.training_files.split import UnionFind, components, split_rows


def _rows(n=3000, seed=0):
    rng = random.Random(seed)
    groups = [key_hash(f"conv{i // 3}") for i in range(n)]  # 3 turns per conversation
    # 5% of turns ask one of 100 common prompts, which links their conversations together
    prompts = [key_hash(f"common{rng.randrange(100)}" if rng.random() < 0.05 else f"prompt{i}") for i in range(n)]
    tasks = [["page_generation", "section_edit", "design_choice"][(i // 3) % 3] for i in range(n)]
    return groups, prompts, tasks


def test_union_find():
    uf = UnionFind(5)
    uf.union(0, 1)
    uf.union(3, 4)
    uf.union(1, 4)
    assert len({uf.find(i) for i in range(5)}) == 2


def test_components_join_shared_groups_and_prompts():
    # rows 0,1 share a group; rows 1,2 share a prompt; row 3 is alone
    comp = components([10, 10, 20, 30], [1, 2, 2, 3])
    assert comp[0] == comp[1] == comp[2] != comp[3]


def test_no_conversation_or_prompt_on_both_sides():
    groups, prompts, tasks = _rows()
    validation = split_rows(groups, prompts, tasks, 0.1, seed=42)
    for keys in (groups, prompts):
        train_keys = {k for k, v in zip(keys, validation, strict=True) if not v}
        validation_keys = {k for k, v in zip(keys, validation, strict=True) if v}
        assert not train_keys & validation_keys
    assert 0.05 < validation.mean() < 0.15


def test_stratified_by_task():
    n = 4000
    groups = [key_hash(f"g{i}") for i in range(n)]
    prompts = [key_hash(f"p{i}") for i in range(n)]
    tasks = ["big"] * 3000 + ["small"] * 900 + ["tiny"] * 100
    validation = split_rows(groups, prompts, tasks, 0.1, seed=1)
    per_task = {t: int(sum(v for v, tt in zip(validation, tasks, strict=True) if tt == t)) for t in ("big", "small", "tiny")}
    assert per_task == {"big": 300, "small": 90, "tiny": 10}


def test_deterministic_seeded_and_order_independent():
    groups, prompts, tasks = _rows()
    a = split_rows(groups, prompts, tasks, 0.1, seed=42)
    assert np.array_equal(a, split_rows(groups, prompts, tasks, 0.1, seed=42))
    assert not np.array_equal(a, split_rows(groups, prompts, tasks, 0.1, seed=7))
    order = list(range(len(groups)))
    random.Random(3).shuffle(order)
    shuffled = split_rows([groups[i] for i in order], [prompts[i] for i in order], [tasks[i] for i in order], 0.1, seed=42)
    assert [bool(shuffled[j]) for j in np.argsort(order)] == a.tolist()


def test_zero_share_and_single_component():
    assert not split_rows([1, 2], [3, 4], ["a", "a"], 0.0, seed=1).any()
    # everything shares one prompt: one component, which must stay in training
    assert not split_rows([1, 2, 3], [9, 9, 9], ["a", "a", "a"], 0.4, seed=1).any()
    assert split_rows([], [], [], 0.1, seed=1).tolist() == []
